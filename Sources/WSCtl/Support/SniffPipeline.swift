import Dispatch
import Foundation
import Synchronization
import WebSocketCodec
import WebSocketInspect
import WebSocketSniffer

/// Printing on a thread of its own: the calling thread dissects (after `ReassemblyReadAhead` read
/// and reassembled the file on a third, or reading it itself with -w); a printer thread formats the
/// events (JSON Lines or text) and writes them.
///
/// Events come from the dissector as borrowed views. What they show of the reading thread's
/// batch (`lent`: a whole frame's payload, unmasked where it lies, and the message that is that
/// frame) is printed from there: that batch is held until the printer is done with it
/// (`holdUntilPrinted`). What lies in buffers the dissector reuses is copied as it is submitted:
/// the shown payload (at most `--max-payload` bytes unless `--full`) into the batch's arena (a
/// single-frame message shares its frame's copy when the bytes are the same), and the violations,
/// close payload or envelope, if any, beside it; they stay until the printer is done with the batch.
/// Batches of up to 4,096 events go through a queue of four, so the dissector runs at most three
/// batches ahead and memory stays bounded whatever the capture.
///
/// Output is the same as printing on the calling thread, byte for byte and in the same order
/// (tests hold the two modes to each other). Only the printer thread touches stdout while the
/// pipeline runs; `finish()` hands the printer back, and from then on the caller prints (stats,
/// warnings) as before.
final class SniffPipeline: @unchecked Sendable {
    static let batchEvents = 4_096
    static let firstBatchEvents = 128
    static let batchBytes = 1 << 20
    static let depth = 4

    // Batches are plain values over memory freed here (`free`): submitting an event touches no
    // reference count (those counts, on objects the printer thread used too, cost the busiest
    // thread a twentieth of its time).
    private let batches: BatchHandOver<Batch>
    private let done = DispatchSemaphore(value: 0)
    // The dissecting thread's side.
    private var filling: Batch
    /// The last event submitted, if it was a frame: its payload where the dissector lent it, and
    /// the copy in `filling`'s arena.
    private var lastFrame: (source: UnsafeRawBufferPointer, copy: UnsafeRawBufferPointer)?
    /// Memory the records submitted may point into that stays as it is until the release given to
    /// `holdUntilPrinted` for it runs (the reading thread's batch being dissected): what lies in
    /// it is not copied. Empty: everything is copied.
    var lent = UnsafeRawBufferPointer(start: nil, count: 0)
    private var finished = false
    /// Events after which `filling` is handed over: small at first, so that the printer starts
    /// early, doubled at each hand-over up to `batchEvents`.
    private var handOverAt = SniffPipeline.firstBatchEvents
    // The printer thread's side, a cache line away.
    private var separation = CacheLineSeparation()
    /// The printer: the printer thread's while it runs, the caller's after `finish()`.
    private var printer: SniffPrinter
    private var separationAfter = CacheLineSeparation()

    init(printer: SniffPrinter) {
        self.printer = printer
        filling = Batch()
        batches = BatchHandOver(spares: (1..<Self.depth).map { _ in Batch() })
        let thread = Thread { [self] in
            stopWakeupPreemptionForThisThread()
            printLoop()
        }
        thread.name = "wsctl-sniff-printer"
        thread.start()
    }

    /// Queues an event for printing; frames and messages are copied out of the dissector's buffers.
    /// (Each event is built once, in its slot: this runs for every frame and message, on the
    /// thread that is the bottleneck.)
    func submit(_ event: SniffEvent) {
        switch event {
        case .frame(let c, let d, let t, let record, let timing):
            withUnsafePointer(to: record) { frame(connection: c, direction: d, time: t, record: $0, timing: timing) }
        case .message(let c, let d, let t, let record, let timing):
            withUnsafePointer(to: record) { message(connection: c, direction: d, time: t, record: $0, timing: timing) }
        default:
            lastFrame = nil
            filling.append(event)
            handOverIfFull()
        }
    }

    private func handOverIfFull() {
        if filling.count >= handOverAt || filling.arena.bytes >= Self.batchBytes {
            handOverAt = min(handOverAt &* 2, Self.batchEvents)
            handOver()
        }
    }

    /// Hands what was submitted to the printer now, and has it write its output out after
    /// printing it (the input is waiting for more: it may be a while).
    func flushNow() {
        filling.flushAfter = true
        handOver()
    }

    /// Prints everything submitted, stops the printer thread and returns its printer.
    func finish() -> SniffPrinter {
        precondition(!finished)
        finished = true
        if filling.count > 0 { handOver() }
        batches.end()
        done.wait()
        Output.checkWriteFailure()
        return printer
    }

    /// A single-frame message's data is the payload of the frame submitted just before it: it
    /// shares that copy (`data` at the same place in the copy). Decided by the bytes, not by where
    /// they lie: the frame's buffer may have been freed and its memory given to the message's in
    /// between, with other bytes in it.
    static func sharedCopy(of data: UnsafeRawBufferPointer,
                           lastFrame: (source: UnsafeRawBufferPointer, copy: UnsafeRawBufferPointer)?) -> UnsafeRawBufferPointer? {
        guard let (source, copy) = lastFrame, let shared = rebase(data, from: source, to: copy) else { return nil }
        return shared.isEmpty || memcmp(shared.baseAddress!, data.baseAddress!, data.count) == 0 ? shared : nil
    }

    /// Whether the printer may read `part` where it lies: it is in `lent` (or empty).
    @inline(__always)
    static func lies(_ part: UnsafeRawBufferPointer, in lent: UnsafeRawBufferPointer) -> Bool {
        guard let p = part.baseAddress, let l = lent.baseAddress else { return part.isEmpty }
        return p >= l && p + part.count <= l + lent.count
    }

    /// `part` at the same place in `copy` as it was in `original`, if it lay inside it (a frame's
    /// text is its payload; a message's text is a prefix of its data).
    private static func rebase(_ part: UnsafeRawBufferPointer, from original: UnsafeRawBufferPointer,
                               to copy: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer? {
        if part.isEmpty { return UnsafeRawBufferPointer(start: copy.baseAddress, count: 0) }
        guard lies(part, in: original), let p = part.baseAddress, let o = original.baseAddress else { return nil }
        let start = p - o
        return UnsafeRawBufferPointer(rebasing: copy[start..<start + part.count])
    }

    private func handOver() {
        lastFrame = nil  // its copy goes with the batch
        // Output that can no longer be written stops the dissection too (on this, the main thread).
        Output.checkWriteFailure()
        batches.hand(filling)
        filling = batches.takeSpare()!  // (nothing stops the printer thread while batches come)
        filling.flushAfter = false
    }

    private func printLoop() {
        while true {
            guard var batch = batches.receive() else { break }
            // Each event is printed once and then done with: frames and messages where they lie,
            // others moved out. (The printer is copied out of this object once per batch: read
            // from it, it was retained and released for every event.)
            let printer = self.printer
            if printer.mode == .json {
                printJSONLines(&batch, printer)
            } else {
                while let kind = batch.nextKind() {
                    switch kind {
                    case .frame:
                        batch.takeFrame { e in printer.printFrame(e.pointee.connection, e.pointee.direction, e.pointee.time, e.pointee.record, e.pointee.timing) }
                    case .message:
                        batch.takeMessage { e in printer.printMessage(e.pointee.connection, e.pointee.direction, e.pointee.time, e.pointee.record, e.pointee.timing) }
                    case .other:
                        printer.print(batch.takeOther())
                    }
                }
            }
            if batch.flushAfter { Output.flush() }
            batch.reset()
            batches.giveBack(batch)
        }
        done.signal()
    }

    /// A batch's events as JSON lines: each run of frames and messages written into the output
    /// buffer in one access to it (taken again for each line, with the printer's mode switched on
    /// and its record copied out, that was 22 M of the printer's 654 M instructions on the
    /// benchmark capture), up to an other event,
    /// which goes through the printer as before, or up to a full buffer, which is written out.
    private func printJSONLines(_ batch: inout Batch, _ printer: SniffPrinter) {
        var other = false
        while true {
            Output.withBuffer { out in
                while out.count < Output.flushThreshold, let kind = batch.nextKind() {
                    switch kind {
                    case .frame: batch.takeFrame { printer.writeJSON($0, to: &out) }
                    case .message: batch.takeMessage { printer.writeJSON($0, to: &out) }
                    case .other:
                        other = true
                        return
                    }
                }
            }
            if other {
                other = false
                printer.print(batch.takeOther())
            } else if batch.allKindsTaken {
                return
            }
        }
    }

    /// Frees the batches (the printer thread has ended: each is spare or being filled).
    deinit {
        filling.free()
        for var b in batches.drain() { b.free() }
    }

    /// A frame or message as the printer gets it: the parts of `SniffEvent.frame` or `.message`,
    /// in a slot of their own. (`Batch.append` initializes a slot field by field: a field added
    /// here goes there too.)
    struct Entry<Record> {
        var connection: Int
        var direction: WebSocketDirection
        var time: Double
        var record: Record
        var timing: MessageTiming
    }
    typealias FrameEntry = Entry<FrameRecordView>
    typealias MessageEntry = Entry<MessageRecordView>

    enum EntryKind: UInt8 { case frame, message, other }

    /// Events and the bytes they point to, as a value over memory allocated here and freed by
    /// `free()`: owned by one thread at a time, the filler until it is queued, then the printer,
    /// who takes the events (`nextKind`, then `takeFrame`, `takeMessage` or `takeOther`) before
    /// `reset()` (see `InOrderSlots`).
    ///
    /// Frames and messages, nearly every event, have slots of their own, written once where the
    /// printer reads them: as `SniffEvent`s, each was copied in and out of the enum and its case
    /// written and read back from memory just written, on both threads.
    struct Batch: @unchecked Sendable {
        /// What each event is, in order; each kind's events are in its own slots.
        private var kinds = InOrderSlots<EntryKind>(capacity: SniffPipeline.batchEvents)
        private var frames = InOrderSlots<FrameEntry>(capacity: SniffPipeline.batchEvents)
        private var messages = InOrderSlots<MessageEntry>(capacity: SniffPipeline.batchEvents)
        private var others = InOrderSlots<SniffEvent>(capacity: SniffPipeline.batchEvents)
        var arena = Arena()
        /// Write the output out once this batch is printed (`flushNow`).
        var flushAfter = false
        /// Frees what `keep` copied, and gives back what `holdUntilPrinted` held.
        private var release: [() -> Void] = []

        var count: Int { kinds.count }
        mutating func append(_ event: SniffEvent) {
            kinds.append(.other)
            others.append(event)
        }
        /// Puts a frame in its slot, and lets `ownParts` make what its record borrows the batch's
        /// own there (in place: the record is not copied again).
        mutating func appendFrame(connection: Int, direction: WebSocketDirection, time: Double, record: UnsafePointer<FrameRecordView>,
                                  timing: MessageTiming, _ ownParts: (inout FrameRecordView, inout Batch) -> Void) {
            kinds.append(.frame)
            let slot = Self.append(to: &frames, connection: connection, direction: direction, time: time, record: record, timing: timing)
            ownParts(&slot.pointee.record, &self)
        }
        mutating func appendMessage(connection: Int, direction: WebSocketDirection, time: Double, record: UnsafePointer<MessageRecordView>,
                                    timing: MessageTiming, _ ownParts: (inout MessageRecordView, inout Batch) -> Void) {
            kinds.append(.message)
            let slot = Self.append(to: &messages, connection: connection, direction: direction, time: time, record: record, timing: timing)
            ownParts(&slot.pointee.record, &self)
        }

        /// An entry put in a new slot field by field, the record straight from where the dissector
        /// lent it: built as a value and then put in the slot, it was copied twice (two calls to
        /// memcpy for every event).
        @inline(__always)
        private static func append<R>(to slots: inout InOrderSlots<Entry<R>>, connection: Int, direction: WebSocketDirection, time: Double,
                                      record: UnsafePointer<R>, timing: MessageTiming) -> UnsafeMutablePointer<Entry<R>> {
            let slot = slots.appendUninitializedSlot()
            initialize(slot, \.connection, connection)
            initialize(slot, \.direction, direction)
            initialize(slot, \.time, time)
            initialize(slot, \.timing, timing)
            initialize(slot, \.record, from: record)
            return slot
        }

        /// Initializes one stored property of an entry in an uninitialized slot (entries are plain
        /// data, so the slot is initialized once each of them is). Typed, so that only the value's
        /// size is read: `initializeMemory(as:from:count:)` copies whole strides, past the end of a
        /// record the dissector lends from its stack (AddressSanitizer: stack-buffer-overflow).
        @inline(__always)
        private static func initialize<E, T>(_ slot: UnsafeMutablePointer<E>, _ field: WritableKeyPath<E, T>, _ value: T) {
            UnsafeMutableRawPointer(slot).advanced(by: MemoryLayout<E>.offset(of: field)!).assumingMemoryBound(to: T.self).initialize(to: value)
        }
        @inline(__always)
        private static func initialize<E, T>(_ slot: UnsafeMutablePointer<E>, _ field: WritableKeyPath<E, T>, from source: UnsafePointer<T>) {
            initialize(slot, field, source.pointee)
        }

        /// What the next event is, or nil when all were taken.
        mutating func nextKind() -> EntryKind? { kinds.allTaken ? nil : kinds.take() }
        var allKindsTaken: Bool { kinds.allTaken }
        /// The next frame, lent for `body` where it lies.
        mutating func takeFrame(_ body: (UnsafePointer<FrameEntry>) -> Void) { frames.takeInPlace(body) }
        mutating func takeMessage(_ body: (UnsafePointer<MessageEntry>) -> Void) { messages.takeInPlace(body) }
        /// The next other event, moved out.
        mutating func takeOther() -> SniffEvent { others.take() }

        /// A copy of values a record borrows (violations, a close payload, an envelope: rare),
        /// kept until `reset()`.
        mutating func keep<T>(_ values: UnsafeBufferPointer<T>) -> UnsafeBufferPointer<T> {
            let copy = UnsafeMutableBufferPointer<T>.allocate(capacity: values.count)
            _ = copy.initialize(fromContentsOf: values)
            release.append {
                copy.deinitialize()
                copy.deallocate()
            }
            return UnsafeBufferPointer(copy)
        }

        /// Calls `giveBack` once the events are printed (or freed).
        mutating func hold(_ giveBack: @escaping @Sendable () -> Void) {
            release.append(giveBack)
        }

        mutating func keep<T>(_ value: UnsafePointer<T>) -> UnsafePointer<T> {
            keep(UnsafeBufferPointer(start: value, count: 1)).baseAddress!
        }

        /// Empties a batch whose events were all taken.
        mutating func reset() {
            kinds.removeAll()
            frames.removeAll()
            messages.removeAll()
            others.removeAll()
            flushAfter = false
            arena.reset()
            for r in release { r() }
            release.removeAll(keepingCapacity: true)
        }

        /// Frees the batch and the events not taken.
        mutating func free() {
            kinds.free()
            frames.free()
            messages.free()
            others.free()
            arena.free()
            for r in release { r() }
            release = []
        }
    }

    /// Bytes that stay where they are until `reset()`: 1 MiB chunks, or one of its own for a
    /// payload larger than that (`--full`). A value over memory freed by `free()`.
    struct Arena {
        private var chunks: [(base: UnsafeMutableRawPointer, capacity: Int)] = []
        private var current = 0
        private var used = 0
        /// Bytes copied since the last reset.
        private(set) var bytes = 0

        mutating func copy(_ source: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
            let n = source.count
            guard n > 0, let from = source.baseAddress else { return UnsafeRawBufferPointer(start: nil, count: 0) }
            if chunks.isEmpty || chunks[current].capacity - used < n { nextChunk(n) }
            let to = chunks[current].base + used
            to.copyMemory(from: from, byteCount: n)
            used += n
            bytes += n
            return UnsafeRawBufferPointer(start: to, count: n)
        }

        private mutating func nextChunk(_ n: Int) {
            if !chunks.isEmpty && current + 1 < chunks.count && chunks[current + 1].capacity >= n {
                current += 1
            } else {
                let capacity = max(n, SniffPipeline.batchBytes)
                let chunk = (UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16), capacity)
                if chunks.isEmpty { chunks.append(chunk) } else { chunks.insert(chunk, at: current + 1); current += 1 }
            }
            used = 0
        }

        /// Forgets the bytes; keeps the standard-size chunks (at most a few) for the next batch.
        mutating func reset() {
            var kept: [(base: UnsafeMutableRawPointer, capacity: Int)] = []
            for c in chunks {
                if c.capacity == SniffPipeline.batchBytes && kept.count < 2 { kept.append(c) } else { c.base.deallocate() }
            }
            chunks = kept
            current = 0
            used = 0
            bytes = 0
        }

        mutating func free() {
            for c in chunks { c.base.deallocate() }
            chunks = []
        }
    }
}

/// Frames and messages straight from the dissector (`SniffSession.dissect(_:mayModify:sink:emit:)`),
/// copied out of its buffers into their slot as `submit` copies them.
extension SniffPipeline: SniffRecordSink {
    func frame(connection: Int, direction: WebSocketDirection, time: Double, record: UnsafePointer<FrameRecordView>, timing: MessageTiming) {
        let lent = self.lent
        // Copied once, into its slot, and its borrowed parts made the batch's own there.
        filling.appendFrame(connection: connection, direction: direction, time: time, record: record, timing: timing) { owned, batch in
            let payload = owned.payload
            Self.own(&owned.payload, text: &owned.text, lent: lent, sharing: nil, in: &batch)
            if !owned.violations.isEmpty { owned.violations = batch.keep(owned.violations) }
            if let close = owned.borrowedClose { owned.borrowedClose = batch.keep(close) }
            lastFrame = (payload, owned.payload)
        }
        handOverIfFull()
    }

    func message(connection: Int, direction: WebSocketDirection, time: Double, record: UnsafePointer<MessageRecordView>, timing: MessageTiming) {
        let lent = self.lent
        filling.appendMessage(connection: connection, direction: direction, time: time, record: record, timing: timing) { owned, batch in
            Self.own(&owned.data, text: &owned.text, lent: lent, sharing: lastFrame, in: &batch)
            if !owned.violations.isEmpty { owned.violations = batch.keep(owned.violations) }
            if let envelope = owned.borrowedEnvelope { owned.borrowedEnvelope = batch.keep(envelope) }
            lastFrame = nil
        }
        handOverIfFull()
    }

    /// Makes a record's shown bytes and its text (a prefix of them, or elsewhere) the printer's to
    /// read: left where they are if they lie in `lent`, else copied into the batch's arena, or,
    /// for a message, given the copy of the frame before it (`sharedCopy`).
    @inline(__always)
    static func own(_ bytes: inout UnsafeRawBufferPointer, text: inout UnsafeRawBufferPointer?, lent: UnsafeRawBufferPointer,
                    sharing lastFrame: (source: UnsafeRawBufferPointer, copy: UnsafeRawBufferPointer)?, in batch: inout Batch) {
        let original = bytes
        if !lies(original, in: lent) {
            bytes = sharedCopy(of: original, lastFrame: lastFrame) ?? batch.arena.copy(original)
            if let t = text { text = rebase(t, from: original, to: bytes) ?? batch.arena.copy(t) }
        } else if let t = text, !lies(t, in: lent) {
            text = batch.arena.copy(t)
        }
    }
}

/// The reading thread's batches, held until what the records submitted show of them is printed.
extension SniffPipeline: LentBytesHolder {
    /// Holds a batch whose events were all submitted: the batch being filled carries `release`
    /// to the printer, which calls it once it has printed that batch (or frees it unprinted), and
    /// is handed over at once. So each of the pipeline's batches holds at most one of the reading
    /// thread's, three at most in all, and the reading thread always has others to fill: were
    /// they collected in the batch being filled until it had events enough, a frame spanning many
    /// of them would leave the reading thread none, and the dissecting thread waiting for it.
    func holdUntilPrinted(_ release: @escaping @Sendable () -> Void) {
        filling.hold(release)
        handOver()
    }
}
