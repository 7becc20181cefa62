import Dispatch
import Synchronization

/// Batches passed from one thread that fills them to another that empties them, and back: a
/// queue of full batches and a pool of spare ones, each counted by a semaphore, so that the filler
/// runs at most as many batches ahead as there are. The two stages of `sniff -r` use it
/// (`ReassemblyReadAhead`: reading to dissecting; `SniffPipeline`: dissecting to printing).
///
/// Batches are plain values over memory their owner frees: handing one over touches no reference
/// count. Whoever holds a batch owns it; `drain()` gives back the ones held here, to be freed once
/// both threads are done.
final class BatchHandOver<Batch: Sendable>: @unchecked Sendable {
    /// Full batches in order; nil: nothing more comes.
    private let queue = Mutex<[Batch?]>([])
    private let spare = Mutex<[Batch]>([])
    private let readyCount = DispatchSemaphore(value: 0)
    private let spareCount = DispatchSemaphore(value: 0)

    init(spares: [Batch]) {
        spare.withLock { $0 = spares }
        // Created at 0 and raised: libdispatch traps when a semaphore is freed below its initial
        // value, which this one is after an early stop.
        for _ in spares { spareCount.signal() }
    }

    // The filling thread's side.

    /// Queues a full batch for the other thread.
    func hand(_ batch: Batch) {
        queue.withLock { $0.append(batch) }
        readyCount.signal()
    }

    /// Tells the other thread that nothing more comes, after the batches handed so far.
    func end() {
        queue.withLock { $0.append(nil) }
        readyCount.signal()
    }

    /// A spare batch, waiting for one to be given back; nil when `wakeFiller()` woke the wait
    /// instead and `stop()` says to stop.
    func takeSpare(unless stop: () -> Bool = { false }) -> Batch? {
        spareCount.wait()
        if stop() { return nil }
        return spare.withLock { $0.removeLast() }
    }

    /// Wakes a filler waiting in `takeSpare` (the other thread gave up).
    func wakeFiller() { spareCount.signal() }

    // The emptying thread's side.

    /// The next full batch, waiting for one; nil once `end()` was reached.
    func receive() -> Batch? {
        readyCount.wait()
        return queue.withLock { $0.removeFirst() }
    }

    /// Gives an emptied batch back for filling.
    func giveBack(_ batch: Batch) {
        spare.withLock { $0.append(batch) }
        spareCount.signal()
    }

    /// Every batch still held here, queued or spare, taken out (to be freed: both threads are done).
    func drain() -> [Batch] {
        let queued = queue.withLock { q in
            defer { q = [] }
            return q.compactMap { $0 }
        }
        let spares = spare.withLock { s in
            defer { s = [] }
            return s
        }
        return queued + spares
    }
}
