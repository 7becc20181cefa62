/// A protocol violation found in the bytes: which rule, where, and what a peer would do about it.
///
/// Every rule maps to its close code in one place (`Rule.closeCode`), so the decoder, the
/// sniffer and the server all answer the same violation the same way.
public struct WebSocketViolation: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Rule: String, Hashable, Sendable, CaseIterable {
        /// RSV1–3 set without an extension that claims the bit (§5.2).
        case reservedBits = "reserved-bits"
        /// Opcodes 0x3–0x7 and 0xB–0xF (§5.2).
        case reservedOpcode = "reserved-opcode"
        /// Control frames must not be fragmented (§5.5).
        case fragmentedControlFrame = "fragmented-control-frame"
        /// Control frame payloads are at most 125 bytes (§5.5).
        case controlFrameTooLong = "control-frame-too-long"
        /// The minimal number of bytes must be used to encode the length (§5.2).
        case nonMinimalLength = "non-minimal-length"
        /// The most significant bit of a 64-bit length must be 0 (§5.2).
        case lengthTopBitSet = "length-top-bit-set"
        /// A client must mask every frame it sends (§5.1, §5.3).
        case unmaskedClientFrame = "unmasked-client-frame"
        /// A server must not mask any frame it sends (§5.1).
        case maskedServerFrame = "masked-server-frame"
        /// A continuation frame with no message in progress (§5.4).
        case continuationWithoutStart = "continuation-without-start"
        /// A text/binary frame while a fragmented message is unfinished (§5.4).
        case newMessageInsideFragmented = "new-message-inside-fragmented"
        /// Text message payload is not valid UTF-8 (§5.6, §8.1).
        case invalidUTF8 = "invalid-utf8"
        /// A close payload of exactly 1 byte (§5.5.1).
        case closePayloadTooShort = "close-payload-too-short"
        /// A close code that may not be sent (§7.4.1, §7.4.2).
        case invalidCloseCode = "invalid-close-code"
        /// A close reason that is not UTF-8 (§5.5.1).
        case invalidCloseReason = "invalid-close-reason"
        /// A frame larger than the configured limit (§10.4).
        case frameTooLarge = "frame-too-large"
        /// A message larger than the configured limit (§10.4).
        case messageTooLarge = "message-too-large"
        /// More fragments in one message than the configured limit (§10.4).
        case tooManyFragments = "too-many-fragments"
        /// A compressed message inflating past the configured limit (RFC 7692 §8.1, §10.4).
        case inflatedTooLarge = "inflated-too-large"
        /// A compressed payload that does not inflate (RFC 7692 §7.2.2).
        case invalidCompressedData = "invalid-compressed-data"
        /// RSV1 on a continuation or control frame (RFC 7692 §6.1).
        case compressedBitMisplaced = "compressed-bit-misplaced"
        /// A compressed message referring further back than the LZ77 window agreed for its
        /// direction (`server_max_window_bits`, `client_max_window_bits`: RFC 7692 §7.1.2).
        case windowExceeded = "window-exceeded"
        /// Data after a Close frame (§5.5.1: the close is the last frame an endpoint sends).
        case frameAfterClose = "frame-after-close"

        /// The section of the RFC that states the rule.
        public var section: String {
            switch self {
            case .reservedBits, .reservedOpcode: return "RFC 6455 §5.2"
            case .fragmentedControlFrame, .controlFrameTooLong: return "RFC 6455 §5.5"
            case .nonMinimalLength, .lengthTopBitSet: return "RFC 6455 §5.2"
            case .unmaskedClientFrame: return "RFC 6455 §5.3"
            case .maskedServerFrame: return "RFC 6455 §5.1"
            case .continuationWithoutStart, .newMessageInsideFragmented: return "RFC 6455 §5.4"
            case .invalidUTF8: return "RFC 6455 §8.1"
            case .closePayloadTooShort, .invalidCloseReason: return "RFC 6455 §5.5.1"
            case .invalidCloseCode: return "RFC 6455 §7.4"
            case .frameTooLarge, .messageTooLarge, .tooManyFragments: return "RFC 6455 §10.4"
            case .inflatedTooLarge: return "RFC 7692 §8.1"
            case .invalidCompressedData: return "RFC 7692 §7.2.2"
            case .compressedBitMisplaced: return "RFC 7692 §6.1"
            case .windowExceeded: return "RFC 7692 §7.1.2"
            case .frameAfterClose: return "RFC 6455 §5.5.1"
            }
        }

        /// The close code a peer sends when it sees this violation (§7.4.1).
        public var closeCode: WebSocketCloseCode {
            switch self {
            case .invalidUTF8, .invalidCloseReason, .invalidCompressedData: return .invalidFramePayloadData
            case .frameTooLarge, .messageTooLarge, .tooManyFragments, .inflatedTooLarge: return .messageTooBig
            default: return .protocolError
            }
        }
    }

    public var rule: Rule
    /// Byte offset in the stream (or dump) where the violation was detected.
    public var offset: Int
    /// What exactly was wrong, in words.
    public var message: String

    public init(_ rule: Rule, offset: Int, _ message: String) {
        self.rule = rule
        self.offset = offset
        self.message = message
    }

    public var closeCode: WebSocketCloseCode { rule.closeCode }

    public var description: String {
        "\(rule.rawValue) at byte \(offset): \(message) (\(rule.section); close \(closeCode.code))"
    }
}
