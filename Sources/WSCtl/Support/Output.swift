#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

import Foundation
import Synchronization
import WebSocketInspect

/// "1 gap", "3 gaps": a count with its noun, for the summary lines on stderr.
func counted(_ n: Int, _ noun: String) -> String { "\(n) \(noun)\(n == 1 ? "" : "s")" }

/// Buffered standard output and unbuffered standard error, written straight to the file
/// descriptors so that large dumps are not slowed by per-line system calls.
enum Output {
    /// Everything for stdout goes through this one buffer, written out with large write(2) calls.
    nonisolated(unsafe) private static var buffer = OutputBuffer(capacity: 1 << 19)
    /// The buffer is written out once it holds this much.
    static let flushThreshold = 1 << 18
    /// Where the buffer goes: standard output, or standard error when standard output carries
    /// something else (`sniff -w -` writes the capture there). Set before anything is written.
    nonisolated(unsafe) private(set) static var descriptor: Int32 = 1

    /// Sends what would go to standard output to standard error from now on.
    static func redirectToStandardError() {
        flush()
        descriptor = 2
    }

    static func write(_ s: String) {
        buffer.append(contentsOf: s)
        flushIfFull()
    }

    static func line(_ s: String) {
        buffer.append(contentsOf: s)
        buffer.append(0x0A)
        flushIfFull()
    }

    static func bytes(_ b: [UInt8]) {
        buffer.append(b)
        flushIfFull()
    }

    /// Lets `body` write into the stdout buffer directly (renderers that build lines from bytes).
    static func withBuffer(_ body: (inout OutputBuffer) -> Void) {
        body(&buffer)
        flushIfFull()
    }

    private static func flushIfFull() {
        if buffer.count >= flushThreshold { flush() }
    }

    static func flush() {
        guard writeFailure.load(ordering: .acquiring) == 0 else {
            buffer.removeAll()
            return
        }
        buffer.withBytes { raw in
            guard let failure = writeAll(fd: descriptor, raw) else { return }
            // Only the main thread ends the process: exiting under the feet of threads that are
            // reading a capture or writing -w through stdio could crash or garble them. Another
            // thread (sniff's printer) records the failure, drops further output, and the main
            // thread stops at its next `checkWriteFailure()`.
            if Thread.isMainThread { stdoutFailed(failure) }
            writeFailure.store(failure, ordering: .releasing)
        }
        buffer.removeAll()
    }

    /// errno of a failed write to stdout on a thread other than the main one; 0 while none failed.
    private static let writeFailure = Atomic<Int32>(0)

    /// Stops the command (on the main thread) if writing stdout failed on another thread.
    static func checkWriteFailure() {
        let failure = writeFailure.load(ordering: .acquiring)
        if failure != 0 { stdoutFailed(failure) }
    }

    /// Output that cannot be written (a full disk, an I/O error) is not dropped in silence: the
    /// command stops with the reason and status 1. A reader that went away (EPIPE, when SIGPIPE is
    /// ignored) ends it quietly, with status 1 as well.
    private static func stdoutFailed(_ error: Int32) -> Never {
        if error != EPIPE {
            let line = Array("wsctl: cannot write to standard \(descriptor == 1 ? "output" : "error"): \(String(cString: strerror(error)))\n".utf8)
            line.withUnsafeBytes { _ = writeAll(fd: 2, $0) }
        }
        exit(1)
    }

    /// Writes everything; the errno that stopped it, if any.
    @discardableResult
    private static func writeAll(fd: Int32, _ raw: UnsafeRawBufferPointer) -> Int32? {
        var done = 0
        while done < raw.count {
            let n = Glibc.write(fd, raw.baseAddress! + done, raw.count - done)
            if n < 0 {
                if errno == EINTR { continue }
                return errno
            }
            done += n
        }
        return nil
    }

    /// A diagnostic on stderr, prefixed with the program name as Unix tools do.
    static func error(_ s: String) {
        flush()
        let line = Array("wsctl: \(s)\n".utf8)
        line.withUnsafeBytes { _ = writeAll(fd: 2, $0) }
    }

    static func errorRaw(_ s: String) {
        flush()
        let line = Array(s.utf8)
        line.withUnsafeBytes { _ = writeAll(fd: 2, $0) }
    }

    /// A whole line to stderr in one write(2), without touching the stdout buffer: safe from any thread.
    static func stderrLine(_ s: String) {
        let line = Array(s.utf8)
        line.withUnsafeBytes { _ = writeAll(fd: 2, $0) }
    }

    static func warning(_ s: String) { error("warning: \(s)") }

    /// Colour only on a terminal and only when `NO_COLOR` is unset (no-color.org).
    static var colourEnabled: Bool {
        guard isatty(descriptor) != 0, getenv("NO_COLOR") == nil else { return false }
        if let term = getenv("TERM"), String(cString: term) == "dumb" { return false }
        return true
    }

    static var stdinIsTerminal: Bool { isatty(0) != 0 }
}

/// Reading input from files and stdin.
enum Input {
    struct ReadError: Error, CustomStringConvertible {
        var description: String
    }

    /// Reads a whole file, or stdin for `-`.
    static func readAll(path: String) throws -> [UInt8] {
        let fd: Int32 = path == "-" ? 0 : open(path, O_RDONLY)
        guard fd >= 0 else {
            throw ReadError(description: "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        defer { if fd != 0 { close(fd) } }
        var out: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1 << 16)
        while true {
            let n = chunk.withUnsafeMutableBytes { read(fd, $0.baseAddress, $0.count) }
            if n < 0 {
                if errno == EINTR { continue }
                throw ReadError(description: "error reading \(path): \(String(cString: strerror(errno)))")
            }
            if n == 0 { break }
            out.append(contentsOf: chunk[0..<n])
        }
        return out
    }
}
