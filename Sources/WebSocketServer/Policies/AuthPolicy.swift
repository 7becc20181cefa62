/// What `AuthPolicy.check` found, and the close code each refusal maps to (DESIGN.md).
public enum AuthResult: Hashable, Sendable {
    /// No tokens are configured, or a presented token is one of them.
    case allowed
    /// Tokens are configured and the client presented none: close 4001 (authentication required).
    case missing
    /// The client presented a token, and it is not one of them (or could not be read): close 4002
    /// (authentication failed).
    case invalid

    /// The close code for a refusal; nil for `.allowed`.
    public var closeCode: UInt16? {
        switch self {
        case .allowed: return nil
        case .missing: return 4001
        case .invalid: return 4002
        }
    }

    /// A close reason for the client, short enough for a close frame (at most 123 bytes).
    public var closeReason: String? {
        switch self {
        case .allowed: return nil
        case .missing: return "authentication required"
        case .invalid: return "authentication failed"
        }
    }
}

/// `--auth-token` / `--auth-tokens-file`: which clients may connect.
///
/// A client presents its token in the query string (`?token=…`, percent-decoded) or in an
/// `Authorization: Bearer …` header (RFC 6750 §2.1; scheme case-insensitive). Browsers cannot set
/// headers on a WebSocket, hence the query form; other clients should prefer the header, which does
/// not end up in access logs. Every token presented counts: one that matches is enough, so a stale
/// query token does not lock out a client that also sends a good header.
///
/// In the query, `%XX` escapes are decoded and `+` is kept as a plus sign (RFC 3986), which is what
/// `encodeURIComponent` relies on; write a space as `%20`. A malformed escape (`%G1`) makes that
/// token invalid rather than missing: the client tried to authenticate.
///
/// Comparison takes the same time wherever the tokens differ: every configured token is compared
/// in full, with no early exit, so response timing says nothing about how much of a guess is right
/// or which token it was close to.
public struct AuthPolicy: Sendable {
    private let tokens: [[UInt8]]

    /// Empty tokens are dropped; no tokens at all turns authentication off.
    public init(tokens: some Sequence<String>) {
        var seen = Set<String>()
        self.tokens = tokens.filter { !$0.isEmpty && seen.insert($0).inserted }.map { Array($0.utf8) }
    }

    /// Whether any token is configured.
    public var isEnabled: Bool { !tokens.isEmpty }

    /// Checks a request's credentials.
    /// - Parameters:
    ///   - query: the request target's query, with or without the leading `?`; nil when there is none.
    ///   - headers: the request headers; names are matched case-insensitively.
    public func check(query: String?, headers: [(name: String, value: String)]) -> AuthResult {
        guard isEnabled else { return .allowed }
        var presented = false
        var matched = false
        func consider(_ candidate: [UInt8]?) {
            presented = true
            if let candidate, accepts(candidate) { matched = true }
        }
        if let query {
            for value in Self.queryValues(named: "token", in: query) where value != [] { consider(value) }
        }
        for header in headers where header.name.lowercased() == "authorization" {
            if let token = Self.bearerToken(header.value) { consider(Array(token.utf8)) }
        }
        if matched { return .allowed }
        return presented ? .invalid : .missing
    }

    /// Whether `token` is one of the configured tokens (for the rooms protocol's `auth` message).
    /// With no tokens configured, every token is accepted.
    public func accepts(token: String) -> Bool {
        isEnabled ? accepts(Array(token.utf8)) : true
    }

    private func accepts(_ candidate: [UInt8]) -> Bool {
        var found = false
        for token in tokens where Self.constantTimeEqual(candidate, token) { found = true }
        return found
    }

    /// Equal bytes, in time that depends only on `candidate.count`: the loop runs over the
    /// candidate and never stops early, and a length difference is folded into the result.
    static func constantTimeEqual(_ candidate: [UInt8], _ secret: [UInt8]) -> Bool {
        var difference = UInt64(truncatingIfNeeded: candidate.count ^ secret.count)
        guard !secret.isEmpty else { return false }
        for index in 0..<candidate.count {
            difference |= UInt64(candidate[index] ^ secret[index % secret.count])
        }
        return difference == 0
    }

    /// The token of `Bearer <token>` (RFC 6750 §2.1), scheme case-insensitive; nil for another scheme.
    static func bearerToken(_ value: String) -> String? {
        let trimmed = Substring(value).trimmingBlanks
        guard let space = trimmed.firstIndex(where: { $0 == " " || $0 == "\t" }),
            trimmed[..<space].lowercased() == "bearer"
        else { return nil }
        let token = trimmed[space...].trimmingBlanks
        return token.isEmpty ? nil : String(token)
    }

    /// The percent-decoded values of every `name=` parameter in `query`, in order; nil for a value
    /// whose escapes are malformed. A parameter without `=` has an empty value.
    static func queryValues(named name: String, in query: String) -> [[UInt8]?] {
        var query = Substring(query)
        if query.first == "?" { query = query.dropFirst() }
        if let hash = query.firstIndex(of: "#") { query = query[..<hash] }
        var values: [[UInt8]?] = []
        for parameter in query.split(separator: "&", omittingEmptySubsequences: true) {
            let key: Substring
            let value: Substring
            if let equals = parameter.firstIndex(of: "=") {
                key = parameter[..<equals]
                value = parameter[parameter.index(after: equals)...]
            } else {
                key = parameter
                value = ""
            }
            guard percentDecode(key) == Array(name.utf8) else { continue }
            values.append(percentDecode(value))
        }
        return values
    }

    /// RFC 3986 §2.1 percent-decoding; nil for a `%` not followed by two hex digits.
    static func percentDecode(_ text: Substring) -> [UInt8]? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(text.utf8.count)
        var iterator = text.utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(hexValue), let low = iterator.next().flatMap(hexValue) else { return nil }
            bytes.append(high << 4 | low)
        }
        return bytes
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): return byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): return byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): return byte - UInt8(ascii: "A") + 10
        default: return nil
        }
    }
}
