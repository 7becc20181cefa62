/// One element of a `Sec-WebSocket-Extensions` header (RFC 6455 §9.1): an extension name and its
/// parameters, in the order they were written.
///
/// In a request it is an offer; in a response it is the server's acceptance of one. The same shape
/// serves both, as it does on the wire.
public struct WebSocketExtensionOffer: Hashable, Sendable, CustomStringConvertible {
    /// One `name` or `name=value` parameter. A quoted value is stored unquoted.
    public struct Parameter: Hashable, Sendable {
        public var name: String
        /// Nil for a parameter written without `=`, which is not the same as an empty value.
        public var value: String?

        public init(_ name: String, _ value: String? = nil) {
            self.name = name
            self.value = value
        }
    }

    public var name: String
    /// Kept in order and with duplicates, because an extension's rules may reject both (RFC 7692 §7.1).
    public var parameters: [Parameter]

    public init(name: String, parameters: [Parameter] = []) {
        self.name = name
        self.parameters = parameters
    }

    /// The element as it goes on the wire: `name; param; param=value`, quoting a value that is not a token.
    public var description: String {
        var text = name
        for parameter in parameters {
            text += "; " + parameter.name
            if let value = parameter.value {
                text += "=" + (HTTPSyntax.isToken(value) ? value : WebSocketExtensionHeader.quoted(value))
            }
        }
        return text
    }
}

/// Reading and writing `Sec-WebSocket-Extensions` values (RFC 6455 §9.1):
///
/// ```
/// extension-list = 1#extension
/// extension      = extension-token *( ";" extension-param )
/// extension-param = token [ "=" (token | quoted-string) ]
/// ```
///
/// Optional whitespace is accepted around every delimiter, empty list elements are skipped (RFC 7230 §7),
/// and several header lines form one list (RFC 7230 §3.2.2).
public enum WebSocketExtensionHeader {
    /// Parses every line of the header, in order, into one list of extensions.
    ///
    /// Strict where the grammar is: a quoted value must still be a token once unquoted (§9.1), and a
    /// header with no extension at all is malformed (`1#extension`), because a peer that sends either
    /// is broken and a toolkit should say so.
    public static func parse(_ values: [String]) throws(WebSocketExtensionHeaderError) -> [WebSocketExtensionOffer] {
        var offers: [WebSocketExtensionOffer] = []
        for value in values {
            var parser = Parser(value)
            try parser.parseList(into: &offers)
        }
        guard !offers.isEmpty else {
            throw WebSocketExtensionHeaderError(.empty, "Sec-WebSocket-Extensions names no extension")
        }
        return offers
    }

    /// Parses one header value.
    public static func parse(_ value: String) throws(WebSocketExtensionHeaderError) -> [WebSocketExtensionOffer] {
        try parse([value])
    }

    /// The header value for `offers`: elements joined by `", "`, each written as in
    /// ``WebSocketExtensionOffer/description``.
    public static func serialize(_ offers: [WebSocketExtensionOffer]) -> String {
        offers.map(\.description).joined(separator: ", ")
    }

    static func quoted(_ value: String) -> String {
        var text = "\""
        for character in value {
            if character == "\"" || character == "\\" { text.append("\\") }
            text.append(character)
        }
        return text + "\""
    }

    private struct Parser {
        let bytes: [UInt8]
        let text: String
        var index = 0

        init(_ text: String) {
            self.text = text
            self.bytes = Array(text.utf8)
        }

        mutating func parseList(into offers: inout [WebSocketExtensionOffer]) throws(WebSocketExtensionHeaderError) {
            while true {
                skipWhitespace()
                guard let byte = current else { return }
                if byte == UInt8(ascii: ",") {
                    index += 1
                    continue
                }
                guard let name = token() else {
                    throw failure(.expectedExtensionName, "expected an extension name")
                }
                var offer = WebSocketExtensionOffer(name: name)
                skipWhitespace()
                while current == UInt8(ascii: ";") {
                    index += 1
                    skipWhitespace()
                    offer.parameters.append(try parameter())
                    skipWhitespace()
                }
                offers.append(offer)
                if current == nil { return }
                guard current == UInt8(ascii: ",") else {
                    throw failure(.unexpectedCharacter, "expected ';' or ',' after extension \(name)")
                }
                index += 1
            }
        }

        private mutating func parameter() throws(WebSocketExtensionHeaderError) -> WebSocketExtensionOffer.Parameter {
            guard let name = token() else {
                throw failure(.expectedParameterName, "expected a parameter name after ';'")
            }
            skipWhitespace()
            guard current == UInt8(ascii: "=") else { return .init(name) }
            index += 1
            skipWhitespace()
            if current == UInt8(ascii: "\"") {
                let start = index
                let value = try quotedString()
                // §9.1: "the value after quoted-string unescaping MUST conform to the 'token' ABNF".
                guard HTTPSyntax.isToken(value) else {
                    index = start
                    throw failure(.quotedValueNotToken, "quoted value of \(name) is not a token once unquoted")
                }
                return .init(name, value)
            }
            guard let value = token() else {
                throw failure(.expectedParameterValue, "expected a value for \(name) after '='")
            }
            return .init(name, value)
        }

        /// RFC 7230 §3.2.6: `DQUOTE *( qdtext / quoted-pair ) DQUOTE`.
        private mutating func quotedString() throws(WebSocketExtensionHeaderError) -> String {
            let start = index
            index += 1
            var value: [UInt8] = []
            while let byte = current {
                index += 1
                switch byte {
                case UInt8(ascii: "\""):
                    return String(decoding: value, as: UTF8.self)
                case UInt8(ascii: "\\"):
                    guard let escaped = current else { break }
                    value.append(escaped)
                    index += 1
                default:
                    value.append(byte)
                }
            }
            index = start
            throw failure(.unterminatedQuotedString, "quoted string is not terminated")
        }

        private mutating func token() -> String? {
            let start = index
            while let byte = current, HTTPSyntax.isTokenCharacter(byte) { index += 1 }
            return index > start ? String(decoding: bytes[start..<index], as: UTF8.self) : nil
        }

        private mutating func skipWhitespace() {
            while let byte = current, HTTPSyntax.isWhitespace(byte) { index += 1 }
        }

        private var current: UInt8? { index < bytes.count ? bytes[index] : nil }

        private func failure(_ rule: WebSocketExtensionHeaderError.Rule, _ what: String) -> WebSocketExtensionHeaderError {
            let found: String
            if let byte = current {
                found = byte >= 0x20 && byte < 0x7F
                    ? "found '\(String(decoding: [byte], as: UTF8.self))'" : "found byte 0x\(String(byte, radix: 16))"
            } else {
                found = "found the end"
            }
            return WebSocketExtensionHeaderError(rule, "\(what) at byte \(index) of \"\(text)\", \(found)", offset: index)
        }
    }
}

/// A `Sec-WebSocket-Extensions` value that breaks the grammar of RFC 6455 §9.1.
public struct WebSocketExtensionHeaderError: Error, Hashable, Sendable, CustomStringConvertible {
    public enum Rule: String, Hashable, Sendable, CaseIterable {
        /// The header names no extension at all (`1#extension`).
        case empty
        /// Something other than a token where an extension name belongs.
        case expectedExtensionName = "expected-extension-name"
        /// Nothing, or not a token, after `;`.
        case expectedParameterName = "expected-parameter-name"
        /// Nothing, or not a token or quoted string, after `=`.
        case expectedParameterValue = "expected-parameter-value"
        /// A `"` with no closing `"`.
        case unterminatedQuotedString = "unterminated-quoted-string"
        /// A quoted value that is not a token once unescaped.
        case quotedValueNotToken = "quoted-value-not-token"
        /// A character where only `;`, `,` or the end may follow.
        case unexpectedCharacter = "unexpected-character"
    }

    public var rule: Rule
    /// What was expected, what was found and where, quoting the header line.
    public var message: String
    /// Byte offset in the header line where the problem was found.
    public var offset: Int

    public init(_ rule: Rule, _ message: String, offset: Int = 0) {
        self.rule = rule
        self.message = message
        self.offset = offset
    }

    public var description: String { "\(rule.rawValue): \(message) (RFC 6455 §9.1)" }
}
