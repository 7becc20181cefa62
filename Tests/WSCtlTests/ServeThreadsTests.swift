import Foundation
import Testing

/// Starting `wsctl serve` with flags it should refuse, bounded in time whatever it does.
enum ServeStartup {
    /// `wsctl serve --port 0 ARGS`, under `ulimit -n LIMIT` when one is given: its exit status (nil
    /// when it started serving instead, and was stopped), stdout and stderr.
    static func run(openFileLimit: Int? = nil, _ arguments: [String]) throws -> (status: Int32?, stdout: String, stderr: String) {
        let quoted = ([CLI.binary.path, "serve", "--port", "0", "--shutdown-grace", "1s"] + arguments)
            .map { "'" + $0.replacingOccurrences(of: "'", with: "'\\''") + "'" }.joined(separator: " ")
        let limit = openFileLimit.map { "ulimit -n \($0) && " } ?? ""
        let child = try ChildProcess(executable: URL(fileURLWithPath: "/bin/sh"), arguments: ["-c", "\(limit)exec \(quoted)"])
        // A server that started (printed its URL) is stopped: status nil, it did not refuse the flag.
        // (A crash report from swift-backtrace also goes to stdout.)
        let started = child.firstStdoutLine(timeout: 20)?.hasPrefix("ws") == true
        let status = started ? nil : child.waitForExit(timeout: 10)
        if child.isRunning { child.stop(timeout: 5) }
        return (status, child.stdout, child.stderr)
    }
}

/// `--threads` beyond 1-256 or beyond what the open-file limit allows is a usage error (exit 2)
/// naming the limit, checked before any event loop exists: NIO used to stop the process with a
/// fatal error (SIGILL, 132) when it ran out of descriptors for the loops.
@Suite("wsctl serve --threads", .timeLimit(.minutes(2)))
struct ServeThreadsTests {
    @Test func moreThreadsThanTheOpenFileLimitAllowsIsAUsageError() async throws {
        let r = try await offThePool { try ServeStartup.run(openFileLimit: 256, ["--threads", "100"]) }
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains("--threads 100: "), "\(r.stderr)")
        #expect(r.stderr.contains("open-file limit (ulimit -n) of 256 allows at most 42 threads"), "\(r.stderr)")
        #expect(r.stderr.contains("ulimit -n 600 or more"), "\(r.stderr)")
        #expect(!r.stderr.contains("Fatal error"), "\(r.stderr)")
    }

    @Test func threadsOutOfRangeIsAUsageError() async throws {
        let r = try await offThePool { try ServeStartup.run(openFileLimit: 1024, ["--threads", "100000"]) }
        #expect(r.status == 2, "\(r.stderr)")
        #expect(r.stderr.contains("--threads 100000: must be between 1 and 256"), "\(r.stderr)")
    }

    @Test func threadsWithinTheLimitStart() async throws {
        let r = try await offThePool { try ServeStartup.run(openFileLimit: 256, ["--threads", "8"]) }
        #expect(r.status == nil, "\(r.stderr)")
        #expect(r.stdout.hasPrefix("ws://127.0.0.1:"), "\(r.stdout) \(r.stderr)")
    }
}
