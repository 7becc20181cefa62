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
        // Lines end with CRLF, or with a lone LF (RFC 9112 §2.2: a recipient may take one for a
        // line end and ignore a CR before it).
        var first = 0
        while first < bytes.count {
            if bytes[first] == 10 {
                first += 1
            } else if bytes[first] == 13 && first + 1 < bytes.count && bytes[first + 1] == 10 {
                first += 2
            } else {
                break
            }
        }
        if first > HTTPHead.maxLength { return .notHTTP("more than \(maxLength) bytes of empty lines") }
        // The blank line: LF, then LF or CRLF.
        var textEnd: Int? = nil
        var end = 0
        var i = max(first, searchFrom)
        while i + 1 < bytes.count {
            if bytes[i] == 10 {
                if bytes[i + 1] == 10 {
                    (textEnd, end) = (i, i + 2)
                    break
                }
                if bytes[i + 1] == 13 {
                    guard i + 2 < bytes.count else { break }
                    if bytes[i + 2] == 10 {
                        (textEnd, end) = (i, i + 3)
                        break
                    }
                }
            }
            i += 1
        }
        guard let textEnd, textEnd >= first else {
            if bytes.count > maxLength { return .notHTTP("no end of HTTP head within \(maxLength) bytes") }
            return .needMore
        }
        return head(bytes[first..<textEnd], length: end)
    }

    /// The head from its lines (`text`: up to the LF that ends the last one, excluded).
    private static func head(_ text: ArraySlice<UInt8>, length: Int) -> ParseResult {
        // Split as bytes: a String holds CR LF as one Character.
        var lines = text.split(separator: 10, omittingEmptySubsequences: false)
            .map { String(decoding: $0.last == 13 ? $0.dropLast() : $0, as: UTF8.self) }
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
        return .head(HTTPHead(startLine: start, headers: headers, length: length))
    }

    /// The head whose end a gap took (the snapshot length cut it, or its last segment was lost):
    /// read from the whole lines of `bytes`, those before the last line end, or from a status line
    /// cut after its code. Nil when not even the start line is whole (or a status line's code), or
    /// the lines are not a head's.
    public static func cutByGap(_ bytes: [UInt8]) -> HTTPHead? {
        guard let lastLF = bytes.lastIndex(of: 10) else {
            // A status line cut after its code: the reason phrase is as far as it came.
            let head = HTTPHead(startLine: String(decoding: bytes, as: UTF8.self), headers: [], length: bytes.count)
            // (Its code whole: a space after it.)
            guard head.startLine.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true).count == 3,
                  let code = head.statusLine?.status, (100...999).contains(code) else { return nil }
            return head
        }
        var first = 0
        while first < lastLF, bytes[first] == 13 || bytes[first] == 10 { first += 1 }
        guard first < lastLF else { return nil }
        // A header line the gap cut in two is not whole either: only the lines before it count.
        guard case .head(let head) = head(bytes[first..<lastLF], length: bytes.count) else { return nil }
        return head
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
