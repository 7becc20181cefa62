/// The IP version of a decoded packet or a flow.
public enum IPVersion: Int, Sendable, Hashable, CustomStringConvertible {
    case v4 = 4
    case v6 = 6

    public var description: String { self == .v4 ? "IPv4" : "IPv6" }
}

/// An IPv4 or IPv6 address, stored as integers so that flow lookups hash a few words instead of strings.
///
/// `description` gives the usual text form: dotted quad for IPv4 and the RFC 5952 canonical form for IPv6
/// (lowercase, longest run of two or more zero groups shortened to `::`, IPv4-mapped addresses as `::ffff:a.b.c.d`).
public enum IPAddress: Sendable, Hashable, Comparable, CustomStringConvertible {
    /// An IPv4 address in host order: `127.0.0.1` is `0x7F00_0001`.
    case v4(UInt32)
    /// An IPv6 address as its high and low 64 bits in host order.
    case v6(high: UInt64, low: UInt64)

    /// The address's version.
    public var version: IPVersion {
        switch self {
        case .v4: .v4
        case .v6: .v6
        }
    }

    /// The address in network byte order: 4 bytes for IPv4, 16 for IPv6.
    public var bytes: [UInt8] {
        switch self {
        case .v4(let a):
            return (0..<4).map { UInt8(truncatingIfNeeded: a >> (24 - 8 * $0)) }
        case .v6(let high, let low):
            return (0..<8).map { UInt8(truncatingIfNeeded: high >> (56 - 8 * $0)) }
                + (0..<8).map { UInt8(truncatingIfNeeded: low >> (56 - 8 * $0)) }
        }
    }

    /// Parses the text forms `description` produces (and any other valid IPv4 or IPv6 text, including
    /// `::` shortening and an embedded dotted quad); nil if `text` is not an address.
    public init?(_ text: some StringProtocol) {
        if !text.contains(":") {
            guard let v = Self.parseDottedQuad(Substring(text)) else { return nil }
            self = .v4(v)
            return
        }
        guard let groups = Self.parseIPv6Groups(Substring(text)) else { return nil }
        var high: UInt64 = 0
        var low: UInt64 = 0
        for i in 0..<4 { high = high << 16 | UInt64(groups[i]) }
        for i in 4..<8 { low = low << 16 | UInt64(groups[i]) }
        self = .v6(high: high, low: low)
    }

    public var description: String {
        switch self {
        case .v4(let a):
            return Self.dottedQuad(a)
        case .v6(let high, let low):
            let groups = (0..<4).map { UInt16(truncatingIfNeeded: high >> (48 - 16 * $0)) }
                + (0..<4).map { UInt16(truncatingIfNeeded: low >> (48 - 16 * $0)) }
            // RFC 5952 §5: IPv4-mapped addresses keep the dotted quad.
            if high == 0, low >> 32 == 0xFFFF {
                return "::ffff:" + Self.dottedQuad(UInt32(truncatingIfNeeded: low))
            }
            // RFC 5952 §4.2: shorten the longest run (first if tied) of at least two zero groups.
            var bestStart = -1
            var bestLength = 1
            var i = 0
            while i < 8 {
                if groups[i] == 0 {
                    var j = i
                    while j < 8, groups[j] == 0 { j += 1 }
                    if j - i > bestLength { bestStart = i; bestLength = j - i }
                    i = j
                } else {
                    i += 1
                }
            }
            func hex(_ range: Range<Int>) -> String {
                range.map { String(groups[$0], radix: 16) }.joined(separator: ":")
            }
            if bestStart < 0 { return hex(0..<8) }
            return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
        }
    }

    public static func < (lhs: IPAddress, rhs: IPAddress) -> Bool {
        switch (lhs, rhs) {
        case (.v4(let a), .v4(let b)): a < b
        case (.v4, .v6): true
        case (.v6, .v4): false
        case (.v6(let ah, let al), .v6(let bh, let bl)): (ah, al) < (bh, bl)
        }
    }

    private static func dottedQuad(_ a: UInt32) -> String {
        "\(a >> 24).\(a >> 16 & 0xFF).\(a >> 8 & 0xFF).\(a & 0xFF)"
    }

    private static func parseDottedQuad(_ text: Substring) -> UInt32? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4 else { return nil }
        var value: UInt32 = 0
        for part in parts {
            guard (1...3).contains(part.count), part.allSatisfy({ $0.isASCII && $0.isNumber }),
                let octet = UInt32(part), octet <= 255
            else { return nil }
            value = value << 8 | octet
        }
        return value
    }

    private static func parseIPv6Groups(_ text: Substring) -> [UInt16]? {
        func groups(_ part: Substring, allowDottedTail: Bool) -> [UInt16]? {
            if part.isEmpty { return [] }
            var out: [UInt16] = []
            let fields = part.split(separator: ":", omittingEmptySubsequences: false)
            for (index, field) in fields.enumerated() {
                if allowDottedTail, index == fields.count - 1, field.contains(".") {
                    guard let v4 = parseDottedQuad(field) else { return nil }
                    out += [UInt16(v4 >> 16), UInt16(v4 & 0xFFFF)]
                } else {
                    guard (1...4).contains(field.count), let g = UInt16(field, radix: 16) else { return nil }
                    out.append(g)
                }
            }
            return out
        }
        let halves = text.splitOnString("::")
        switch halves.count {
        case 1:
            guard let all = groups(text, allowDottedTail: true), all.count == 8 else { return nil }
            return all
        case 2:
            guard let head = groups(Substring(halves[0]), allowDottedTail: false),
                let tail = groups(Substring(halves[1]), allowDottedTail: true),
                head.count + tail.count <= 7
            else { return nil }
            return head + [UInt16](repeating: 0, count: 8 - head.count - tail.count) + tail
        default:
            return nil
        }
    }
}

extension StringProtocol {
    fileprivate func splitOnString(_ separator: String) -> [Substring] {
        var parts: [Substring] = []
        var rest = Substring(self)
        while let range = rest.firstRange(of: separator) {
            parts.append(rest[..<range.lowerBound])
            rest = rest[range.upperBound...]
        }
        parts.append(rest)
        return parts
    }
}
