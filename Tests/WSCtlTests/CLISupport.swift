import Foundation
import Testing

/// Runs the built `wsctl` binary as a user would, capturing stdout, stderr and the exit status.
struct CLIResult {
    var stdout: String
    var stderr: String
    var status: Int32
    var stdoutBytes: [UInt8]
}

enum CLI {
    /// The `wsctl` next to the test bundle (SwiftPM builds it because the test target depends on it).
    static let binary: URL = {
        let bundleDir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [
            bundleDir.appendingPathComponent("wsctl"),
            bundleDir.deletingLastPathComponent().appendingPathComponent("wsctl"),
            URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent(".build/debug/wsctl"),
        ]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0.path) } ?? candidates[0]
    }()

    /// Runs wsctl (or `executable`, such as /bin/sh for a redirection) with `args`.
    static func run(_ args: [String], stdin: [UInt8]? = nil, environment: [String: String] = [:], executable: URL = binary) throws -> CLIResult {
        let p = Process()
        p.executableURL = executable
        p.arguments = args
        var env = ProcessInfo.processInfo.environment
        env["NO_COLOR"] = "1"
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let out = Pipe(), err = Pipe(), inp = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = inp
        try p.run()
        // Read both pipes concurrently so a large output cannot block the child.
        nonisolated(unsafe) var outData = Data()
        nonisolated(unsafe) var errData = Data()
        let group = DispatchGroup()
        group.enter()
        DispatchQueue.global().async { outData = out.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        group.enter()
        DispatchQueue.global().async { errData = err.fileHandleForReading.readDataToEndOfFile(); group.leave() }
        if let stdin { inp.fileHandleForWriting.write(Data(stdin)) }
        try inp.fileHandleForWriting.close()
        p.waitUntilExit()
        group.wait()
        return CLIResult(stdout: String(decoding: outData, as: UTF8.self), stderr: String(decoding: errData, as: UTF8.self),
                         status: p.terminationStatus, stdoutBytes: [UInt8](outData))
    }

    /// Parses JSON Lines output into objects.
    static func jsonLines(_ s: String) throws -> [[String: Any]] {
        try s.split(separator: "\n").map { line in
            let obj = try JSONSerialization.jsonObject(with: Data(line.utf8))
            guard let dict = obj as? [String: Any] else { throw CLIError("not an object: \(line)") }
            return dict
        }
    }
}

struct CLIError: Error, CustomStringConvertible {
    var description: String
    init(_ d: String) { description = d }
}

/// Runs blocking work (child processes and the waits for them) on a Dispatch thread and awaits it,
/// so that a long test does not hold one of the few threads (one per core) that Swift Testing runs
/// every suite on: held for a minute, they made other suites' time limits run out while those
/// waited to start. Expectations stay in the test, on what `body` returns.
func offThePool<T: Sendable>(_ body: @escaping @Sendable () throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        DispatchQueue.global().async { continuation.resume(with: Result { try body() }) }
    }
}
