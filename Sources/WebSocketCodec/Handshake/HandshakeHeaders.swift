/// The header fields of one HTTP/1.1 message, looked up the way RFC 7230 §3.2 says: names are
/// case-insensitive, a field may repeat, and repeated list fields mean the same as one comma-joined field
/// (§3.2.2).
struct HandshakeHeaders {
    let fields: [(name: String, value: String)]

    init(_ fields: [(name: String, value: String)]) {
        self.fields = fields
    }

    /// Every value of the field `name`, in order, trimmed of surrounding whitespace.
    func values(_ name: String) -> [String] {
        fields.compactMap { HTTPSyntax.equalsIgnoringCase($0.name, name) ? HTTPSyntax.trimmed($0.value) : nil }
    }

    /// The elements of a comma-separated list field (`1#element`) across all its lines, trimmed, with
    /// empty elements dropped as RFC 7230 §7 asks of recipients.
    func listElements(_ name: String) -> [String] {
        values(name).flatMap { value in
            value.split(separator: ",", omittingEmptySubsequences: false)
                .map { HTTPSyntax.trimmed(String($0)) }
                .filter { !$0.isEmpty }
        }
    }

    /// The value of a field that must appear exactly once (§11.3: Sec-WebSocket-Key, -Version,
    /// -Accept). `fail` makes the request's or the response's error.
    func single(_ name: String, missing: WebSocketHandshakeError.Rule,
                _ fail: (WebSocketHandshakeError.Rule, String) -> WebSocketHandshakeError) throws(WebSocketHandshakeError) -> String {
        let all = values(name)
        guard let first = all.first else { throw fail(missing, "missing \(name) header") }
        guard all.count == 1 else { throw fail(.duplicateHeader, "\(name) header appears \(all.count) times") }
        return first
    }

    /// The Connection header must list the token `upgrade` (§4.1 client step 3, §4.2.1 item 4).
    func requireConnectionUpgrade(_ fail: (WebSocketHandshakeError.Rule, String) -> WebSocketHandshakeError) throws(WebSocketHandshakeError) {
        let connection = listElements("Connection")
        guard !connection.isEmpty else { throw fail(.missingConnection, "missing Connection header") }
        guard connection.contains(where: { HTTPSyntax.equalsIgnoringCase($0, "upgrade") }) else {
            throw fail(.connectionWithoutUpgrade, "Connection header must contain the token upgrade, got \(connection.joined(separator: ", "))")
        }
    }
}

/// Character classes and comparisons of the HTTP grammar (RFC 7230 §3.2.6), in ASCII.
enum HTTPSyntax {
    /// `tchar`: any visible ASCII character except the delimiters `"(),/:;<=>?@[\]{}`.
    static func isTokenCharacter(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
            UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    static func isToken(_ string: String) -> Bool {
        !string.isEmpty && string.utf8.allSatisfy(isTokenCharacter)
    }

    /// `OWS`: space or horizontal tab.
    static func isWhitespace(_ byte: UInt8) -> Bool {
        byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t")
    }

    static func trimmed(_ string: String) -> String {
        let bytes = Array(string.utf8)
        guard let first = bytes.firstIndex(where: { !isWhitespace($0) }),
            let last = bytes.lastIndex(where: { !isWhitespace($0) })
        else { return "" }
        return String(decoding: bytes[first...last], as: UTF8.self)
    }

    /// ASCII case-insensitive equality, as header names and the tokens `websocket` and `upgrade` are compared.
    static func equalsIgnoringCase(_ lhs: String, _ rhs: String) -> Bool {
        let left = lhs.utf8, right = rhs.utf8
        guard left.count == right.count else { return false }
        return zip(left, right).allSatisfy { lowercased($0) == lowercased($1) }
    }

    private static func lowercased(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte + 32 : byte
    }
}
