/// A frame opcode (RFC 6455 §5.2): any of the 16 values a 4-bit field can hold.
///
/// A struct rather than an enum so that reserved values survive a parse and can be
/// encoded on purpose: wsctl builds broken frames for tests as readily as good ones.
public struct WebSocketOpcode: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8

    /// Returns nil for values that do not fit in 4 bits.
    public init?(rawValue: UInt8) {
        guard rawValue < 16 else { return nil }
        self.rawValue = rawValue
    }

    @inlinable
    init(uncheckedRawValue: UInt8) { self.rawValue = uncheckedRawValue & 0x0F }

    // Inlinable values and comparison, not stored statics: from another module a `static let`
    // is read through its accessor (a call and a once-check) and `==` is a call, for every
    // opcode compared, hundreds of thousands of times a second in sniff.
    @inlinable public static var continuation: WebSocketOpcode { WebSocketOpcode(uncheckedRawValue: 0x0) }
    @inlinable public static var text: WebSocketOpcode { WebSocketOpcode(uncheckedRawValue: 0x1) }
    @inlinable public static var binary: WebSocketOpcode { WebSocketOpcode(uncheckedRawValue: 0x2) }
    @inlinable public static var close: WebSocketOpcode { WebSocketOpcode(uncheckedRawValue: 0x8) }
    @inlinable public static var ping: WebSocketOpcode { WebSocketOpcode(uncheckedRawValue: 0x9) }
    @inlinable public static var pong: WebSocketOpcode { WebSocketOpcode(uncheckedRawValue: 0xA) }

    @inlinable public static func == (a: WebSocketOpcode, b: WebSocketOpcode) -> Bool { a.rawValue == b.rawValue }
    @inlinable public func hash(into hasher: inout Hasher) { hasher.combine(rawValue) }

    /// Control frames have the high bit of the opcode set (§5.5).
    @inlinable public var isControl: Bool { rawValue & 0x8 != 0 }
    /// 0x3–0x7 are reserved for further non-control frames, 0xB–0xF for control frames (§5.2).
    @inlinable public var isReserved: Bool { (0x3...0x7).contains(rawValue) || rawValue >= 0xB }
    /// Text and binary start a message; continuation carries its later fragments.
    @inlinable public var isDataStart: Bool { rawValue == 0x1 || rawValue == 0x2 }

    /// The lower-case name tshark and wscat use, or `reserved-0xN`.
    public var name: String {
        switch rawValue {
        case 0x0: return "continuation"
        case 0x1: return "text"
        case 0x2: return "binary"
        case 0x8: return "close"
        case 0x9: return "ping"
        case 0xA: return "pong"
        default: return isControl ? "reserved-control-0x\(String(rawValue, radix: 16))" : "reserved-0x\(String(rawValue, radix: 16))"
        }
    }

    public var description: String { name }

    /// Parses a name (`text`, `ping`, `cont`, …) or a number (`9`, `0x9`) in 0–15.
    public init?(parsing string: String) {
        let s = string.lowercased()
        switch s {
        case "continuation", "cont", "continue": self = .continuation
        case "text": self = .text
        case "binary", "bin": self = .binary
        case "close": self = .close
        case "ping": self = .ping
        case "pong": self = .pong
        default:
            let value: UInt8?
            if s.hasPrefix("0x") { value = UInt8(s.dropFirst(2), radix: 16) } else { value = UInt8(s) }
            guard let v = value, let op = WebSocketOpcode(rawValue: v) else { return nil }
            self = op
        }
    }
}
