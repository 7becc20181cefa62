import WebSocketInspect

/// `String(format: "%*.*f", width, digits, x)` without Foundation, for the time column of
/// `sniff`'s text output: Foundation's formatting took a sixth of a text-mode run.
///
/// Exact, as glibc's printf is: the binary value is scaled by 10^digits in 128-bit integer
/// arithmetic and rounded to nearest with ties to even. Values it does not handle (not finite,
/// 2^63 or more in magnitude, more than 9 digits) go to `String(format:)`.
enum FixedPointText {
    static func format(_ x: Double, digits: Int, width: Int) -> String {
        var out = OutputBuffer(capacity: 32)
        write(x, digits: digits, width: width, to: &out)
        return out.makeString()
    }

    /// `format`'s text appended to `out`, without making a String (a text line's time column).
    static func write(_ x: Double, digits: Int, width: Int, to out: inout OutputBuffer) {
        guard x.isFinite, x.magnitude < 0x1p63, (0...9).contains(digits) else {
            return out.append(contentsOf: String(format: "%\(width).\(digits)f", x))
        }
        var scale: UInt64 = 1
        for _ in 0..<digits { scale *= 10 }
        let (integer, fraction) = roundedScaled(x.magnitude, scale: scale)
        // printf keeps the sign of negative zero and of negatives that round to zero.
        let negative = x.sign == .minus
        let length = (negative ? 1 : 0) + digitCount(integer) + (digits > 0 ? 1 + digits : 0)
        for _ in length..<max(width, length) { out.append(UInt8(ascii: " ")) }
        if negative { out.append(UInt8(ascii: "-")) }
        out.append(decimal: integer)
        if digits > 0 {
            out.append(UInt8(ascii: "."))
            for _ in digitCount(fraction)..<digits { out.append(UInt8(ascii: "0")) }
            out.append(decimal: fraction)
        }
    }

    private static func digitCount(_ v: UInt64) -> Int {
        var count = 1
        var rest = v
        while rest >= 10 {
            rest /= 10
            count += 1
        }
        return count
    }

    /// `x * scale` rounded to an integer, nearest with ties to even, computed exactly, split into
    /// `x`'s integer part and the digits after the point. Needs `x < 2^63`, `scale <= 10^9`.
    static func roundedScaled(_ x: Double, scale: UInt64) -> (integer: UInt64, fraction: UInt64) {
        guard x != 0 else { return (0, 0) }
        // x = significand * 2^exponent with an integer significand (subnormals come out below 2^-1000,
        // which rounds to 0 like any other tiny value).
        let significand = x.significandBitPattern | (x.isNormal ? 1 << 52 : 0)
        let exponent = Int(x.exponent) - 52
        if exponent >= 0 { return (significand << UInt64(exponent), 0) }
        let shift = -exponent
        guard shift < 100 else { return (0, 0) }
        // product < 2^53 * 2^30: at most 83 bits, in two words.
        let (high, low) = significand.multipliedFullWidth(by: scale)
        func bit(_ k: Int) -> UInt64 { k < 64 ? (low >> UInt64(k)) & 1 : (high >> UInt64(k - 64)) & 1 }
        var qLow: UInt64
        var qHigh: UInt64
        if shift < 64 {
            qLow = (low >> UInt64(shift)) | (high << UInt64(64 - shift))
            qHigh = high >> UInt64(shift)
        } else {
            qLow = high >> UInt64(shift - 64)
            qHigh = 0
        }
        // Compare what is shifted out with one half: its top bit, then whether any bit below is set.
        let halfBit = bit(shift - 1)
        let below = shift - 1
        let belowSet = below <= 0 ? false
            : below < 64 ? low & ((1 << UInt64(below)) - 1) != 0
            : low != 0 || high & ((1 << UInt64(below - 64)) - 1) != 0
        if halfBit == 1 && (belowSet || qLow & 1 == 1) {
            qLow &+= 1
            if qLow == 0 { qHigh += 1 }
        }
        // (One word, the usual case: the same quotient and remainder without a two-word division.)
        if qHigh == 0 { return (qLow / scale, qLow % scale) }
        let (integer, fraction) = scale.dividingFullWidth((high: qHigh, low: qLow))
        return (integer, fraction)
    }
}
