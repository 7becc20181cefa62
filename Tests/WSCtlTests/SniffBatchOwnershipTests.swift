import Foundation
import Testing
@testable import WSCtl

/// The batches that carry `sniff -r`'s items between its threads are values over memory freed by
/// hand (`ReassemblyReadAhead.Batch`, `SniffPipeline.Batch`). An item holding a reference (a read
/// error) must be released exactly once: by whoever takes it out, or by `free()` if nobody did.
/// A batch emptied by the consumer and freed as a spare released its read errors a second time,
/// which corrupted the heap at the end of a damaged capture (found by scripts/fuzz-sniff.sh on
/// a release build; a debug build happened not to crash).
@Suite("Sniff batches release each item once")
struct SniffBatchOwnershipTests {
    /// An error that counts its deinitialisations.
    final class Tracked: Error, @unchecked Sendable {
        nonisolated(unsafe) static var freed = 0
        deinit { Self.freed += 1 }
    }

    @Test func readAheadItemsTakenAreNotReleasedAgain() {
        Tracked.freed = 0
        var kept: Tracked? = Tracked()
        var batch = ReassemblyReadAhead.Batch()
        batch.append(.readError(kept!))
        batch.append(.origin(1))
        batch.append(.readError(Tracked()))
        // The consumer takes the first two; the third is left in the batch.
        if case .readError = batch.take() {} else { Issue.record("first item") }
        _ = batch.take()
        #expect(!batch.allTaken)
        batch.free()
        // The one left was released by free(); the one taken was not released again (this test
        // still holds it, uniquely).
        #expect(Tracked.freed == 1)
        #expect(isKnownUniquelyReferenced(&kept!))
        kept = nil
        #expect(Tracked.freed == 2)
    }
}
