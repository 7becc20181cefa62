import Dispatch
import Foundation
import Synchronization
import WebSocketSniffer

/// Reading a capture file on a thread of its own, ahead of the dissector: libpcap's reads and the
/// kernel's copies (about a tenth of `sniff -r`'s time) overlap with dissection instead of adding
/// to it. Used with `SniffPipeline` for files only; a live capture is read where it is dissected.
///
/// Packets are copied into batches (up to 4,096 packets or 1 MiB of packet bytes; a larger packet
/// gets a batch of its own) that go through a queue of four, so the reader runs at most a few
/// megabytes ahead. `read()` gives the packets, then the end of the file or the error that ended
/// it, in the order libpcap gave them: a packet's data is valid until the next `read()`, as with
/// `PcapSource.read()`.
final class PacketReadAhead: @unchecked Sendable {
    static let batchPackets = 4_096
    static let batchBytes = 1 << 20
    static let depth = 4

    private let source: PcapSource
    private let queue = Mutex<[Batch]>([])
    private let spare = Mutex<[Batch]>([])
    private let readyCount = DispatchSemaphore(value: 0)
    private let spareCount: DispatchSemaphore
    private let done = DispatchSemaphore(value: 0)
    private let cancelled = Atomic<Bool>(false)
    private let stopped = Atomic<Bool>(false)
    // The consumer's side (the dissecting thread).
    private var current: Batch? = nil
    private var next = 0

    init(source: PcapSource) {
        self.source = source
        spare.withLock { $0 = (0..<Self.depth).map { _ in Batch() } }
        // Created at 0 and raised: libdispatch traps when a semaphore is freed below its initial
        // value, which this one is after an early stop.
        spareCount = DispatchSemaphore(value: 0)
        for _ in 0..<Self.depth { spareCount.signal() }
        let thread = Thread { [self] in readLoop() }
        thread.name = "wsctl-sniff-reader"
        thread.start()
    }

    deinit { stop() }

    /// The next packet; at the end `.endOfCapture`, or the read error that ended the file.
    func read() throws -> PcapReadResult {
        while true {
            if let b = current {
                if next < b.count {
                    let p = b.packet(next)
                    next += 1
                    return .packet(p)
                }
                if let error = b.error { throw error }
                if b.isLast { return .endOfCapture }
                b.reset()
                spare.withLock { $0.append(b) }
                spareCount.signal()
                current = nil
            }
            readyCount.wait()
            current = queue.withLock { $0.removeFirst() }
            next = 0
        }
    }

    /// Stops the reader (when the dissector stops early: --count, --duration) and waits for it.
    func stop() {
        guard !stopped.exchange(true, ordering: .acquiringAndReleasing) else { return }
        cancelled.store(true, ordering: .releasing)
        spareCount.signal()
        done.wait()
    }

    private func readLoop() {
        defer { done.signal() }
        guard var batch = takeSpare() else { return }
        while !cancelled.load(ordering: .acquiring) {
            let result: PcapReadResult
            do {
                result = try source.read()
            } catch {
                batch.error = error
                batch.isLast = true
                hand(batch)
                return
            }
            switch result {
            case .packet(let p):
                if !batch.fits(p.data.count) {
                    if batch.count > 0 {
                        hand(batch)
                        guard let b = takeSpare() else { return }
                        batch = b
                    }
                    batch.reserve(p.data.count)
                }
                batch.append(p)
                if batch.count == Self.batchPackets {
                    hand(batch)
                    guard let b = takeSpare() else { return }
                    batch = b
                }
            case .timeout:
                continue
            case .endOfCapture, .interrupted:
                batch.isLast = true
                hand(batch)
                return
            }
        }
    }

    /// A batch to fill, or nil when the reader is to stop.
    private func takeSpare() -> Batch? {
        spareCount.wait()
        if cancelled.load(ordering: .acquiring) { return nil }
        return spare.withLock { $0.removeLast() }
    }

    private func hand(_ batch: Batch) {
        queue.withLock { $0.append(batch) }
        readyCount.signal()
    }

    /// Packets and their bytes; owned by the reader until queued, then by the consumer.
    final class Batch: @unchecked Sendable {
        private struct Entry {
            var number: Int
            var seconds: Int64
            var nanoseconds: Int32
            var wireLength: Int
            var offset: Int
            var length: Int
        }
        private var entries: [Entry] = []
        private var bytes: UnsafeMutableRawPointer
        private var capacity: Int
        private var used = 0
        var error: (any Error)? = nil
        var isLast = false

        init() {
            capacity = PacketReadAhead.batchBytes
            bytes = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
            entries.reserveCapacity(PacketReadAhead.batchPackets)
        }

        deinit { bytes.deallocate() }

        var count: Int { entries.count }

        func fits(_ n: Int) -> Bool { capacity - used >= n }

        /// Room for one packet of `n` bytes in an empty batch.
        func reserve(_ n: Int) {
            precondition(used == 0)
            guard n > capacity else { return }
            bytes.deallocate()
            capacity = n
            bytes = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
        }

        func append(_ p: PcapPacket) {
            let n = p.data.count
            if n > 0, let from = p.data.baseAddress { (bytes + used).copyMemory(from: from, byteCount: n) }
            entries.append(Entry(number: p.number, seconds: p.seconds, nanoseconds: p.nanoseconds,
                                 wireLength: p.wireLength, offset: used, length: n))
            used += n
        }

        func packet(_ i: Int) -> PcapPacket {
            let e = entries[i]
            return PcapPacket(number: e.number, seconds: e.seconds, nanoseconds: e.nanoseconds, wireLength: e.wireLength,
                              data: UnsafeRawBufferPointer(start: bytes + e.offset, count: e.length))
        }

        /// Empties the batch; a buffer grown for one large packet goes back to the standard size.
        func reset() {
            entries.removeAll(keepingCapacity: true)
            used = 0
            if capacity != PacketReadAhead.batchBytes {
                bytes.deallocate()
                capacity = PacketReadAhead.batchBytes
                bytes = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: 16)
            }
        }
    }
}
