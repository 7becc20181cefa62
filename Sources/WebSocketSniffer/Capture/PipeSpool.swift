internal import CStdioCookie
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A pipe (standard input that is not a regular file) read through a window of its recent bytes,
/// so that a damaged capture arriving on it can be searched for the next readable record and read
/// on from there, as a file is (`CaptureResync`).
///
/// libpcap reads it as a stdio stream (`open()`, over glibc's fopencookie) whose position can be
/// moved back as far as the window reaches and forward by reading on. The window starts at
/// `keepFrom`, which the reader moves along (the last place a search may need: its latest
/// checkpoint), but never holds much more than `maxHeld` bytes behind the read position: with a
/// checkpoint further back than that, damage cannot be searched for and reading stops there, as
/// for a pipe before. Reading on while searching is bounded too: a record or block is at most
/// 16 MiB, and the search drops what it has passed over.
///
/// Reads return as soon as the pipe has bytes, so a capture still being written (`tcpdump -w - |
/// wsctl sniff -r -`) is dissected as it comes.
final class PipeSpool {
    private let descriptor: Int32
    /// The offset of `held[0]` in the stream.
    private(set) var base: Int64 = 0
    private var held: [UInt8] = []
    /// The pipe said end of file (or failed: `failure` says why).
    private(set) var atEnd = false
    private(set) var failure: Int32 = 0
    /// The stream's position (libpcap's, through stdio).
    private var position: Int64 = 0
    /// Bytes before this may be let go.
    var keepFrom: Int64 = 0
    /// Called before a read that would wait for the pipe (nothing is there yet): what was read so
    /// far can be shown first, as a capture still being written goes on.
    var beforeWaiting: (() -> Void)?

    /// At most about this many bytes are held behind the read position, whatever `keepFrom` says
    /// (`defaultMaxHeld` but in tests).
    let maxHeld: Int64
    static let defaultMaxHeld: Int64 = 32 << 20
    /// What is let go is a multiple of this (a multiple of any stdio buffer size glibc picks).
    static let alignment: Int64 = 1 << 16
    /// Bytes asked of the pipe per read (fewer come when fewer are there).
    static let readSize = 1 << 16

    /// Takes ownership of `descriptor` (closed with the stream, or at deinit if no stream was made).
    init(descriptor: Int32, maxHeld: Int64 = PipeSpool.defaultMaxHeld) {
        self.descriptor = descriptor
        self.maxHeld = maxHeld
    }

    private var closed = false
    deinit { if !closed { close(descriptor) } }

    /// The end of what has been read from the pipe so far.
    var end: Int64 { base + Int64(held.count) }

    /// Reads on until `offset` is held or the pipe ends; true if it is held.
    @discardableResult
    func fill(to offset: Int64) -> Bool {
        while end < offset && !atEnd { readOnce() }
        return end >= offset
    }

    private func readOnce() {
        let start = held.count
        held.append(contentsOf: repeatElement(0, count: Self.readSize))
        var n = 0
        repeat {
            n = held.withUnsafeMutableBytes { Glibc.read(descriptor, $0.baseAddress! + start, Self.readSize) }
        } while n < 0 && errno == EINTR
        if n < 0 { failure = errno }
        held.removeLast(Self.readSize - max(n, 0))
        if n <= 0 { atEnd = true }
    }

    /// Up to `count` bytes at `offset` (fewer at the end of the stream, none past it); nil if the
    /// window no longer reaches back to `offset`.
    func bytes(at offset: Int64, count: Int) -> [UInt8]? {
        guard offset >= base else { return nil }
        fill(to: offset + Int64(count))
        let from = Int(min(offset - base, Int64(held.count)))
        let to = Int(min(offset + Int64(count) - base, Int64(held.count)))
        return Array(held[from..<to])
    }

    /// True if the stream holds every byte before `offset` (reading on as needed).
    func reaches(_ offset: Int64) -> Bool { fill(to: offset) }

    /// Lets go of bytes before both `keepFrom` and `offset`, and of any more than `maxHeld`
    /// behind the read position. In steps of at least 1 MiB and an eighth of what is held, so
    /// that moving the rest down costs at most a few copies of each byte; and only whole
    /// `alignment` blocks: glibc's fseeko on this stream first moves to the start of the stdio
    /// buffer block the target lies in, which must still be held.
    func release(before offset: Int64) {
        let floor = max(min(keepFrom, offset), position - maxHeld) / Self.alignment * Self.alignment
        let drop = Int(min(max(0, floor - base), Int64(held.count)))
        guard drop >= 1 << 20 && drop * 8 >= held.count else { return }
        held.removeFirst(drop)
        base += Int64(drop)
    }

    // MARK: The stdio stream

    /// A read-only stdio stream over the pipe (the spool stays alive while it is open); nil if
    /// glibc cannot make one.
    func open() -> UnsafeMutablePointer<FILE>? {
        let cookie = Unmanaged.passRetained(self).toOpaque()
        let file = wsctl_stdio_cookie_open(cookie, { cookie, buffer, size in
            Unmanaged<PipeSpool>.fromOpaque(cookie!).takeUnretainedValue().read(into: buffer!, size: size)
        }, { cookie, offset, whence in
            Unmanaged<PipeSpool>.fromOpaque(cookie!).takeUnretainedValue().seek(offset!, whence: whence)
        }, { cookie in
            let spool = Unmanaged<PipeSpool>.fromOpaque(cookie!).takeRetainedValue()
            spool.closed = true
            return close(spool.descriptor)
        })
        if file == nil { Unmanaged<PipeSpool>.fromOpaque(cookie).release() }
        return file
    }

    private func read(into buffer: UnsafeMutablePointer<CChar>, size: Int) -> Int {
        // Whatever the pipe has now: a capture still being written is read as it comes.
        if position >= end && !atEnd {
            if let beforeWaiting {
                var ready = pollfd(fd: descriptor, events: Int16(POLLIN), revents: 0)
                if poll(&ready, 1, 0) == 0 { beforeWaiting() }
            }
            readOnce()
        }
        if position >= end { return failure != 0 && position == end ? -1 : 0 }
        let from = Int(position - base)
        let n = min(size, held.count - from)
        held.withUnsafeBytes { UnsafeMutableRawPointer(buffer).copyMemory(from: $0.baseAddress! + from, byteCount: n) }
        position += Int64(n)
        release(before: position)
        return n
    }

    private func seek(_ offset: UnsafeMutablePointer<Int64>, whence: Int32) -> Int32 {
        let target: Int64
        switch whence {
        case SEEK_SET: target = offset.pointee
        case SEEK_CUR: target = position + offset.pointee
        default: return -1  // the end of a pipe is not known until it comes
        }
        guard target >= base else { return -1 }
        position = target
        offset.pointee = target
        return 0
    }
}
