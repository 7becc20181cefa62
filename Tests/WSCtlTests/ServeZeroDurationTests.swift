import Foundation
import Testing

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A duration of 0: off where off means something (`--ping-interval`, `--idle-timeout`), "do not
/// wait" for `--shutdown-grace`, and a usage error (exit 2) naming the option where nothing could
/// work (`--handshake-timeout`, `--pong-timeout`). 0 used to be taken as given: every handshake
/// failed, a ping went out every 50 ms, and every connection was closed as idle at once.
@Suite("wsctl serve: durations of 0", .timeLimit(.minutes(2)))
struct ServeZeroDurationTests {
    static let rawClient = Interop.directory.appendingPathComponent("raw_client.py").path

    /// `raw_client.py no_pong` against a server started with `flags`: the frames the server sent
    /// to an open connection in `seconds`.
    static func framesSent(_ flags: [String], seconds: Double) throws -> JSON {
        try withServer(flags) { server in
            try Interop.raw(server.url, "no_pong", ["timeout": seconds])
        }
    }

    @Test(arguments: ["0", "0s", "0ms"])
    func handshakeTimeoutZeroIsAUsageError(value: String) async throws {
        let r = try await offThePool { try ServeStartup.run(["--handshake-timeout", value]) }
        #expect(r.status == 2, "\(r.stdout) \(r.stderr)")
        #expect(r.stderr.contains("--handshake-timeout \(value): must be more than 0"), "\(r.stderr)")
    }

    @Test func pongTimeoutZeroIsAUsageError() async throws {
        let r = try await offThePool { try ServeStartup.run(["--ping-interval", "1s", "--pong-timeout", "0"]) }
        #expect(r.status == 2, "\(r.stdout) \(r.stderr)")
        #expect(r.stderr.contains("--pong-timeout 0: must be more than 0"), "\(r.stderr)")
    }

    @Test func smallPositiveTimeoutsStillStart() async throws {
        let r = try await offThePool { try ServeStartup.run(["--handshake-timeout", "1ms", "--pong-timeout", "1ms"]) }
        #expect(r.status == nil, "\(r.stderr)")
    }

    @Test(.requiresPython)
    func pingIntervalZeroSendsNoPings() async throws {
        let r = try await offThePool { try Self.framesSent(["--ping-interval", "0"], seconds: 1.5) }
        #expect(r["frames"].array.isEmpty, "the server sent \(r["frames"]) with --ping-interval 0")
        #expect(r["closed"].bool == false)
    }

    @Test(.requiresPython)
    func idleTimeoutZeroClosesNothing() async throws {
        let r = try await offThePool { try Self.framesSent(["--idle-timeout", "0"], seconds: 1.5) }
        #expect(r["frames"].array.isEmpty, "the server sent \(r["frames"]) with --idle-timeout 0")
        #expect(r["closed"].bool == false)
    }

    /// With pings on, the connection's timer runs: an idle timeout of 0 must still close nothing.
    @Test(.requiresPython)
    func idleTimeoutZeroWithPingsClosesNothing() async throws {
        let r = try await offThePool { try Self.framesSent(["--idle-timeout", "0", "--ping-interval", "500ms"], seconds: 1.5) }
        let opcodes = r["frames"].array.compactMap { $0["opcode"].int }
        #expect(!opcodes.isEmpty && opcodes.allSatisfy { $0 == 9 }, "expected pings only: \(r["frames"])")
        #expect(r["closed"].bool == false)
    }

    /// `--shutdown-grace 0`: clients still get 1001, and the server exits at once rather than
    /// waiting for a client that never answers it.
    @Test(.requiresPython)
    func shutdownGraceZeroDoesNotWait() async throws {
        let (status, seconds, stderr, client) = try await offThePool { () throws -> (Int32?, Double, String, JSON) in
            let server = try ServeProcess(["--shutdown-grace", "0"])
            defer { if server.child.isRunning { server.stop() } }
            let client = try Interop.start(Interop.python, [Self.rawClient, server.url, "no_pong", #"{"timeout": 8}"#])
            defer { client.stop(timeout: 2) }
            guard server.child.waitForStderr(containing: " open ", timeout: 10) else {
                throw CLIError("the client did not connect: \(server.stderr) \(client.stderr)")
            }
            let start = Date()
            server.child.send(signal: SIGINT)
            let status = server.child.waitForExit(timeout: 10)
            let seconds = Date().timeIntervalSince(start)
            return (status, seconds, server.stderr, try Interop.finish(client, "raw_client.py no_pong", timeout: 10))
        }
        #expect(status == 0, "\(stderr)")
        #expect(seconds < 2, "the server took \(seconds) s to exit with --shutdown-grace 0")
        #expect(stderr.contains("wsctl serve: connections 1,"), "\(stderr)")
        #expect(client["frames"][0]["opcode"].int == 8 && client["frames"][0]["code"].int == 1001, "\(client["frames"])")
        #expect(client["closed"].bool == true)
    }

    /// --help says what 0 does for each of them.
    @Test func helpSaysWhatZeroMeans() throws {
        let help = try CLI.run(["serve", "--help"])
        let text = help.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        for expected in [
            "--handshake-timeout <DURATION> Time a client has to send its upgrade request; more than 0.",
            "--ping-interval <DURATION> Send a ping this often; no pong within --pong-timeout closes the connection. 0 or not given: off (the default).",
            "--pong-timeout <DURATION> How long to wait for a pong; more than 0.",
            "--idle-timeout <DURATION> Close connections idle this long (1001). 0 or not given: off (the default).",
            "0: do not wait, close at once.",
        ] {
            #expect(text.contains(expected), "no \"\(expected)\" in wsctl serve --help")
        }
    }
}
