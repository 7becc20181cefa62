/// A close status code (RFC 6455 §7.4) with both directions of conversion.
///
/// Codes the RFC names get a case; everything else is `.unknown(code)` and keeps its value,
/// so a parse never loses what was on the wire.
public enum WebSocketCloseCode: Hashable, Sendable, CustomStringConvertible {
    case normalClosure            // 1000
    case goingAway                // 1001
    case protocolError            // 1002
    case unsupportedData          // 1003
    case reserved1004             // 1004
    case noStatusReceived         // 1005, never on the wire
    case abnormalClosure          // 1006, never on the wire
    case invalidFramePayloadData  // 1007
    case policyViolation          // 1008
    case messageTooBig            // 1009
    case mandatoryExtension       // 1010
    case internalError            // 1011
    case serviceRestart           // 1012
    case tryAgainLater            // 1013
    case badGateway               // 1014
    case tlsHandshake             // 1015, never on the wire
    case unknown(UInt16)

    public init(code: UInt16) {
        switch code {
        case 1000: self = .normalClosure
        case 1001: self = .goingAway
        case 1002: self = .protocolError
        case 1003: self = .unsupportedData
        case 1004: self = .reserved1004
        case 1005: self = .noStatusReceived
        case 1006: self = .abnormalClosure
        case 1007: self = .invalidFramePayloadData
        case 1008: self = .policyViolation
        case 1009: self = .messageTooBig
        case 1010: self = .mandatoryExtension
        case 1011: self = .internalError
        case 1012: self = .serviceRestart
        case 1013: self = .tryAgainLater
        case 1014: self = .badGateway
        case 1015: self = .tlsHandshake
        default: self = .unknown(code)
        }
    }

    public var code: UInt16 {
        switch self {
        case .normalClosure: return 1000
        case .goingAway: return 1001
        case .protocolError: return 1002
        case .unsupportedData: return 1003
        case .reserved1004: return 1004
        case .noStatusReceived: return 1005
        case .abnormalClosure: return 1006
        case .invalidFramePayloadData: return 1007
        case .policyViolation: return 1008
        case .messageTooBig: return 1009
        case .mandatoryExtension: return 1010
        case .internalError: return 1011
        case .serviceRestart: return 1012
        case .tryAgainLater: return 1013
        case .badGateway: return 1014
        case .tlsHandshake: return 1015
        case .unknown(let c): return c
        }
    }

    /// The IANA registry name, or a description of the range the code falls in. 4000–4999 are
    /// private use (RFC 6455 §7.4.2: their meaning is agreed between the two applications), so
    /// the codes `wsctl serve` gives a meaning (DESIGN.md) say so only as what they mean there:
    /// another application's 4001 is not wsctl's.
    public var name: String {
        switch code {
        case 1000: return "Normal Closure"
        case 1001: return "Going Away"
        case 1002: return "Protocol Error"
        case 1003: return "Unsupported Data"
        case 1004: return "Reserved"
        case 1005: return "No Status Received"
        case 1006: return "Abnormal Closure"
        case 1007: return "Invalid Frame Payload Data"
        case 1008: return "Policy Violation"
        case 1009: return "Message Too Big"
        case 1010: return "Mandatory Extension"
        case 1011: return "Internal Error"
        case 1012: return "Service Restart"
        case 1013: return "Try Again Later"
        case 1014: return "Bad Gateway"
        case 1015: return "TLS Handshake"
        case 4000: return "Private use (4000-4999; in wsctl serve: Unknown Error)"
        case 4001: return "Private use (4000-4999; in wsctl serve: Authentication Required)"
        case 4002: return "Private use (4000-4999; in wsctl serve: Authentication Failed)"
        case 4003: return "Private use (4000-4999; in wsctl serve: Origin Not Allowed)"
        case 4004: return "Private use (4000-4999; in wsctl serve: Rate Limit Exceeded)"
        case 4005: return "Private use (4000-4999; in wsctl serve: Message Too Large)"
        case 0..<1000: return "Invalid (unused range 0-999)"
        case 1016..<3000: return "Invalid (reserved for the protocol, 1016-2999)"
        case 3000..<4000: return "Registered (3000-3999)"
        case 4000..<5000: return "Private use (4000-4999)"
        default: return "Invalid (undefined range 5000+)"
        }
    }

    /// Whether an endpoint may put this code in a Close frame (§7.4.1, §7.4.2):
    /// 1000–1003, 1007–1014 and the 3000–4999 application range. 1004 is reserved,
    /// 1005, 1006 and 1015 are for reporting only, 0–999 and 1016–2999 are not in use,
    /// and 5000+ is undefined.
    public var isSendable: Bool {
        let c = code
        switch c {
        case 1000...1003, 1007...1014, 3000...4999: return true
        default: return false
        }
    }

    public var description: String { "\(code) \(name)" }
}
