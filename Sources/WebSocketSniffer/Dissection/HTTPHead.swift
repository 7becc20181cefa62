/// An HTTP/1.x request or response head read from a TCP stream (RFC 9112 §2–§5): the start line
/// and the header fields, up to the blank line. Bounded: a head longer than `maxLength` is not HTTP
/// as far as the sniffer is concerned.
public struct HTTPHead: Sendable {
    public var startLine: String
    public var headers: [(name: String, value: String)]
    /// Bytes the head took in the stream, blank line included.
    public var length: Int

    public static let maxLength = 64 << 10

    public enum ParseResult: Sendable {
        case needMore
        case head(HTTPHead)
        case notHTTP(String)
    }

    /// Reads a head from the start of `bytes`. Empty lines before the start line are passed over
    /// (RFC 9112 §2.2: a client may send one after a request body) and counted in `length`; a
    /// header line folded onto the next (obs-fold, RFC 9112 §5.2) is joined with a space.
    ///
    /// - Parameter searchFrom: where to start looking for the blank line that ends the head: a
    ///   caller that appends to a buffer and parses again passes where the last search ended (less
    ///   three bytes), so a head arriving a byte at a time is not scanned again for every byte.
    public static func parse(_ bytes: [UInt8], searchFrom: Int = 0) -> ParseResult {
        var first = 0
        while first + 1 < bytes.count && bytes[first] == 13 && bytes[first + 1] == 10 { first += 2 }
        if first > HTTPHead.maxLength { return .notHTTP("more than \(maxLength) bytes of empty lines") }
        var end: Int? = nil
        var i = max(first, searchFrom)
        while i + 3 < bytes.count {
            if bytes[i] == 13 && bytes[i + 1] == 10 && bytes[i + 2] == 13 && bytes[i + 3] == 10 { end = i; break }
            i += 1
        }
        guard let end else {
            if bytes.count > maxLength { return .notHTTP("no end of HTTP head within \(maxLength) bytes") }
            return .needMore
        }
        let text = String(decoding: bytes[first..<end], as: UTF8.self)
        var lines = text.split(separator: "\r\n", omittingEmptySubsequences: false).map(String.init)
        guard !lines.isEmpty else { return .notHTTP("empty head") }
        let start = lines.removeFirst()
        var headers: [(name: String, value: String)] = []
        for line in lines {
            if let f = line.first, f == " " || f == "\t", !headers.isEmpty {
                let more = line.trimmingCharacters(in: " \t")
                headers[headers.count - 1].value += headers[headers.count - 1].value.isEmpty ? more : " " + more
                continue
            }
            guard let colon = line.firstIndex(of: ":") else { return .notHTTP("header line without a colon: \(line.prefix(40))") }
            let name = String(line[..<colon])
            let value = String(line[line.index(after: colon)...]).trimmingCharacters(in: " \t")
            headers.append((name, value))
        }
        return .head(HTTPHead(startLine: start, headers: headers, length: end + 4))
    }

    public func header(_ name: String) -> String? {
        headers.first { $0.name.lowercased() == name.lowercased() }?.value
    }

    /// Every value of a header that may come on several lines, in order.
    public func values(_ name: String) -> [String] {
        headers.filter { $0.name.lowercased() == name.lowercased() }.map(\.value)
    }

    /// Upgrade names websocket: an upgrade request, or a response that grants one.
    public var upgradesToWebSocket: Bool { header("upgrade")?.lowercased().contains("websocket") ?? false }

    /// Connection: close (RFC 9112 §9.6), on any of its lines: nothing follows this message on the
    /// connection.
    public var closesConnection: Bool {
        values("connection").contains { $0.lowercased().split(separator: ",").contains { $0.trimmingCharacters(in: " \t") == "close" } }
    }

    /// `GET /chat HTTP/1.1` → ("GET", "/chat", "HTTP/1.1").
    public var requestLine: (method: String, target: String, version: String)? {
        let parts = startLine.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 3, parts[2].hasPrefix("HTTP/") else { return nil }
        return (String(parts[0]), String(parts[1]), String(parts[2]))
    }

    /// `HTTP/1.1 101 Switching Protocols` → (101, "Switching Protocols").
    public var statusLine: (status: Int, reason: String)? {
        let parts = startLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
        guard parts.count >= 2, parts[0].hasPrefix("HTTP/"), let status = Int(parts[1]) else { return nil }
        return (status, parts.count == 3 ? String(parts[2]) : "")
    }
}

extension StringProtocol {
    func trimmingCharacters(in set: String) -> String {
        var s = Substring(String(self))
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return String(s)
    }
}
