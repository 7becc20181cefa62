#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The payload a frame's JSON line just showed, and where that line's `text` and `payload_hex`
/// values lie in the output buffer, so that the line of the message the frame makes up copies them
/// instead of escaping and hex-encoding the same bytes a second time.
///
/// Most messages are one uncompressed frame, whose message `payload_hex` (and `text`) are the
/// frame's: without this every payload shown is encoded twice, which was a third of the printing.
/// The reuse is decided by the bytes, not by where they came from: a message whose data equals the
/// remembered payload byte for byte, while the buffer still holds the frame's line
/// (`OutputBuffer.clears`), gets the copy. Otherwise it is written as usual, so the output is the
/// same either way (the tests print with and without an echo and compare).
///
/// One per output buffer (the echo does not tell buffers apart: its ranges are positions in the
/// buffer it was given); not for sharing between threads.
public final class JSONPayloadEcho {
    /// Payloads longer than this are not remembered (`--full` can show megabytes; copying one to
    /// compare later would cost about what it saves).
    static let maxRemembered = 1 << 16

    private var bytes: UnsafeMutableRawPointer
    private var capacity: Int
    private var count = 0
    /// Whether `bytes`, `text` and `hex` describe a line in the buffer.
    private var valid = false
    /// The buffer's `clears` when the frame line was written.
    private var clears = 0
    /// The frame's `text` value (with its quotes) when it was the whole payload; nil otherwise.
    private var text: Range<Int>?
    /// The frame's `payload_hex` value, with its quotes.
    private var hex: Range<Int> = 0..<0

    public init() {
        capacity = 512
        bytes = .allocate(byteCount: capacity, alignment: 16)
    }

    deinit { bytes.deallocate() }

    /// After a frame line: `payload` was shown at `hex` and, when `text` is not nil, as text at
    /// `text` (only when the text was the whole payload).
    func remember(_ payload: UnsafeRawBufferPointer, text: Range<Int>?, hex: Range<Int>, in out: borrowing OutputBuffer) {
        valid = false
        let n = payload.count
        guard n <= Self.maxRemembered else { return }
        if n > capacity {
            bytes.deallocate()
            capacity = max(n, 2 * capacity)
            bytes = .allocate(byteCount: capacity, alignment: 16)
        }
        if n > 0, let source = payload.baseAddress { bytes.copyMemory(from: source, byteCount: n) }
        count = n
        self.text = text
        self.hex = hex
        clears = out.clears
        valid = true
    }

    /// Whether `data` is the remembered payload and the frame line is still in `out`.
    func matches(_ data: UnsafeRawBufferPointer, in out: borrowing OutputBuffer) -> Bool {
        guard valid, clears == out.clears, data.count == count else { return false }
        guard count > 0, let d = data.baseAddress else { return true }
        return Self.equal(d, UnsafeRawPointer(bytes), count)
    }

    /// memcmp: the C library's, 32 or 64 bytes at a time (eight at a time here was 90 instructions
    /// a message line).
    private static func equal(_ a: UnsafeRawPointer, _ b: UnsafeRawPointer, _ n: Int) -> Bool {
        memcmp(a, b, n) == 0
    }

    /// The frame's text value, if it was the whole payload (valid only after `matches`).
    var textRange: Range<Int>? { text }
    /// The frame's hex value (valid only after `matches`).
    var hexRange: Range<Int> { hex }
}
