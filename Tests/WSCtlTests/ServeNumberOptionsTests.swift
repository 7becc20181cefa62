import Foundation
import Testing

/// serve's numeric options take a negative number as their value and refuse it by their own
/// check (it read as an option: "Missing value"), and `--max-connections` 0 or less is refused
/// (the server started and then could only answer 503).
@Suite("wsctl serve: numbers out of range", .timeLimit(.minutes(2)))
struct ServeNumberOptionsTests {
    @Test(arguments: [
        (["--max-connections", "0"], "--max-connections must be at least 1, got 0"),
        (["--max-connections", "-1"], "--max-connections must be at least 1, got -1"),
        (["--port", "-1"], "--port takes 0-65535"),
        (["--threads", "-2"], "--threads -2: must be between 1 and 256"),
        (["--max-processes", "-1", "--exec", "cat"], "--max-processes must be at least 1"),
    ])
    func refusedAtStart(_ flags: [String], _ message: String) async throws {
        let r = try await offThePool { try ServeStartup.run(flags) }
        #expect(r.status == 2, "\(r.stdout) \(r.stderr)")
        #expect(r.stderr.contains(message), "\(r.stderr)")
    }
}
