import Dispatch
import Foundation
import Synchronization
import WebSocketSniffer

/// The first stage of `sniff -r` on a thread of its own: reading the file (libpcap and the
/// kernel's copies), decoding packets and reassembling TCP (`SniffSession.reassemble`), ahead of
/// the dissecting thread, which takes the reassembler's events in order (`next()`) and dissects
/// them (`SniffSession.dissect`). Reading and reassembly were a fifth of the dissecting thread's
/// work; here they overlap with it.
///
/// The stage applies `--count` and `--duration` (capture time from the first packet) as the
/// one-thread loop does, and ends with the session's end-of-capture events. Events go in batches
/// (up to 4,096 events or 512 KiB of stream bytes, copied into the batch; one larger segment gets a
/// batch of its own) through a queue of eight, so the stage runs at most a few megabytes ahead.
/// The dissector shows what it can of those bytes where they lie, and the printer prints it from
/// there: a batch is given back only when the printer is done with it (`holder`).
/// A read error (a truncated or corrupt file) is passed on in its place among the events, so
/// the warning comes after what was dissected before it and before what follows, as with one thread.
final class ReassemblyReadAhead: @unchecked Sendable {
    static let batchEvents = 4_096
    static let firstBatchEvents = 128
    static let batchBytes = 1 << 19
    /// Batches in all: the one being taken from, those the printer still holds (`holder`: up to
    /// three, one per batch of the pipeline's queue) and the rest for the stage to fill ahead.
    static let depth = 8

    /// What `next()` gives, in the order the stage produced it.
    enum Item {
        /// The first packet's capture time (before any event).
        case origin(Double)
        /// A reassembler event; a `.data` event's bytes are the stage's copy, valid until the next
        /// call to `next()`, and the consumer may change them (the dissector unmasks in place).
        case event(TCPReassemblyEvent)
        /// A read failed here: reading stopped and the end-of-capture events follow, or, for damage
        /// the source got past (`PcapError.resumes`), the events of the packets after it.
        case readError(any Error)
        /// The input (a pipe) is about to wait for its writer: what came before should be shown now.
        case inputWaits
    }

    private let source: PcapSource
    private let session: SniffSession
    private let count: Int?
    private let limit: Double?
    // Batches are plain values over memory this object frees (`deinit`): passing one between the
    // threads, adding an item and taking one out touch no reference count (those counts, on
    // objects both threads used, were a tenth of the stage's time).
    private let batches: BatchHandOver<Batch>
    private let done = DispatchSemaphore(value: 0)
    private let cancelled = Atomic<Bool>(false)
    private let stopped = Atomic<Bool>(false)
    // The stage's side.
    private var filling: Batch? = nil
    /// Events after which the batch being filled is handed over: small at first, so that the
    /// dissecting thread, which waits for the first batch, starts within a fraction of a
    /// millisecond; doubled at each hand-over up to `batchEvents`.
    private var handOverAt = ReassemblyReadAhead.firstBatchEvents
    // The consumer's side, a cache line away from the stage's, which the other core writes.
    private var separation = CacheLineSeparation()
    private var current: Batch? = nil
    /// The stage's `end()` was reached.
    private var ended = false
    /// Who keeps the batches `next()` is done with while records that point into their bytes
    /// are still to be printed (the pipeline); nil: they are given back at once.
    var holder: (any LentBytesHolder)? = nil
    private var separationAfter = CacheLineSeparation()

    /// Starts reading `source` into `session`'s reassembler: from now on only `next()` and `stop()`
    /// may be used, and the session's first half (`reassemble`, `packets`, `skipped`) belongs to
    /// the stage until `next()` has returned nil.
    init(source: PcapSource, session: SniffSession, count: Int?, duration: Double?) {
        self.source = source
        self.session = session
        self.count = count
        self.limit = duration
        batches = BatchHandOver(spares: (0..<Self.depth).map { _ in Batch() })
        // A capture still being written to a pipe: before waiting for more, hand over what was read.
        if source.readsAPipe { source.whenInputWaits { [weak self] in self?.handOverBeforeWaiting() } }
        let thread = Thread { [self] in
            stopWakeupPreemptionForThisThread()
            stage()
        }
        thread.name = "wsctl-sniff-reader"
        thread.start()
    }

    /// Frees every batch: by now (`stop()` or the end) the stage has ended, and each batch is
    /// here, being filled, or in the hand-over.
    deinit {
        if var b = current { b.free() }
        if var b = filling { b.free() }
        for var b in batches.drain() { b.free() }
    }

    /// The next item; nil once everything, end-of-capture events included, has been given.
    func next() -> Item? {
        while !ended {
            if current != nil {
                if !current!.allTaken { return current!.take() }
                // Emptied by the stage when it takes the batch again: this thread is the busier one.
                let b = current!
                current = nil
                if let holder {
                    holder.holdUntilPrinted { [self] in batches.giveBack(b) }
                } else {
                    batches.giveBack(b)
                }
            }
            current = batches.receive()
            if current == nil { ended = true }
        }
        return nil
    }

    /// The memory the stream bytes of the batch `next()` is taking items from lie in: a `.data`
    /// event's bytes, and whatever the dissector shows of them where they lie, stay there until
    /// the batch is given back (`holder`).
    var lentBytes: UnsafeRawBufferPointer { current?.region ?? UnsafeRawBufferPointer(start: nil, count: 0) }

    /// Stops the stage early (the dissecting thread gave up) and waits for it; harmless after the end.
    func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        cancelled.store(true, ordering: .releasing)
        batches.wakeFiller()
        done.wait()
    }

    private func stage() {
        defer { done.signal() }
        guard let first = takeSpare() else { return }
        filling = first
        var origin: Double? = nil
        reading: while !cancelled.load(ordering: .acquiring) {
            let result: PcapReadResult
            do {
                result = try source.read()
            } catch {
                session.uncountPacketsReadOutOfStep(error)
                guard add(.readError(error)) else { return }
                // Damage the source read past: the packets after it are dissected too.
                if (error as? PcapError)?.resumes == true { continue reading }
                break reading
            }
            switch result {
            case .packet(let packet):
                if origin == nil {
                    origin = packet.time
                    guard add(.origin(packet.time)) else { return }
                }
                if let limit, packet.time - origin! >= limit { break reading }
                var aborted = false
                session.reassemble(packet, linkType: source.packetLinkType) { event in
                    if !aborted && !add(.event(event)) { aborted = true }
                }
                if aborted { return }
                if let count, session.packets >= count { break reading }
            case .timeout:
                continue
            case .endOfCapture, .interrupted:
                break reading
            }
        }
        if cancelled.load(ordering: .acquiring) { return }
        var aborted = false
        session.finishReassembly { event in
            if !aborted && !add(.event(event)) { aborted = true }
        }
        if aborted { return }
        guard let last = filling else { return }
        filling = nil
        batches.hand(last)
        batches.end()
    }

    /// On the stage's thread, inside a read that is about to wait: the batch being filled goes to
    /// the consumer now, ending with `.inputWaits`.
    private func handOverBeforeWaiting() {
        guard filling != nil, add(.inputWaits), let batch = filling else { return }
        filling = nil
        batches.hand(batch)
        filling = takeSpare()
    }

    /// Adds an item to the batch being filled (copying a data event's bytes into it), handing the
    /// batch over when full. False when the stage is to stop.
    private func add(_ item: Item) -> Bool {
        guard filling != nil else { return false }
        if case .event(.data(let flow, let direction, let bytes, let offset, let time, let number)) = item {
            if !filling!.fits(bytes.count) {
                if filling!.count > 0 {
                    let full = filling!
                    filling = nil
                    batches.hand(full)
                    guard let b = takeSpare() else { return false }
                    filling = b
                }
                filling!.reserve(bytes.count)
            }
            let copy = filling!.copy(bytes)
            filling!.append(.event(.data(flow, direction, bytes: copy, offset: offset, time: time, packetNumber: number)))
        } else {
            filling!.append(item)
        }
        if filling!.count >= handOverAt {
            handOverAt = min(handOverAt &* 2, Self.batchEvents)
            let full = filling!
            filling = nil
            batches.hand(full)
            guard let b = takeSpare() else { return false }
            filling = b
        }
        return true
    }

    /// A batch to fill, or nil when the stage is to stop.
    private func takeSpare() -> Batch? {
        guard var batch = batches.takeSpare(unless: { cancelled.load(ordering: .acquiring) }) else { return nil }
        batch.reset()
        return batch
    }


    /// Items and the stream bytes they point to, as a value over memory allocated here and freed
    /// by `free()`: owned by the stage until queued, then by the consumer, who moves the items out
    /// one by one (`take`). (A spare batch's items were all taken; see `InOrderSlots`.)
    struct Batch: @unchecked Sendable {
        private var items = InOrderSlots<Item>(capacity: ReassemblyReadAhead.batchEvents)
        private var bytes: UnsafeMutableRawPointer
        private var capacity: Int
        private var used = 0

        init() {
            capacity = ReassemblyReadAhead.batchBytes
            bytes = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        }

        func fits(_ n: Int) -> Bool { capacity - used >= n }

        /// All the memory the batch's bytes may lie in.
        var region: UnsafeRawBufferPointer { UnsafeRawBufferPointer(start: bytes, count: capacity) }

        /// Room for `n` bytes in an empty batch.
        mutating func reserve(_ n: Int) {
            precondition(used == 0)
            guard n > capacity else { return }
            bytes.deallocate()
            capacity = n
            bytes = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        }

        mutating func copy(_ source: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
            let n = source.count
            let to = bytes + used
            if n > 0, let from = source.baseAddress { to.copyMemory(from: from, byteCount: n) }
            used += n
            return UnsafeRawBufferPointer(start: to, count: n)
        }

        var count: Int { items.count }
        var allTaken: Bool { items.allTaken }
        mutating func append(_ item: Item) { items.append(item) }
        /// The next item, moved out.
        mutating func take() -> Item { items.take() }

        /// Empties a batch whose items were all taken; a buffer grown for one large segment goes
        /// back to the standard size.
        mutating func reset() {
            items.removeAll()
            used = 0
            if capacity != ReassemblyReadAhead.batchBytes {
                bytes.deallocate()
                capacity = ReassemblyReadAhead.batchBytes
                bytes = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
            }
        }

        /// Frees the batch and the items not taken.
        mutating func free() {
            items.free()
            bytes.deallocate()
        }
    }
}

/// 128 bytes between fields that two threads write, so that they are not on one cache line
/// (nor on the pair of lines the hardware fetches together).
struct CacheLineSeparation {
    private var bytes: (UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64,
                        UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64, UInt64) =
        (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
}

/// Keeps what the dissecting thread is done with, whose bytes records still to be printed point
/// into, until they are printed: then it calls `release`, on whatever thread printed them.
protocol LentBytesHolder: AnyObject {
    func holdUntilPrinted(_ release: @escaping @Sendable () -> Void)
}
