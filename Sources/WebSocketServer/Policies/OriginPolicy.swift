/// Why an `--allow-origin` pattern cannot be used.
public struct OriginPatternError: Error, Hashable, Sendable, CustomStringConvertible {
    public var pattern: String
    public var reason: String

    public init(pattern: String, reason: String) {
        self.pattern = pattern
        self.reason = reason
    }

    public var description: String { "invalid origin pattern \"\(pattern)\": \(reason)" }
}

/// `--allow-origin`: which web pages may open a connection, by the `Origin` header (RFC 6454 §7,
/// RFC 6455 §4.2.1 item 8 and §10.2). A refused client is closed with 4003.
///
/// Patterns:
///
/// | pattern | matches |
/// |---|---|
/// | `https://app.example.com` | exactly that origin: scheme, host, and the scheme's default port (443) |
/// | `http://localhost:3000` | that scheme, host and port |
/// | `https://*.example.com` | any subdomain, at any depth (`a.example.com`, `a.b.example.com`), not `example.com` itself |
/// | `app.example.com` | that host with any scheme and any port |
/// | `*.example.com:8443` | any subdomain, any scheme, port 8443 |
/// | `http://localhost:*` | that scheme and host, any port |
/// | `*` | every origin (and the same as no pattern) |
/// | `null` | the opaque origin browsers send for `file:` pages and sandboxed frames |
///
/// A pattern with a scheme is an origin and compares as one: a missing port means the scheme's
/// default (80 for http/ws, 443 for https/wss), so `https://a.com` matches `https://a.com:443` but not
/// `https://a.com:8443`. A pattern without a scheme names a host, so it ignores the scheme and, unless
/// it gives one, the port. Schemes and hosts compare case-insensitively; a host's trailing dot is
/// ignored. `*` may only stand for whole leading labels (`*.example.com`), never part of one
/// (`*example.com`), so `badexample.com` can never match.
///
/// A request without an `Origin` header is allowed. Browsers always send one on a WebSocket
/// upgrade, and the check exists to stop other people's pages from using a visitor's browser (and
/// its cookies) to connect; a client without an Origin is not a browser, and could send any Origin
/// it liked anyway. Most servers do the same (Python `websockets` with `origins=` refuses a missing
/// Origin unless `None` is listed; gorilla/websocket and ws allow it). Use `--auth-token` to keep
/// non-browser clients out. An Origin header that is present but malformed is refused.
public struct OriginPolicy: Sendable {
    /// The close code for a refused origin (DESIGN.md: 4003 origin not allowed).
    public static let closeCode: UInt16 = 4003

    private let patterns: [Pattern]
    private let allowsAll: Bool

    /// Builds a policy from `--allow-origin` values. A pattern that cannot be read matches nothing
    /// (it never widens what is allowed); use `init(validating:)` to report it instead.
    public init(patterns: [String]) {
        var parsed: [Pattern] = []
        var all = patterns.isEmpty
        for text in patterns {
            guard let pattern = try? Pattern(text) else { continue }
            if case .any = pattern.kind { all = true }
            parsed.append(pattern)
        }
        self.patterns = parsed
        self.allowsAll = all
    }

    /// Like `init(patterns:)`, but throws for the first pattern that cannot be read, so the command
    /// can report it as a usage error.
    public init(validating patterns: [String]) throws(OriginPatternError) {
        for text in patterns { _ = try Pattern(text) }
        self.init(patterns: patterns)
    }

    /// Whether every origin is allowed (no patterns, or `*`).
    public var allowsAnyOrigin: Bool { allowsAll }

    /// Whether a request with this `Origin` header value may connect; nil means the header is absent
    /// (allowed: see the type's description).
    public func allows(_ origin: String?) -> Bool {
        guard !allowsAll else { return true }
        guard let origin else { return true }
        guard let parsed = Origin(origin) else { return false }
        return patterns.contains { $0.matches(parsed) }
    }

    // MARK: - Reading origins and patterns

    /// An origin as the header sends it (RFC 6454 §6.1): `scheme://host[:port]`, or `null`.
    struct Origin: Equatable {
        var scheme: String
        var host: String
        /// The explicit port, or the scheme's default; nil when there is neither.
        var port: Int?
        var isNull = false

        init?(_ text: String) {
            let trimmed = Substring(text).trimmingBlanks
            if trimmed == "null" {
                scheme = ""
                host = ""
                port = nil
                isNull = true
                return
            }
            guard let separator = trimmed.firstRange(of: "://") else { return nil }
            let scheme = trimmed[..<separator.lowerBound].lowercased()
            guard OriginPolicy.isScheme(scheme) else { return nil }
            var authority = trimmed[separator.upperBound...]
            if authority.last == "/" { authority = authority.dropLast() }
            guard let (host, port) = OriginPolicy.splitHostPort(authority), !host.isEmpty, !host.contains("*") else { return nil }
            var number: Int?
            switch port {
            case .any?: return nil
            case .exact(let explicit)?: number = explicit
            case nil: number = nil
            }
            self.scheme = scheme
            self.host = host
            self.port = number ?? OriginPolicy.defaultPort(scheme)
        }
    }

    enum PortPattern: Equatable {
        case any
        /// nil: no port (a scheme without a default one).
        case exact(Int?)
    }

    struct Pattern {
        enum Kind {
            case any
            case null
            case host(scheme: String?, host: String, wildcard: Bool, port: PortPattern)
        }

        var kind: Kind

        init(_ text: String) throws(OriginPatternError) {
            let trimmed = Substring(text).trimmingBlanks
            func fail(_ reason: String) -> OriginPatternError { OriginPatternError(pattern: text, reason: reason) }
            guard !trimmed.isEmpty else { throw fail("empty") }
            if trimmed == "*" {
                kind = .any
                return
            }
            if trimmed.lowercased() == "null" {
                kind = .null
                return
            }
            var scheme: String?
            var authority = trimmed
            if let separator = trimmed.firstRange(of: "://") {
                let name = trimmed[..<separator.lowerBound].lowercased()
                guard OriginPolicy.isScheme(name) else { throw fail("\"\(name)\" is not a URL scheme") }
                scheme = name
                authority = trimmed[separator.upperBound...]
            }
            if authority.last == "/" { authority = authority.dropLast() }
            guard !authority.contains("/"), !authority.contains("?"), !authority.contains("#") else {
                throw fail("an origin has no path, query or fragment; give scheme://host[:port]")
            }
            guard let (rawHost, port) = OriginPolicy.splitHostPort(authority) else {
                throw fail("expected host[:port] with a port from 1 to 65535 or *")
            }
            guard !rawHost.isEmpty else { throw fail("no host") }
            var host = rawHost
            var wildcard = false
            if host.hasPrefix("*.") {
                wildcard = true
                host.removeFirst(2)
                guard !host.isEmpty else { throw fail("no domain after \"*.\"") }
            }
            guard !host.contains("*") else {
                throw fail("\"*\" may only stand for leading labels, as in *.example.com")
            }
            let portPattern: PortPattern
            switch port {
            case .any?: portPattern = .any
            case .exact(let number?)?: portPattern = .exact(number)
            case .exact(nil)?, nil:
                // An origin without a port has the scheme's default; a bare host means any port.
                portPattern = scheme.map { .exact(OriginPolicy.defaultPort($0)) } ?? .any
            }
            kind = .host(scheme: scheme, host: host, wildcard: wildcard, port: portPattern)
        }

        func matches(_ origin: Origin) -> Bool {
            switch kind {
            case .any: return true
            case .null: return origin.isNull
            case .host(let scheme, let host, let wildcard, let port):
                guard !origin.isNull else { return false }
                if let scheme, scheme != origin.scheme { return false }
                if case .exact(let number) = port, number != origin.port { return false }
                if wildcard {
                    return origin.host.count > host.count + 1 && origin.host.hasSuffix("." + host)
                }
                return origin.host == host
            }
        }
    }

    static func isScheme(_ text: String) -> Bool {
        guard let first = text.unicodeScalars.first, first.isASCIILetter else { return false }
        return text.unicodeScalars.allSatisfy { $0.isASCIILetter || ("0"..."9").contains($0) || $0 == "+" || $0 == "-" || $0 == "." }
    }

    static func defaultPort(_ scheme: String) -> Int? {
        switch scheme {
        case "http", "ws": return 80
        case "https", "wss": return 443
        default: return nil
        }
    }

    /// Splits `host[:port]` or `[v6]:port`; the host lower-cased without a trailing dot. Nil when the
    /// port is not 1–65535 or `*`, or brackets do not close.
    static func splitHostPort(_ authority: Substring) -> (String, PortPattern?)? {
        var host: Substring
        var portText: Substring?
        if authority.first == "[" {
            guard let close = authority.firstIndex(of: "]") else { return nil }
            host = authority[...close]
            let after = authority[authority.index(after: close)...]
            if !after.isEmpty {
                guard after.first == ":" else { return nil }
                portText = after.dropFirst()
            }
        } else if let colon = authority.lastIndex(of: ":") {
            host = authority[..<colon]
            portText = authority[authority.index(after: colon)...]
        } else {
            host = authority
        }
        // Hostname characters only (browsers send IDNs as punycode), so that nothing like
        // `evil.com/.example.com` or `a.example.com@evil.com` can end in an allowed suffix. `*` is let
        // through for patterns, which check its place themselves.
        let bracketed = host.first == "["
        guard host.unicodeScalars.allSatisfy({ scalar in
            scalar.isASCIILetter || ("0"..."9").contains(scalar) || scalar == "-" || scalar == "." || scalar == "_"
                || scalar == "*" || (bracketed && (scalar == ":" || scalar == "[" || scalar == "]"))
        }) else { return nil }
        if host.last == "." { host = host.dropLast() }
        var port: PortPattern?
        if let portText {
            if portText == "*" {
                port = .any
            } else {
                guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy({ $0.isASCII && $0.isNumber }),
                    let number = Int(portText), (1...65535).contains(number)
                else { return nil }
                port = .exact(number)
            }
        }
        return (host.lowercased(), port)
    }
}

extension Unicode.Scalar {
    fileprivate var isASCIILetter: Bool { ("a"..."z").contains(self) || ("A"..."Z").contains(self) }
}
