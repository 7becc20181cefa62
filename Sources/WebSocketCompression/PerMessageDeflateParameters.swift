import WebSocketCodec

/// The four parameters of a permessage-deflate offer, response or agreement (RFC 7692 §7.1), already
/// checked for unknown names, duplicates and bad values.
///
/// One type for all three, as the wire uses one syntax for them. What each field means depends on where
/// the value came from: in a client's offer `clientMaxWindowBits == .withoutValue` says "you may limit my
/// window"; in an agreement (from ``PerMessageDeflateConfiguration/negotiate(offers:)`` or
/// ``validateResponse(_:)``) every field is what both sides now use, and ``serverToClient`` and
/// ``clientToServer`` turn it into compressor and decompressor settings.
public struct PerMessageDeflateParameters: Hashable, Sendable, CustomStringConvertible {
    /// The registered extension name (RFC 7692 §6).
    public static let extensionName = "permessage-deflate"

    /// `client_max_window_bits`, which unlike the server's may appear in an offer without a value (§7.1.2.2).
    public enum ClientMaxWindowBits: Hashable, Sendable {
        /// In an offer only: the client supports the parameter and leaves the size to the server.
        case withoutValue
        /// A window of `2^bits` bytes, bits 8–15.
        case value(Int)
    }

    /// `server_no_context_takeover` (§7.1.1.1): the server resets its compressor after every message.
    public var serverNoContextTakeover: Bool
    /// `client_no_context_takeover` (§7.1.1.2): the client resets its compressor after every message.
    public var clientNoContextTakeover: Bool
    /// `server_max_window_bits` (§7.1.2.1), 8–15, or nil when absent.
    public var serverMaxWindowBits: Int?
    /// `client_max_window_bits` (§7.1.2.2), or nil when absent.
    public var clientMaxWindowBits: ClientMaxWindowBits?

    public init(
        serverNoContextTakeover: Bool = false, clientNoContextTakeover: Bool = false,
        serverMaxWindowBits: Int? = nil, clientMaxWindowBits: ClientMaxWindowBits? = nil
    ) {
        self.serverNoContextTakeover = serverNoContextTakeover
        self.clientNoContextTakeover = clientNoContextTakeover
        self.serverMaxWindowBits = serverMaxWindowBits
        self.clientMaxWindowBits = clientMaxWindowBits
    }

    /// Reads one `permessage-deflate` element of a `Sec-WebSocket-Extensions` header, enforcing what
    /// RFC 7692 §7.1 makes a server decline and a client fail on: a parameter it does not define, the
    /// same parameter twice, or a bad value. Names are compared ASCII case-insensitively, as HTTP tokens
    /// usually are.
    ///
    /// `client_max_window_bits` without a value is accepted here, as offers may carry it; a response may
    /// not, which ``validateResponse(_:)`` checks.
    public init(_ element: WebSocketExtensionOffer) throws(PerMessageDeflateNegotiationError) {
        guard Self.sameName(element.name, Self.extensionName) else {
            throw PerMessageDeflateNegotiationError(.otherExtension, "extension is \(element.name), not \(Self.extensionName)")
        }
        self.init()
        var seen: [String] = []
        for parameter in element.parameters {
            let name = parameter.name.lowercased()
            // §7.1: "multiple extension parameters with the same name".
            guard !seen.contains(name) else {
                throw PerMessageDeflateNegotiationError(.duplicateParameter, "\(parameter.name) appears more than once")
            }
            seen.append(name)
            switch name {
            case "server_no_context_takeover":
                // §7.1.1.1: "This extension parameter has no value."
                try Self.requireNoValue(parameter)
                serverNoContextTakeover = true
            case "client_no_context_takeover":
                // §7.1.1.2: "This extension parameter has no value."
                try Self.requireNoValue(parameter)
                clientNoContextTakeover = true
            case "server_max_window_bits":
                // §7.1.2.1: always has a value.
                guard let value = parameter.value else {
                    throw PerMessageDeflateNegotiationError(.invalidValue, "server_max_window_bits needs a value 8-15")
                }
                serverMaxWindowBits = try Self.windowBits(value, of: parameter.name)
            case "client_max_window_bits":
                // §7.1.2.2: "no value or a decimal integer value".
                if let value = parameter.value {
                    clientMaxWindowBits = .value(try Self.windowBits(value, of: parameter.name))
                } else {
                    clientMaxWindowBits = .withoutValue
                }
            default:
                throw PerMessageDeflateNegotiationError(.unknownParameter, "unknown parameter \(parameter.name)")
            }
        }
    }

    /// The header element for these parameters, in the order RFC 7692 lists them, such as
    /// `permessage-deflate; client_max_window_bits`. It is both what a client offers and what a server
    /// answers an offer with.
    public var headerValue: String { extensionElement.description }

    public var description: String { headerValue }

    /// The same parameters as a parsed header element.
    var extensionElement: WebSocketExtensionOffer {
        var parameters: [WebSocketExtensionOffer.Parameter] = []
        if serverNoContextTakeover { parameters.append(.init("server_no_context_takeover")) }
        if clientNoContextTakeover { parameters.append(.init("client_no_context_takeover")) }
        if let bits = serverMaxWindowBits { parameters.append(.init("server_max_window_bits", String(bits))) }
        switch clientMaxWindowBits {
        case nil: break
        case .withoutValue: parameters.append(.init("client_max_window_bits"))
        case .value(let bits): parameters.append(.init("client_max_window_bits", String(bits)))
        }
        return WebSocketExtensionOffer(name: Self.extensionName, parameters: parameters)
    }

    /// The settings for messages the server sends, read as an agreement: its window is
    /// `server_max_window_bits`, or 15 when absent (§7.1.2.1).
    public var serverToClient: PerMessageDeflateDirection {
        PerMessageDeflateDirection(windowBits: serverMaxWindowBits ?? 15, noContextTakeover: serverNoContextTakeover)
    }

    /// The settings for messages the client sends, read as an agreement: its window is
    /// `client_max_window_bits`, or 15 when absent or without a value (§7.1.2.2).
    public var clientToServer: PerMessageDeflateDirection {
        let bits: Int
        if case .value(let value) = clientMaxWindowBits { bits = value } else { bits = 15 }
        return PerMessageDeflateDirection(windowBits: bits, noContextTakeover: clientNoContextTakeover)
    }

    /// Extension and parameter names compare ASCII case-insensitively, as HTTP tokens usually do.
    public static func sameName(_ lhs: String, _ rhs: String) -> Bool {
        lhs.lowercased() == rhs.lowercased()
    }

    private static func requireNoValue(_ parameter: WebSocketExtensionOffer.Parameter) throws(PerMessageDeflateNegotiationError) {
        if let value = parameter.value {
            throw PerMessageDeflateNegotiationError(.invalidValue, "\(parameter.name) takes no value, got \(value)")
        }
    }

    /// §7.1.2.1, §7.1.2.2: `1*DIGIT`, "a decimal integer value without leading zeroes between 8 to 15".
    private static func windowBits(_ value: String, of name: String) throws(PerMessageDeflateNegotiationError) -> Int {
        guard !value.isEmpty, value.utf8.allSatisfy({ (UInt8(ascii: "0")...UInt8(ascii: "9")).contains($0) }),
            !value.hasPrefix("0"), let bits = Int(value), (8...15).contains(bits)
        else {
            throw PerMessageDeflateNegotiationError(
                .invalidValue, "\(name) must be a decimal 8-15 without leading zeros, got \(value)")
        }
        return bits
    }
}
