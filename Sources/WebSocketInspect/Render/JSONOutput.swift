internal import CSIMDKernels

/// JSON Lines written straight into an `OutputBuffer`: keys in the order written (the schema's key
/// order is part of what users see), strings escaped as RFC 8259 §7 asks, no Foundation.
///
/// Commas are placed from one flag: a key or an array element after a value gets one. So objects
/// and arrays nest without a stack, and `extra` closures can add keys in the middle of an object.
extension OutputBuffer {
    // MARK: Structure

    /// The comma a key or an array element needs after a value (writers of runs of pieces call
    /// it before a run that begins with a key; see `put`).
    @inlinable @inline(__always)
    public mutating func separate() {
        if needsComma { append(UInt8(ascii: ",")) }
    }

    /// After a run of pieces (`put`) that ended with a key: its value comes next, without a comma.
    @inlinable @inline(__always)
    public mutating func keyWritten() {
        needsComma = false
    }

    /// After a run of pieces (`put`) that ended with a value: a key or an element after it needs a
    /// comma.
    @inlinable @inline(__always)
    public mutating func valueWritten() {
        needsComma = true
    }

    public mutating func beginJSONObject() {
        separate()
        append(UInt8(ascii: "{"))
        needsComma = false
    }

    public mutating func endJSONObject() {
        append(UInt8(ascii: "}"))
        needsComma = true
    }

    /// Closes the line's top-level object and ends the line.
    public mutating func endJSONLine() {
        append(UInt8(ascii: "}"))
        append(UInt8(ascii: "\n"))
        needsComma = false
    }

    public mutating func beginJSONArray() {
        separate()
        append(UInt8(ascii: "["))
        needsComma = false
    }

    public mutating func endJSONArray() {
        append(UInt8(ascii: "]"))
        needsComma = true
    }

    /// `"key":` (after a comma when a value came before), in one step: the keys of a frame's line
    /// are most of its bytes that are not payload.
    @inlinable @inline(__always)
    public mutating func jsonKey(_ key: StaticString) {
        guard key.hasPointerRepresentation else {
            separate()
            append(UInt8(ascii: "\""))
            append(key)
            append(UInt8(ascii: "\""))
            append(UInt8(ascii: ":"))
            needsComma = false
            return
        }
        let n = key.utf8CodeUnitCount
        reserve(n &+ 4)
        var p = UnsafeMutableRawPointer(base + used)
        if needsComma {
            p.storeBytes(of: UInt8(ascii: ","), as: UInt8.self)
            p += 1
        }
        p.storeBytes(of: UInt8(ascii: "\""), as: UInt8.self)
        Self.copySmall(UnsafeRawPointer(key.utf8Start), to: p + 1, count: n)
        p.storeBytes(of: UInt8(ascii: "\""), toByteOffset: n &+ 1, as: UInt8.self)
        p.storeBytes(of: UInt8(ascii: ":"), toByteOffset: n &+ 2, as: UInt8.self)
        used = p + (n &+ 3) - UnsafeMutableRawPointer(base)
        needsComma = false
    }

    /// A key written as given (keys are the schema's names, never user data).
    public mutating func jsonKey(named key: String) {
        separate()
        append(UInt8(ascii: "\""))
        append(contentsOf: key)
        append(UInt8(ascii: "\""))
        append(UInt8(ascii: ":"))
        needsComma = false
    }

    // MARK: Values

    @inlinable
    public mutating func jsonNull() {
        separate()
        append("null")
        needsComma = true
    }

    @inlinable @inline(__always)
    public mutating func jsonValue(_ v: Bool) {
        separate()
        if v { append("true") } else { append("false") }
        needsComma = true
    }

    @inlinable
    public mutating func jsonValue(_ v: Int) {
        separate()
        append(decimal: v)
        needsComma = true
    }

    @inlinable
    public mutating func jsonValue(_ v: UInt64) {
        separate()
        append(decimal: v)
        needsComma = true
    }

    /// Swift's shortest round-trip form (`String(v)`), or null for infinities and NaN.
    public mutating func jsonValue(_ v: Double) {
        guard v.isFinite else { return jsonNull() }
        separate()
        append(shortest: v)
        needsComma = true
    }

    /// Seconds as a JSON number with exactly six decimals, from a count of microseconds:
    /// `1790000000.000287`, `0.000280`, `-0.000005`. Capture times have microsecond resolution (or
    /// nanosecond, which a Double cannot carry for epoch times anyway), so every time the sniffer
    /// writes is at that precision, the same as its text output, and no subtraction shows up as
    /// `0.00028014183044433594`.
    public mutating func jsonSeconds(micros: Int64) {
        separate()
        if micros < 0 { append(UInt8(ascii: "-")) }
        let m = micros.magnitude
        let whole = m / 1_000_000
        if whole < 100_000 {
            append(decimal: whole)  // short (relative times): no cache, which absolute times keep
        } else if whole == lastWholeSeconds {
            reserve(16)
            let out = UnsafeMutableRawPointer(base + used)
            out.storeBytes(of: lastWholeDigits.0, as: UInt64.self)
            out.storeBytes(of: lastWholeDigits.1, toByteOffset: 8, as: UInt64.self)
            used &+= lastWholeCount
        } else {
            let start = used
            append(decimal: whole)
            if used &- start <= 16 {
                // Kept for the next times in the same second (16 bytes read: reserve them).
                reserve(16)
                let digits = UnsafeRawPointer(base + start)
                lastWholeDigits = (digits.loadUnaligned(as: UInt64.self), digits.loadUnaligned(fromByteOffset: 8, as: UInt64.self))
                lastWholeCount = used &- start
                lastWholeSeconds = whole
            }
        }
        reserve(7)
        // The six fraction digits, two at a time.
        let out = UnsafeMutableRawPointer(base + used)
        let pairs = UnsafeRawPointer(Self.decimalPairs.utf8Start)
        let fraction = Int(truncatingIfNeeded: m % 1_000_000)
        out.storeBytes(of: UInt8(ascii: "."), as: UInt8.self)
        out.storeBytes(of: pairs.loadUnaligned(fromByteOffset: (fraction / 10_000) &* 2, as: UInt16.self), toByteOffset: 1, as: UInt16.self)
        out.storeBytes(of: pairs.loadUnaligned(fromByteOffset: (fraction / 100 % 100) &* 2, as: UInt16.self), toByteOffset: 3, as: UInt16.self)
        out.storeBytes(of: pairs.loadUnaligned(fromByteOffset: (fraction % 100) &* 2, as: UInt16.self), toByteOffset: 5, as: UInt16.self)
        used &+= 7
        needsComma = true
    }

    /// Seconds (rounded to the microsecond) as in ``jsonSeconds(micros:)``; null if not finite or
    /// beyond what microseconds in 64 bits hold.
    public mutating func jsonSeconds(_ v: Double) {
        guard let micros = Self.micros(v) else { return jsonNull() }
        jsonSeconds(micros: micros)
    }

    /// `v` seconds in whole microseconds, rounded to nearest; nil if not finite or too large.
    /// The whole seconds are split off first (exactly): `v * 1e6` of a time near 1.8e9 would itself
    /// be rounded to a quarter microsecond before the rounding to a whole one.
    @inlinable
    public static func micros(_ v: Double) -> Int64? {
        guard v.isFinite, v.magnitude < 0x1p42 else { return nil }
        if v >= 0 {
            // Truncation and a half added rather than floor and round, which are libm calls on
            // baseline x86-64; this runs for most lines sniff writes. (v − whole is exact.)
            let whole = Int64(v)
            return whole * 1_000_000 + Int64((v - Double(whole)) * 1e6 + 0.5)
        }
        let whole = v.rounded(.down)
        return Int64(whole) * 1_000_000 + Int64(((v - whole) * 1e6).rounded())
    }

    /// Already-serialised JSON (`"bytes"` that a writer produced, `null`, a number's text).
    public mutating func jsonRaw(_ serialized: UnsafeRawBufferPointer) {
        separate()
        append(serialized)
        needsComma = true
    }

    public mutating func jsonRaw(_ serialized: String) {
        separate()
        append(contentsOf: serialized)
        needsComma = true
    }

    @inlinable @inline(__always)
    public mutating func jsonLiteral(_ serialized: StaticString) {
        separate()
        append(serialized)
        needsComma = true
    }

    /// A JSON string of UTF-8 bytes, escaped (see `appendJSONEscaped`).
    public mutating func jsonString(_ utf8: UnsafeRawBufferPointer) {
        separate()
        append(UInt8(ascii: "\""))
        appendJSONEscaped(utf8)
        append(UInt8(ascii: "\""))
        needsComma = true
    }

    public mutating func jsonString(_ s: String) {
        var s = s
        s.withUTF8 { jsonString(UnsafeRawBufferPointer($0)) }
    }

    /// The bytes as a JSON string of lower-case hex digits.
    public mutating func jsonHexString(_ bytes: UnsafeRawBufferPointer) {
        separate()
        append(UInt8(ascii: "\""))
        appendHex(bytes)
        append(UInt8(ascii: "\""))
        needsComma = true
    }

    // MARK: Keyed values (null for nil), as JSONLineWriter spells them

    public mutating func jsonString(_ key: StaticString, _ v: String?) {
        jsonKey(key)
        if let v { jsonString(v) } else { jsonNull() }
    }

    @inlinable @inline(__always)
    public mutating func jsonInt(_ key: StaticString, _ v: Int?) {
        jsonKey(key)
        if let v { jsonValue(v) } else { jsonNull() }
    }

    @inlinable @inline(__always)
    public mutating func jsonUInt(_ key: StaticString, _ v: UInt64?) {
        jsonKey(key)
        if let v { jsonValue(v) } else { jsonNull() }
    }

    @inlinable @inline(__always)
    public mutating func jsonBool(_ key: StaticString, _ v: Bool?) {
        jsonKey(key)
        if let v { jsonValue(v) } else { jsonNull() }
    }

    public mutating func jsonDouble(_ key: StaticString, _ v: Double?) {
        jsonKey(key)
        if let v { jsonValue(v) } else { jsonNull() }
    }

    public mutating func jsonSeconds(_ key: StaticString, _ v: Double?) {
        jsonKey(key)
        if let v { jsonSeconds(v) } else { jsonNull() }
    }

    // MARK: Escaping

    /// Escapes UTF-8 text for the inside of a JSON string (RFC 8259 §7): `"` and `\` get a
    /// backslash, newline, carriage return and tab their short forms, other control characters
    /// (below 0x20) `\u00xx`; everything else, DEL and non-ASCII included, is copied as it is.
    ///
    /// Sixteen bytes at a time: a block is copied whole, and the output moves on past its bytes
    /// before the first that needs escaping (all sixteen when none does), so text with a quote
    /// every few bytes (JSON in a message) costs a step per escape, not per byte. The tests hold
    /// it to the String-based writer it replaced, byte for byte.
    public mutating func appendJSONEscaped(_ text: UnsafeRawBufferPointer) {
        let n = text.count
        guard n > 0, let source = text.baseAddress else { return }
        reserve(6 &* n)
        var out = UnsafeMutableRawPointer(base + used)
        let start = out
        var i = 0
        while i < n {
            if n &- i >= 16 {
                // The 16 bytes are stored whole (the room reserved is 6 per byte, at least 16
                // past `out`); only those before the first flagged byte count.
                out.storeBytes(of: source.loadUnaligned(fromByteOffset: i, as: UInt64.self), as: UInt64.self)
                out.storeBytes(of: source.loadUnaligned(fromByteOffset: i &+ 8, as: UInt64.self), toByteOffset: 8, as: UInt64.self)
                let clean = Self.cleanPrefix16(source + i)
                out += clean
                i &+= clean
                if clean == 16 { continue }
            } else {
                // The tail, fewer than 16 bytes: one at a time up to the next byte to escape.
                let c = source.load(fromByteOffset: i, as: UInt8.self)
                if c >= 0x20 && c != 0x22 && c != 0x5C {
                    out.storeBytes(of: c, as: UInt8.self)
                    out += 1
                    i &+= 1
                    continue
                }
            }
            let c = source.load(fromByteOffset: i, as: UInt8.self)
            i &+= 1
            out.storeBytes(of: UInt8(ascii: "\\"), as: UInt8.self)
            switch c {
            case 0x22, 0x5C:
                out.storeBytes(of: c, toByteOffset: 1, as: UInt8.self)
                out += 2
            case 0x0A:
                out.storeBytes(of: UInt8(ascii: "n"), toByteOffset: 1, as: UInt8.self)
                out += 2
            case 0x0D:
                out.storeBytes(of: UInt8(ascii: "r"), toByteOffset: 1, as: UInt8.self)
                out += 2
            case 0x09:
                out.storeBytes(of: UInt8(ascii: "t"), toByteOffset: 1, as: UInt8.self)
                out += 2
            default:
                out.storeBytes(of: UInt8(ascii: "u"), toByteOffset: 1, as: UInt8.self)
                out.storeBytes(of: UInt8(ascii: "0"), toByteOffset: 2, as: UInt8.self)
                out.storeBytes(of: UInt8(ascii: "0"), toByteOffset: 3, as: UInt8.self)
                out.storeBytes(of: Self.hexDigit(c >> 4), toByteOffset: 4, as: UInt8.self)
                out.storeBytes(of: Self.hexDigit(c & 0xF), toByteOffset: 5, as: UInt8.self)
                out += 6
            }
        }
        used &+= out - start
    }

    /// How many of the 16 bytes at `p` come before the first one below 0x20, `"` or `\` (16 when
    /// none is): `wsctl_json_escape_flags16`'s lowest bit.
    @inline(__always)
    static func cleanPrefix16(_ p: UnsafeRawPointer) -> Int {
        // (Bit 16 set: 16 when none is flagged.)
        Int((wsctl_json_escape_flags16(p.assumingMemoryBound(to: UInt8.self)) | 0x1_0000).trailingZeroBitCount)
    }
}
