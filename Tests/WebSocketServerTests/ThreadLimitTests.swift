import Testing

@testable import WebSocketServer

/// `--threads` is checked against 1...256 and the open-file limit before NIO opens any event loop.
@Suite struct ThreadLimitTests {
    @Test(arguments: [0, -1, 257, 100_000])
    func outOfRangeIsRefusedWhateverTheLimit(threads: Int) {
        #expect(ThreadLimit.problem(threads: threads, openFileLimit: nil) == "must be between 1 and 256")
        #expect(ThreadLimit.problem(threads: threads, openFileLimit: 1 << 20) == "must be between 1 and 256")
    }

    /// 3 descriptors per thread, within half of the limit: 1024 allows 170 threads.
    @Test func theOpenFileLimitAllowsHalfOfItsDescriptorsForThreads() {
        #expect(ThreadLimit.allowed(openFileLimit: 1024) == 170)
        #expect(ThreadLimit.problem(threads: 170, openFileLimit: 1024) == nil)
        let problem = ThreadLimit.problem(threads: 171, openFileLimit: 1024)
        #expect(problem?.contains("open-file limit (ulimit -n) of 1024 allows at most 170 threads") == true, "\(problem ?? "nil")")
        #expect(problem?.contains("ulimit -n 1026 or more") == true, "\(problem ?? "nil")")
        #expect(ThreadLimit.problem(threads: 256, openFileLimit: nil) == nil)
    }

    @Test func aTinyLimitAllowsNoThreadsButTheDefaultIsStillOne() {
        let problem = ThreadLimit.problem(threads: 1, openFileLimit: 5)
        #expect(problem?.contains("allows no event-loop threads") == true, "\(problem ?? "nil")")
        #expect(ThreadLimit.defaultThreads(preferred: 8, openFileLimit: 5) == 1)
    }

    @Test func theDefaultIsLoweredToWhatTheLimitAllows() {
        #expect(ThreadLimit.defaultThreads(preferred: 64, openFileLimit: 120) == 20)
        #expect(ThreadLimit.defaultThreads(preferred: 4, openFileLimit: 1024) == 4)
        #expect(ThreadLimit.defaultThreads(preferred: 1000, openFileLimit: nil) == 256)
    }

    @Test func thisProcessHasAReadableLimit() {
        // Linux and macOS both report one; RLIM_INFINITY would read as nil.
        if let limit = ThreadLimit.openFileLimit() { #expect(limit > 0) }
    }
}
