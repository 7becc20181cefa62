import Foundation
import Testing
@testable import WebSocketSniffer

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The window standard input is read through (`PipeSpool`): what it holds follows `keepFrom`, never
/// more than `maxHeld` behind the read position, and the stream moves back only within it.
@Suite struct PipeSpoolTests {
    /// A spool over a pipe that a thread fills with `count` bytes, byte i being `i % 251`.
    static func spool(count: Int, maxHeld: Int64 = PipeSpool.defaultMaxHeld) throws -> PipeSpool {
        signal(SIGPIPE, SIG_IGN)
        var fds: [Int32] = [-1, -1]
        try #require(pipe(&fds) == 0)
        let writer = fds[1]
        Thread {
            // The pattern from any offset: a slice starting at `offset % 251`.
            let pattern = (0..<((1 << 16) + 251)).map { UInt8($0 % 251) }
            var sent = 0
            while sent < count {
                let n = min(1 << 16, count - sent)
                let start = sent % 251
                var done = 0
                while done < n {
                    let w = pattern.withUnsafeBytes { write(writer, $0.baseAddress! + start + done, n - done) }
                    if w < 0 && errno == EINTR { continue }
                    guard w > 0 else { close(writer); return }
                    done += w
                }
                sent += n
            }
            close(writer)
        }.start()
        return PipeSpool(descriptor: fds[0], maxHeld: maxHeld)
    }

    static func expected(_ offset: Int, _ count: Int) -> [UInt8] { (offset..<(offset + count)).map { UInt8($0 % 251) } }

    /// With nothing to keep, the window is small; with `keepFrom` left at the start, it stops
    /// growing at `maxHeld` behind the read position.
    @Test func windowIsBounded() throws {
        let maxHeld: Int64 = 4 << 20
        let total = 12 << 20
        for keep in [false, true] {
            let spool = try Self.spool(count: total, maxHeld: maxHeld)
            let file = try #require(spool.open())
            defer { fclose(file) }
            var buffer = [UInt8](repeating: 0, count: 1 << 20)
            var read = 0
            var largest: Int64 = 0
            while true {
                if !keep { spool.keepFrom = Int64(read) }
                let n = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) }
                if n == 0 { break }
                if read % (2 << 20) == 0 { #expect(buffer[0..<64].elementsEqual(Self.expected(read, 64))) }
                read += n
                largest = max(largest, spool.end - spool.base)
            }
            #expect(read == total)
            if keep {
                // An eighth more before it is let go, and the read that brought the last bytes.
                #expect(largest <= maxHeld + maxHeld / 7 + (1 << 20), "held \(largest) bytes")
                #expect(spool.base >= Int64(total) - maxHeld - maxHeld / 7 - (1 << 20))
            } else {
                #expect(largest <= 2 << 20, "held \(largest) bytes with nothing to keep")
            }
        }
    }

    /// The stream moves back within the window and reads the same bytes again; before the
    /// window it cannot; `bytes(at:count:)` and `reaches` read on to the end and no further.
    @Test func seeksWithinTheWindow() throws {
        let total = 5 << 20
        let spool = try Self.spool(count: total)
        let file = try #require(spool.open())
        defer { fclose(file) }
        spool.keepFrom = 3 << 20
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        for _ in 0..<4 { _ = buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, $0.count, file) } }
        #expect(ftello(file) == 4 << 20)
        #expect(fseeko(file, (3 << 20) + 17, SEEK_SET) == 0)
        #expect(buffer.withUnsafeMutableBytes { fread($0.baseAddress, 1, 100, file) } == 100)
        #expect(Array(buffer[0..<100]) == Self.expected((3 << 20) + 17, 100))
        #expect(spool.base > 0, "nothing let go")
        #expect(fseeko(file, off_t(spool.base - 1), SEEK_SET) != 0)
        #expect(spool.bytes(at: spool.base - 1, count: 4) == nil)
        // Reading on without moving the stream.
        #expect(spool.bytes(at: Int64(total) - 10, count: 64) == Self.expected(total - 10, 10))
        #expect(spool.bytes(at: Int64(total) + 5, count: 8) == [])
        #expect(spool.reaches(Int64(total)))
        #expect(!spool.reaches(Int64(total) + 1))
        #expect(ftello(file) == (3 << 20) + 117)
    }
}
