/// `String(v)` for a `Double`, written into an `OutputBuffer` without making a String: every
/// frame's JSON line carries two capture times, and String(v) was the dearest part of a line
/// after its payload.
///
/// Swift prints the shortest decimal that reads back as `v`, the closest to `v` when several are
/// that short. For `2^-10 <= v < 2^52` (capture times and most durations) this finds it with
/// exact integer arithmetic. With `v = m / 2^s`, a number with `f` digits after the point,
/// `n / 10^f`, reads back as `v` when it lies within half a unit in the last place of `v`, that
/// is when `|n * 2^(s+1) - 2 * m * 10^f| <= 10^f` (equality counting when `m` is even, as parsing
/// rounds ties to even); the `n` to try is `m * 10^f / 2^s` rounded. If `f` digits are enough, so
/// are `f + 1`; `ceil(s * log10(2))` digits always are (their spacing is at most the interval's
/// width), so the search walks down from there, usually one or two steps. Anything else — other
/// magnitudes, powers of two (whose interval is lopsided), a value exactly halfway between two
/// candidates — is left to String(v). The tests hold it to String(v).
extension OutputBuffer {
    public mutating func append(shortest v: Double) {
        guard #available(macOS 15.0, *), let (n, f) = Self.shortestDecimal(v) else {
            return append(contentsOf: String(v))
        }
        if f == 0 {
            append(decimal: n)
            append(".0")
            return
        }
        // The digits of n, then the point put in front of the last f of them (after "0." and zeros
        // when n has no more than f digits): no division by a power of ten.
        let start = used
        append(decimal: n)
        let d = used - start
        if d > f {
            reserve(1)
            let p = base + start
            var i = d
            while i > d - f {
                p[i] = p[i - 1]
                i -= 1
            }
            p[d - f] = UInt8(ascii: ".")
            used += 1
        } else {
            let shift = 2 + f - d
            reserve(shift)
            let p = base + start
            var i = d - 1
            while i >= 0 {
                p[i + shift] = p[i]
                i -= 1
            }
            p[0] = UInt8(ascii: "0")
            p[1] = UInt8(ascii: ".")
            for k in 2..<shift { p[k] = UInt8(ascii: "0") }
            used += shift
        }
    }

    /// 10^f for 0 <= f <= 19.
    @inline(__always)
    static func tenToThe(_ f: Int) -> UInt64 {
        var p: UInt64 = 1
        var base: UInt64 = 10
        var e = f
        while e > 0 {
            if e & 1 == 1 { p &*= base }
            base &*= base
            e >>= 1
        }
        return p
    }

    /// The shortest decimal `n / 10^fractionDigits` that reads back as `v`, or nil when `v` is not
    /// one this handles (see the extension's note).
    @available(macOS 15.0, *)
    static func shortestDecimal(_ v: Double) -> (n: UInt64, fractionDigits: Int)? {
        guard v >= 0x1p-10, v < 0x1p52 else { return nil }
        let m = v.significandBitPattern | 1 << 52
        guard m != 1 << 52 else { return nil }
        let s = 1075 - Int(truncatingIfNeeded: v.bitPattern >> 52 & 0x7FF)  // v = m / 2^s, 1 <= s <= 62
        let mm = UInt128(m)
        let evenSignificand = m & 1 == 0
        let halfUnit = UInt128(1) << (s - 1)
        /// The number with `f` digits after the point nearest to `v`, if it reads back as `v`.
        func candidate(_ f: Int) -> UInt128? {
            let p = f < 20 ? UInt128(tenToThe(f)) : UInt128(tenToThe(19)) * 10
            let x = mm * p  // v * 10^f = x / 2^s, below 2^53 * 10^20 < 2^120
            let n = (x + halfUnit) >> s
            let a = n << (s + 1)
            let b = x << 1
            let d = a > b ? a - b : b - a
            return d < p || (d == p && evenSignificand) ? n : nil
        }
        // s * log10(2), rounded up: 78913 / 2^18 is log10(2) to within 3e-7.
        var f = min((s * 78913 + (1 << 18) - 1) >> 18, 20)
        guard candidate(f) != nil else { return nil }
        while f > 0, candidate(f - 1) != nil { f -= 1 }
        let p = f < 20 ? UInt128(tenToThe(f)) : UInt128(tenToThe(19)) * 10
        let x = mm * p
        let remainder = x & ((UInt128(1) << s) - 1)
        // Two candidates equally close: leave the choice to String(v).
        if remainder == halfUnit { return nil }
        let n = (x >> s) + (remainder > halfUnit ? 1 : 0)
        guard n <= UInt128(UInt64.max) else { return nil }
        return (UInt64(n), f)
    }
}
