/// Why a permessage-deflate offer or response cannot be used: the conditions of RFC 7692 §7.1 under
/// which a server declines an offer and a client fails the connection.
public struct PerMessageDeflateNegotiationError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Rule: String, Hashable, Sendable, CaseIterable {
        /// The element names another extension, not `permessage-deflate`.
        case otherExtension = "other-extension"
        /// A parameter the RFC does not define (for use in an offer, or in a response) (§7.1).
        case unknownParameter = "unknown-parameter"
        /// The same parameter twice (§7.1).
        case duplicateParameter = "duplicate-parameter"
        /// A value where none is allowed, none where one is required, or a window size that is not a
        /// decimal 8–15 without leading zeros (§7.1.1, §7.1.2).
        case invalidValue = "invalid-value"
        /// A response that does not answer the offer: a parameter the offer ruled out, or one missing
        /// that accepting the offer requires (§7.1.1.1, §7.1.2.1, §7.1.2.2).
        case unsupportedConfiguration = "unsupported-configuration"

        /// The section of RFC 7692 that states the rule.
        public var section: String {
            switch self {
            case .otherExtension: return "RFC 7692 §7"
            case .unknownParameter, .duplicateParameter, .invalidValue, .unsupportedConfiguration: return "RFC 7692 §7.1"
            }
        }
    }

    public var rule: Rule
    /// What exactly was wrong, naming the parameter and its value.
    public var message: String

    public init(_ rule: Rule, _ message: String) {
        self.rule = rule
        self.message = message
    }

    public var description: String { "\(rule.rawValue): \(message) (\(rule.section))" }
}
