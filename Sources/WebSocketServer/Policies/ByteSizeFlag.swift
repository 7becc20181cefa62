/// Byte counts for flags such as `--max-message-size` and `--max-send-queue`.
///
/// Units follow GNU coreutils (`dd`, `truncate`, `sort -S`), so a size means what it means there:
///
/// | suffix | factor |
/// |---|---|
/// | none, `B` | 1 |
/// | `K`, `KiB` | 1024 (binary) |
/// | `M`, `MiB` | 1024² |
/// | `G`, `GiB` | 1024³ |
/// | `T`, `TiB` | 1024⁴ |
/// | `KB`, `MB`, `GB`, `TB` | 1000, 1000², 1000³, 1000⁴ (SI) |
///
/// So `16M` and `16MiB` are 16 777 216 bytes, while `16MB` is 16 000 000. A single letter is binary
/// because that is what people mean by "16M" of memory or buffer (dd, nginx, the JVM); the two-letter
/// SI spelling is decimal because that is what the SI prefix means. Suffixes are case-insensitive
/// (`512k`, `16mib`) and may follow a space; `b` is bytes, never bits.
///
/// A fraction is allowed (`1.5MB` is 1 500 000, `1.5M` is 1 572 864); a result that is not a whole
/// number of bytes is rounded down. Whole numbers are computed exactly, without going through
/// floating point.
public enum ByteSizeFlag {
    /// The number of bytes `text` names.
    public static func parse(_ text: String) throws(FlagValueError) -> Int {
        let trimmed = Substring(text).trimmingBlanks
        guard !trimmed.isEmpty else { throw FlagValueError(value: text, reason: "expected a size such as 16MiB, 512k or 1048576") }
        guard let number = DecimalPrefix(trimmed) else {
            throw FlagValueError(value: text, reason: "expected a number of bytes, optionally with a unit (16MiB, 512k, 1.5MB)")
        }
        let unit = number.rest.trimmingBlanks.lowercased()
        guard let factor = factors[unit] else {
            throw FlagValueError(
                value: text,
                reason: "unknown unit \"\(number.rest.trimmingBlanks)\"; use B, K/KiB, M/MiB, G/GiB, T/TiB (binary) or KB, MB, GB, TB (SI)")
        }
        if let whole = number.whole {
            let (product, overflow) = whole.multipliedReportingOverflow(by: factor)
            guard !overflow else { throw FlagValueError(value: text, reason: "too large") }
            return product
        }
        let bytes = (number.value * Double(factor)).rounded(.down)
        guard bytes < Double(Int.max) else { throw FlagValueError(value: text, reason: "too large") }
        return Int(bytes)
    }

    static let factors: [String: Int] = [
        "": 1, "b": 1,
        "k": 1 << 10, "kib": 1 << 10, "kb": 1_000,
        "m": 1 << 20, "mib": 1 << 20, "mb": 1_000_000,
        "g": 1 << 30, "gib": 1 << 30, "gb": 1_000_000_000,
        "t": 1 << 40, "tib": 1 << 40, "tb": 1_000_000_000_000,
    ]
}
