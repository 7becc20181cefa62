/// Steps over the body of an HTTP/1.x message in a TCP stream (RFC 9112 §6), so that the next
/// message on a kept-alive connection (an upgrade request after ordinary requests) is found where
/// it starts. Nothing of the body is kept: only a chunk-size line in progress, at most
/// `maxLineLength` bytes.
public struct HTTPBodySkipper: Sendable {
    public enum Framing: Sendable, Equatable {
        /// A body of this many bytes (Content-Length, or 0 when the message has none).
        case length(Int)
        /// Transfer-Encoding: chunked.
        case chunked
        /// The body runs until the connection closes (a response without a length): nothing follows it.
        case untilClose
    }

    private enum State: Sendable {
        case bytes(Int)
        case sizeLine
        case chunkData(Int)
        case chunkEnd(Int)  // CRLF bytes still to pass after a chunk's data
        case trailerLine
        case untilClose
        case done
    }

    public static let maxLineLength = 4096
    private var state: State
    private var line: [UInt8] = []
    /// Set when the body cannot be followed (a bad chunk size or line): treat the rest as unknown.
    public private(set) var failure: String?

    public init(_ framing: Framing) {
        switch framing {
        case .length(let n): state = n > 0 ? .bytes(n) : .done
        case .chunked: state = .sizeLine
        case .untilClose: state = .untilClose
        }
    }

    /// The framing of a message's body from its head (RFC 9112 §6.3). `request`: a request (no
    /// length means no body); else a response, with the method of the request it answers.
    public static func framing(of head: HTTPHead, request: Bool, method: String? = nil) -> Framing? {
        if !request {
            let status = head.statusLine?.status ?? 0
            if method == "HEAD" || (100..<200).contains(status) || status == 204 || status == 304 { return .length(0) }
        }
        if let te = head.header("transfer-encoding") {
            // Chunked must be the last coding; anything else leaves a response open to the close.
            if te.lowercased().split(separator: ",").last?.trimmingCharacters(in: " \t") == "chunked" { return .chunked }
            return request ? nil : .untilClose
        }
        if let cl = head.header("content-length") {
            guard let n = Int(cl.trimmingCharacters(in: " \t")), n >= 0 else { return nil }
            return .length(n)
        }
        return request ? .length(0) : .untilClose
    }

    public var isDone: Bool { if case .done = state { return true } else { return false } }

    /// Consumes body bytes from the start of `bytes`; returns how many it used (all of them unless
    /// the body ended inside them).
    public mutating func consume(_ bytes: UnsafeRawBufferPointer) -> Int {
        var i = 0
        while i < bytes.count {
            switch state {
            case .done:
                return i
            case .untilClose:
                return bytes.count
            case .bytes(let n):
                let take = min(n, bytes.count - i)
                i += take
                state = n == take ? .done : .bytes(n - take)
            case .chunkData(let n):
                let take = min(n, bytes.count - i)
                i += take
                state = n == take ? .chunkEnd(2) : .chunkData(n - take)
            case .chunkEnd(let n):
                // CRLF after the chunk's data, or a lone LF (RFC 9112 §2.2).
                let b = bytes[i]
                i += 1
                state = n == 2 && b == 13 ? .chunkEnd(1) : .sizeLine
            case .sizeLine, .trailerLine:
                guard let text = takeLine(bytes, &i) else { break }
                if case .trailerLine = state {
                    if text.isEmpty { state = .done }
                    continue
                }
                let digits = text.split(separator: ";", maxSplits: 1).first.map { $0.trimmingCharacters(in: " \t") } ?? ""
                guard let size = Int(digits, radix: 16), size >= 0 else {
                    failure = "bad chunk size \"\(text.prefix(20))\""
                    state = .untilClose
                    return bytes.count
                }
                state = size == 0 ? .trailerLine : .chunkData(size)
            }
        }
        return i
    }

    /// A line up to CRLF (without it), across calls; nil when the bytes ended first.
    private mutating func takeLine(_ bytes: UnsafeRawBufferPointer, _ i: inout Int) -> String? {
        while i < bytes.count {
            let b = bytes[i]
            i += 1
            if b == 10 {
                if line.last == 13 { line.removeLast() }
                let text = String(decoding: line, as: UTF8.self)
                line.removeAll(keepingCapacity: true)
                return text
            }
            line.append(b)
            if line.count > Self.maxLineLength {
                failure = "chunk line longer than \(Self.maxLineLength) bytes"
                state = .untilClose
                i = bytes.count
                return nil
            }
        }
        return nil
    }
}
