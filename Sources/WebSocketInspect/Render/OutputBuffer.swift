internal import CSIMDKernels

/// Bytes being prepared for output, written through a raw pointer: building a line costs no
/// `String`, no `Array` and, once the buffer has grown to its working size, no allocation.
///
/// `sniff` renders hundreds of thousands of lines a second; built as Strings, the appends and the
/// allocations behind them were most of its time. Renderers write into one of these, and the
/// command hands the whole buffer to write(2) at once. Noncopyable because it owns its memory.
public struct OutputBuffer: ~Copyable {
    @usableFromInline var base: UnsafeMutablePointer<UInt8>
    @usableFromInline var capacity: Int
    @usableFromInline var used: Int
    /// Bytes written so far.
    public var count: Int { used }
    /// JSON state: a value was just written, so the next key or array element needs a comma.
    @usableFromInline var needsComma = false
    /// How many times the bytes were forgotten (`removeAll`): a position taken under one count
    /// still holds what was written there while the count is the same.
    public private(set) var clears = 0
    /// The whole seconds of the last absolute time `jsonSeconds` wrote, and their digits (up to
    /// 16, in two words): capture times share them for a second at a time, hundreds of thousands
    /// of lines.
    @usableFromInline var lastWholeSeconds: UInt64 = .max
    @usableFromInline var lastWholeDigits: (UInt64, UInt64) = (0, 0)
    @usableFromInline var lastWholeCount = 0

    /// - Parameter capacity: the initial size; the buffer doubles as needed.
    public init(capacity: Int = 1 << 12) {
        self.capacity = max(capacity, 16)
        base = .allocate(capacity: self.capacity)
        used = 0
    }

    deinit { base.deallocate() }

    public var isEmpty: Bool { used == 0 }

    /// The bytes written, borrowed for the call.
    public func withBytes<R, E: Error>(_ body: (UnsafeRawBufferPointer) throws(E) -> R) throws(E) -> R {
        try body(UnsafeRawBufferPointer(start: base, count: used))
    }

    /// A copy of the bytes written, as a `String` (they are UTF-8 when only the `append` and JSON
    /// methods wrote them, since those write valid UTF-8 or what they were given).
    public func makeString() -> String {
        String(decoding: UnsafeBufferPointer(start: base, count: used), as: UTF8.self)
    }

    /// Like `makeString`, without a final newline.
    public func makeLine() -> String {
        let n = used > 0 && base[used - 1] == 0x0A ? used - 1 : used
        return String(decoding: UnsafeBufferPointer(start: base, count: n), as: UTF8.self)
    }

    /// Forgets the bytes written and keeps the memory.
    public mutating func removeAll() {
        used = 0
        needsComma = false
        clears &+= 1
    }

    /// A piece of output its writer may ask for again (`appendRemembered`): the key the writer
    /// gave it, where it is, under which `clears` count, and the JSON comma state before and
    /// after it.
    @usableFromInline var rememberedKey: (UInt64, UInt64) = (.max, .max)
    @usableFromInline var rememberedRange = 0..<0
    @usableFromInline var rememberedClears = -1
    @usableFromInline var rememberedCommas = (before: false, after: false)

    /// Where a piece to remember begins (give it to `remember(since:as:)` once it is written).
    public var mark: (position: Int, needsComma: Bool) { (used, needsComma) }

    /// Remembers what was written since `mark` under `key`, in place of what was remembered
    /// before.
    public mutating func remember(since mark: (position: Int, needsComma: Bool), as key: (UInt64, UInt64)) {
        rememberedKey = key
        rememberedRange = mark.position..<used
        rememberedClears = clears
        rememberedCommas = (mark.needsComma, needsComma)
    }

    /// Appends a copy of the piece remembered under `key`, if it is the one remembered last, is
    /// still in the buffer and began in the same comma state as now (so it reads the same here);
    /// false, with nothing written, otherwise.
    public mutating func appendRemembered(_ key: (UInt64, UInt64)) -> Bool {
        guard key == rememberedKey, rememberedClears == clears, needsComma == rememberedCommas.before else { return false }
        appendCopy(of: rememberedRange)
        needsComma = rememberedCommas.after
        return true
    }

    /// Appends a copy of bytes written earlier (a range that `clears` says is still there).
    public mutating func appendCopy(of range: Range<Int>) {
        precondition(range.lowerBound >= 0 && range.upperBound <= used)
        let n = range.count
        reserve(n)
        (base + used).update(from: base + range.lowerBound, count: n)
        used &+= n
    }

    /// Makes room for `n` more bytes.
    @inlinable @inline(__always)
    public mutating func reserve(_ n: Int) {
        if capacity &- used < n { grow(n) }
    }

    @usableFromInline
    mutating func grow(_ n: Int) {
        let needed = used + n
        var newCapacity = capacity
        while newCapacity < needed { newCapacity *= 2 }
        let new = UnsafeMutablePointer<UInt8>.allocate(capacity: newCapacity)
        new.update(from: base, count: used)
        base.deallocate()
        base = new
        capacity = newCapacity
    }

    @inlinable @inline(__always)
    public mutating func append(_ byte: UInt8) {
        reserve(1)
        base[used] = byte
        used &+= 1
    }

    @inlinable
    public mutating func append(_ bytes: UnsafeRawBufferPointer) {
        guard let source = bytes.baseAddress, bytes.count > 0 else { return }
        reserve(bytes.count)
        UnsafeMutableRawPointer(base + used).copyMemory(from: source, byteCount: bytes.count)
        used &+= bytes.count
    }

    @inlinable @inline(__always)
    public mutating func append(_ s: StaticString) {
        if s.hasPointerRepresentation {
            let n = s.utf8CodeUnitCount
            reserve(n)
            Self.copySmall(UnsafeRawPointer(s.utf8Start), to: UnsafeMutableRawPointer(base + used), count: n)
            used &+= n
        } else {
            s.withUTF8Buffer { append(UnsafeRawBufferPointer($0)) }
        }
    }

    /// Copies `n` bytes without a call for the short pieces JSON is made of (keys, literals, runs
    /// of keys with their values): overlapping loads cover 4–64 bytes (two words up to 16, two
    /// or four vectors of 16 up to 64), and no load reaches outside the source.
    @inlinable @inline(__always)
    static func copySmall(_ from: UnsafeRawPointer, to: UnsafeMutableRawPointer, count n: Int) {
        typealias V = SIMD16<UInt8>
        if n > 16 && n <= 64 {
            let head = from.loadUnaligned(as: V.self)
            let tail = from.loadUnaligned(fromByteOffset: n &- 16, as: V.self)
            if n > 32 {
                let second = from.loadUnaligned(fromByteOffset: 16, as: V.self)
                let third = from.loadUnaligned(fromByteOffset: n &- 32, as: V.self)
                to.storeBytes(of: second, toByteOffset: 16, as: V.self)
                to.storeBytes(of: third, toByteOffset: n &- 32, as: V.self)
            }
            to.storeBytes(of: head, as: V.self)
            to.storeBytes(of: tail, toByteOffset: n &- 16, as: V.self)
        } else if n >= 8 && n <= 16 {
            let head = from.loadUnaligned(as: UInt64.self)
            let tail = from.loadUnaligned(fromByteOffset: n &- 8, as: UInt64.self)
            to.storeBytes(of: head, as: UInt64.self)
            to.storeBytes(of: tail, toByteOffset: n &- 8, as: UInt64.self)
        } else if n >= 4 && n < 8 {
            let head = from.loadUnaligned(as: UInt32.self)
            let tail = from.loadUnaligned(fromByteOffset: n &- 4, as: UInt32.self)
            to.storeBytes(of: head, as: UInt32.self)
            to.storeBytes(of: tail, toByteOffset: n &- 4, as: UInt32.self)
        } else if n < 4 {
            for i in 0..<n { to.storeBytes(of: from.load(fromByteOffset: i, as: UInt8.self), toByteOffset: i, as: UInt8.self) }
        } else {
            to.copyMemory(from: from, byteCount: n)
        }
    }

    public mutating func append(contentsOf s: String) {
        var s = s
        s.withUTF8 { append(UnsafeRawBufferPointer($0)) }
    }

    public mutating func append(_ bytes: [UInt8]) {
        bytes.withUnsafeBytes { append($0) }
    }

    /// Decimal digits, as `String(value)` writes them.
    @inlinable
    public mutating func append(decimal value: Int) {
        reserve(Self.decimalRoom)
        put(decimal: value)
    }

    /// Decimal digits, as `String(value)` writes them.
    @inlinable
    public mutating func append(decimal value: UInt) {
        append(decimal: UInt64(value))
    }

    /// Decimal digits, as `String(value)` writes them.
    @inlinable
    public mutating func append(decimal value: UInt64) {
        reserve(Self.decimalRoom)
        put(decimal: value)
    }

    // MARK: Pieces written into room reserved beforehand

    /// The room `put(decimal:)` needs: the 20 digits of `UInt64.max`, or a sign and the 19 of
    /// `Int.min`.
    @inlinable public static var decimalRoom: Int { 20 }

    /// Whether `n` more bytes fit in the room reserved (checked in debug builds, where the tests
    /// run, by every `put`: a run of pieces that outgrew the room its writer reserved fails there).
    @inlinable @inline(__always)
    func fits(_ n: Int) -> Bool { capacity &- used >= n }

    /// Writes `s` into room already reserved with `reserve`: a line's pieces of known length take
    /// one check for the run of them, not one each.
    @inlinable @inline(__always)
    public mutating func put(_ s: StaticString) {
        guard s.hasPointerRepresentation else { return append(s) }
        let n = s.utf8CodeUnitCount
        assert(fits(n), "put past the room reserved")
        Self.copySmall(UnsafeRawPointer(s.utf8Start), to: UnsafeMutableRawPointer(base + used), count: n)
        used &+= n
    }

    /// Decimal digits, as `String(value)` writes them, into room already reserved (`decimalRoom`).
    @inlinable @inline(__always)
    public mutating func put(decimal value: Int) {
        if value < 0 {
            assert(fits(1), "put past the room reserved")
            base[used] = UInt8(ascii: "-")
            used &+= 1
        }
        put(decimal: UInt64(value.magnitude))
    }

    /// Decimal digits, as `String(value)` writes them, into room already reserved (`decimalRoom`):
    /// one and two digits (most counts and lengths on a line) in place, longer values in
    /// `putLong(decimal:)`.
    @inlinable @inline(__always)
    public mutating func put(decimal value: UInt64) {
        // (What is written: eight bytes below 100,000,000, stored as one word, else the digits.)
        assert(fits(value < 100_000_000 ? 8 : Self.decimalDigitCount(value)), "put past the room reserved")
        if value < 10 {
            base[used] = UInt8(truncatingIfNeeded: value) &+ 0x30
            used &+= 1
        } else if value < 100 {
            let pairs = UnsafeRawPointer(Self.decimalPairs.utf8Start)
            UnsafeMutableRawPointer(base + used).storeBytes(
                of: pairs.loadUnaligned(fromByteOffset: Int(truncatingIfNeeded: value) &* 2, as: UInt16.self), as: UInt16.self)
            used &+= 2
        } else {
            putLong(decimal: value)
        }
    }

    /// The digits of a value of 100 or more (room reserved): three or four as pairs from a table,
    /// up to eight at once, longer ones two at a time from the end once the length is known.
    @usableFromInline
    mutating func putLong(decimal value: UInt64) {
        if value < 10_000 {
            let pairs = UnsafeRawPointer(Self.decimalPairs.utf8Start)
            let out = UnsafeMutableRawPointer(base + used)
            let high = Int(truncatingIfNeeded: value / 100), low = Int(truncatingIfNeeded: value % 100)
            if high < 10 {
                out.storeBytes(of: UInt8(truncatingIfNeeded: high) &+ 0x30, as: UInt8.self)
                out.storeBytes(of: pairs.loadUnaligned(fromByteOffset: low &* 2, as: UInt16.self), toByteOffset: 1, as: UInt16.self)
                used &+= 3
            } else {
                out.storeBytes(of: pairs.loadUnaligned(fromByteOffset: high &* 2, as: UInt16.self), as: UInt16.self)
                out.storeBytes(of: pairs.loadUnaligned(fromByteOffset: low &* 2, as: UInt16.self), toByteOffset: 2, as: UInt16.self)
                used &+= 4
            }
            return
        }
        if value < 100_000_000 {
            // Indexes, offsets and lengths: all eight digits at once, stored as one word and
            // moved on past the leading zeros.
            let digits = Self.eightDigits(value)
            let zeros = digits.trailingZeroBitCount &>> 3
            let ascii = (digits &+ 0x3030_3030_3030_3030) &>> UInt64(truncatingIfNeeded: zeros &<< 3)
            UnsafeMutableRawPointer(base + used).storeBytes(of: ascii.littleEndian, as: UInt64.self)
            used &+= 8 &- zeros
            return
        }
        let digits = Self.decimalDigitCount(value)
        let pairs = UnsafeRawPointer(Self.decimalPairs.utf8Start)
        let out = UnsafeMutableRawPointer(base + used)
        var v = value
        var at = digits
        while v >= 100 {
            let pair = Int(truncatingIfNeeded: v % 100) &* 2
            v /= 100
            at &-= 2
            out.storeBytes(of: pairs.loadUnaligned(fromByteOffset: pair, as: UInt16.self), toByteOffset: at, as: UInt16.self)
        }
        if v >= 10 {
            out.storeBytes(of: pairs.loadUnaligned(fromByteOffset: Int(truncatingIfNeeded: v) &* 2, as: UInt16.self), as: UInt16.self)
        } else {
            out.storeBytes(of: UInt8(truncatingIfNeeded: v) &+ 0x30, as: UInt8.self)
        }
        used &+= digits
    }

    /// The eight decimal digits of `value` (< 100,000,000, leading zeros included) as byte values
    /// 0–9, the most significant in the low byte (first in memory): the value is split in two
    /// halves of four digits, each into two pairs (a multiply and shift stands for dividing by
    /// 100 in each 32-bit lane), and each pair into two digits (the same for 10 in 16-bit lanes).
    /// (Every value from 10 to 99,999,999 was checked once against its digits worked out one by
    /// one; `OutputBufferTests` checks the first 200,000 and 200,000 drawn at random.)
    @inlinable @inline(__always)
    static func eightDigits(_ value: UInt64) -> UInt64 {
        let high = value / 10_000, low = value % 10_000
        var x = high | low << 32
        let hundreds = ((x &* 10_486) >> 20) & 0x0000_007F_0000_007F
        x = hundreds | (x &- hundreds &* 100) << 16
        let tens = ((x &* 103) >> 10) & 0x000F_000F_000F_000F
        return tens | (x &- tens &* 10) << 8
    }

    /// How many decimal digits `value` has: comparisons for the lengths offsets and sizes have.
    @inlinable @inline(__always)
    static func decimalDigitCount(_ value: UInt64) -> Int {
        if value < 100_000 {
            return value < 100 ? (value < 10 ? 1 : 2) : (value < 1_000 ? 3 : (value < 10_000 ? 4 : 5))
        }
        if value < 10_000_000_000 {
            return value < 10_000_000 ? (value < 1_000_000 ? 6 : 7)
                : (value < 100_000_000 ? 8 : (value < 1_000_000_000 ? 9 : 10))
        }
        var digits = 10
        var rest = value / 10_000_000_000
        while rest != 0 {
            digits &+= 1
            rest /= 10
        }
        return digits
    }

    /// "00", "01", … "99".
    @usableFromInline static let decimalPairs: StaticString = "00010203040506070809101112131415161718192021222324252627282930313233343536373839404142434445464748495051525354555657585960616263646566676869707172737475767778798081828384858687888990919293949596979899"

    /// Lower-case hex, two digits per byte, no separators (tshark's `websocket.payload` style).
    public mutating func appendHex(_ bytes: UnsafeRawBufferPointer) {
        let n = bytes.count
        guard n > 0, let source = bytes.baseAddress else { return }
        reserve(2 &* n)
        let out = UnsafeMutableRawPointer(base + used)
        var i = wsctl_hex_digits_blocks(source.assumingMemoryBound(to: UInt8.self), n, out.assumingMemoryBound(to: UInt8.self))
        while n &- i >= 4 {
            let four = UInt32(littleEndian: source.loadUnaligned(fromByteOffset: i, as: UInt32.self))
            out.storeBytes(of: Self.hexDigits(four).littleEndian, toByteOffset: 2 &* i, as: UInt64.self)
            i &+= 4
        }
        while i < n {
            let b = source.load(fromByteOffset: i, as: UInt8.self)
            out.storeBytes(of: Self.hexDigit(b >> 4), toByteOffset: 2 &* i, as: UInt8.self)
            out.storeBytes(of: Self.hexDigit(b & 0xF), toByteOffset: 2 &* i &+ 1, as: UInt8.self)
            i &+= 1
        }
        used &+= 2 &* n
    }

    /// The 8 hex digits of 4 bytes (packed with the first byte in the low bits), packed the same
    /// way: each byte is spread into a 16-bit lane, its nibbles become bytes, and each nibble becomes
    /// '0'–'9' or 'a'–'f' without a branch (`n + 6` carries into bit 4 exactly when `n` > 9).
    @inlinable @inline(__always)
    static func hexDigits(_ four: UInt32) -> UInt64 {
        var x = UInt64(four)
        x = (x | x << 16) & 0x0000_FFFF_0000_FFFF
        x = (x | x << 8) & 0x00FF_00FF_00FF_00FF
        let nibbles = (x >> 4) & 0x000F_000F_000F_000F | (x & 0x000F_000F_000F_000F) << 8
        let letters = ((nibbles &+ 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101
        return nibbles &+ 0x3030_3030_3030_3030 &+ letters &* 0x27
    }

    @inlinable @inline(__always)
    static func hexDigit(_ nibble: UInt8) -> UInt8 {
        nibble < 10 ? nibble &+ 0x30 : nibble &+ 0x57
    }

    /// Hex of a masking key in wire order, as `WebSocketMaskingKey.hex` writes it.
    @inlinable
    public mutating func appendHex(packed key: UInt32) {
        reserve(8)
        UnsafeMutableRawPointer(base + used).storeBytes(of: Self.hexDigits(key).littleEndian, as: UInt64.self)
        used &+= 8
    }
}
