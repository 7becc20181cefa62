import Foundation
import Testing

/// Output that cannot be written is an error, not a silent success: with stdout on /dev/full
/// (every write fails with ENOSPC) each command stops with the reason on stderr and status 1,
/// whichever thread was writing (`sniff -r` prints on a thread of its own).
@Suite("Unwritable standard output", .enabled(if: FileManager.default.isWritableFile(atPath: "/dev/full"), "no /dev/full here"))
struct OutputFailureTests {
    static func runToDevFull(_ arguments: [String]) throws -> (status: Int32, stderr: String) {
        let p = Process()
        p.executableURL = CLI.binary
        p.arguments = arguments
        let full = try #require(FileHandle(forWritingAtPath: "/dev/full"))
        let err = Pipe()
        p.standardOutput = full
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        let stderr = err.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        return (p.terminationStatus, String(decoding: stderr, as: UTF8.self))
    }

    @Test(arguments: [
        ["sniff", "-r", SniffFixtures.path("concurrent"), "--json"],
        // Megabytes of JSON: the printer thread's writes fail, long before the end.
        ["sniff", "-r", SniffFixtures.path("large"), "--json", "--full"],
        ["sniff", "-r", SniffFixtures.path("concurrent"), "--one-thread"],
        ["decode", "--json", "81 05 48 65 6c 6c 6f"],
        ["key"],
    ])
    func failsWithTheReason(_ arguments: [String]) throws {
        let r = try Self.runToDevFull(arguments)
        #expect(r.status == 1, "\(arguments): status \(r.status)")
        #expect(r.stderr.contains("cannot write to standard output: No space left on device"), "\(arguments): \(r.stderr)")
    }
}
