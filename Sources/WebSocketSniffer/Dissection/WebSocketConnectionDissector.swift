import WebSocketCodec
import WebSocketCompression
import WebSocketInspect

/// What the sniffer reports, in capture order. Frame and message records are borrowed: their bytes,
/// violations, close payload and envelope are valid only during the call that receives the event
/// (`FrameRecord(view)` keeps a copy).
public enum SniffEvent {
    // The rare, large cases are boxed so that every frame and message event is small to pass on.
    indirect case handshake(HandshakeRecord)
    case frame(connection: Int, direction: WebSocketDirection, time: Double, record: FrameRecordView, timing: MessageTiming)
    case message(connection: Int, direction: WebSocketDirection, time: Double, record: MessageRecordView, timing: MessageTiming)
    /// Bytes of the stream missing: not captured, or skipped because the out-of-order buffer was
    /// full (`bufferFull`).
    case gap(connection: Int, direction: WebSocketDirection?, missing: Int, time: Double, bufferFull: Bool)
    /// After a gap that ended inside a frame: where frames start again (see `DissectionResync`).
    case resync(connection: Int, direction: WebSocketDirection, time: Double, resync: DissectionResync)
    indirect case closed(ConnectionSummary)
}

/// Round trips the sniffer pairs up: a pong with its ping, a reply envelope with its request.
public struct MessageTiming: Sendable {
    /// Seconds from the ping with the same payload (for pongs).
    public var pingRTT: Double?
    /// Seconds from the request envelope with the same `correlation_id` (for replies).
    public var replyLatency: Double?
    public init(pingRTT: Double? = nil, replyLatency: Double? = nil) {
        self.pingRTT = pingRTT
        self.replyLatency = replyLatency
    }
}

/// The HTTP upgrade exchange as seen on the wire (RFC 6455 §4).
public struct HandshakeRecord: Sendable {
    public var connection: Int
    public var time: Double
    public var client: String
    public var server: String
    public var requestLine: String
    public var host: String?
    public var origin: String?
    public var key: String?
    public var offeredSubprotocols: [String]
    public var offeredExtensions: [String]
    /// Why the request is not a valid upgrade (RFC 6455 §4.2.1), if it is not.
    public var requestError: String?
    public var status: Int?
    public var statusReason: String?
    /// Whether Sec-WebSocket-Accept matches the key (nil when either is missing).
    public var acceptMatches: Bool?
    public var subprotocol: String?
    public var extensions: String?
    /// Why the response is not a valid 101 for this request, if it is not.
    public var responseError: String?
    public var upgraded: Bool { status == 101 && responseError == nil }
}

/// Counts for one connection, printed by --stats and in the connection-closed event.
public struct ConnectionSummary: Sendable {
    public var connection: Int
    public var client: String
    public var server: String
    public var firstTime: Double
    public var lastTime: Double
    public var reason: String
    public var messages: [WebSocketDirection: Int] = [:]
    public var bytes: [WebSocketDirection: Int] = [:]
    public var frames: [WebSocketDirection: Int] = [:]
    public var opcodes: [String: Int] = [:]
    public var closeCode: UInt16?
    public var violations = 0
    /// Stream gaps (bytes the capture lost) in either direction, and the bytes they lost.
    public var gaps = 0
    public var gapBytes = 0
    /// Of those, bytes given up because the out-of-order buffer filled before they came.
    public var bufferFullGapBytes = 0
    public var websocket = false
}

/// Dissects one TCP connection: finds the HTTP upgrade, then runs one WebSocketStreamDissector per
/// direction (the codec's parser, assembler and inflate; one deflate context per direction), and
/// pairs pings with pongs and requests with replies.
public final class WebSocketConnectionDissector {
    public let id: Int
    public private(set) var client: TCPEndpoint?
    public private(set) var server: TCPEndpoint?
    private let endpoints: (TCPEndpoint, TCPEndpoint)
    private let configuration: WebSocketDissectorConfiguration
    private let webSocketPorts: Set<Int>

    private enum Phase { case awaitingRequest, awaitingResponse, webSocket, notWebSocket }
    private var phase = Phase.awaitingRequest
    private var requestBuffer: [UInt8] = []
    private var responseBuffer: [UInt8] = []
    private var request: WebSocketUpgradeRequest?
    /// The upgrade was followed from its response: the capture does not hold the request.
    private var requestLost = false
    /// Bytes a gap took from the end of the upgrade request's head and of the response's (the
    /// snapshot length cut them, or their last segment was lost): the heads were read from their
    /// whole lines, and each direction's first bytes after them are searched for frame starts.
    private var requestCut = 0
    private var responseCut = 0
    /// The cut request did not show its Upgrade header: it is taken for the upgrade only if the
    /// response is a 101, and shown only then.
    private var requestTentative = false
    /// Directions whose first WebSocket bytes follow a head a gap cut (see `startWebSocket`).
    private var firstBytesMayContinueHead: Set<WebSocketDirection> = []
    private var handshake: HandshakeRecord?
    private var fromClient: WebSocketStreamDissector?
    private var fromServer: WebSocketStreamDissector?
    private var pendingServerBytes: [UInt8] = []
    /// Pings waiting for their pong, by payload, and requests waiting for their reply, by
    /// correlation_id: at most `maxPings` per direction and `maxRequests` (with ids of at most
    /// `maxCorrelationIDLength` bytes; longer ones are not paired). A full map is forgotten whole
    /// (its entries waited longest) and pairing starts afresh. What they hold is charged to
    /// `configuration.messageMemory`; an entry it has no room for is not kept.
    private var pings: [WebSocketDirection: [[UInt8]: Double]] = [:]
    /// Requests (the client's messages with a `correlation_id`) waiting for their reply, the
    /// server's next message with that id: the earliest request first.
    private var requests: [String: WaitingRequests] = [:]
    private var requestCount = 0

    /// The times requests with one `correlation_id` were sent, earliest first: nearly always one.
    struct WaitingRequests {
        var first: Double
        var more: [Double] = []

        /// Takes the earliest; true if none is left.
        mutating func takeFirst() -> (time: Double, empty: Bool) {
            let time = first
            guard !more.isEmpty else { return (time, true) }
            first = more.removeFirst()
            return (time, false)
        }
    }
    private var pairingCharged = 0
    static let maxPings = 1_024
    static let maxRequests = 10_000
    static let maxCorrelationIDLength = 256
    /// What an entry costs besides its key.
    static let pairingOverhead = 64

    private func remember(_ keyBytes: Int) -> Bool {
        guard let budget = configuration.messageMemory else { return true }
        guard budget.take(keyBytes + Self.pairingOverhead) else { return false }
        pairingCharged += keyBytes + Self.pairingOverhead
        return true
    }

    private func forget(_ keyBytes: Int) {
        guard let budget = configuration.messageMemory else { return }
        budget.give(keyBytes + Self.pairingOverhead)
        pairingCharged -= keyBytes + Self.pairingOverhead
    }

    private func forgetPings(_ direction: WebSocketDirection) {
        for key in pings[direction]?.keys ?? [:].keys { forget(key.count) }
        pings[direction] = nil
    }

    private func forgetRequests() {
        for (key, waiting) in requests { for _ in 0...waiting.more.count { forget(key.utf8.count) } }
        requests = [:]
        requestCount = 0
    }
    /// The summary's fields that are not counters.
    private var summaryBase: ConnectionSummary
    private var counts = Counts()
    private var closeCode: UInt16?

    /// Counters, per direction (client to server first): plain integers in one property, put into
    /// the summary's dictionaries only when it is asked for, so that counting a frame costs no
    /// hashing and one access to the object.
    private struct Counts {
        var messages = (0, 0)
        var bytes = (0, 0)
        var frames = (0, 0)
        /// Frames by opcode. (Inline: an Array's uniqueness and bounds checks cost 18 instructions
        /// a frame, on the thread the other two wait for.)
        var opcodes = InlineArray<16, Int>(repeating: 0)
        var violations = 0
        var gaps = 0
        var gapBytes = 0
        var bufferFullGapBytes = 0

        mutating func frame(_ fromClient: Bool, _ opcode: WebSocketOpcode, violations v: Int) {
            if fromClient { frames.0 += 1 } else { frames.1 += 1 }
            opcodes[Int(opcode.rawValue & 0x0F)] += 1
            violations += v
        }

        mutating func message(_ fromClient: Bool, violations v: Int) {
            if fromClient { messages.0 += 1 } else { messages.1 += 1 }
            violations += v
        }

        mutating func bytes(_ fromClient: Bool, _ n: Int) {
            if fromClient { bytes.0 += n } else { bytes.1 += n }
        }
    }

    /// Counts for this connection so far.
    public var summary: ConnectionSummary {
        var s = summaryBase
        s.messages = Self.perDirection(counts.messages)
        s.bytes = Self.perDirection(counts.bytes)
        s.frames = Self.perDirection(counts.frames)
        for op in counts.opcodes.indices where counts.opcodes[op] > 0 {
            s.opcodes[WebSocketOpcode(rawValue: UInt8(op))!.name, default: 0] += counts.opcodes[op]
        }
        s.closeCode = closeCode
        s.violations = counts.violations
        s.gaps = counts.gaps
        s.gapBytes = counts.gapBytes
        s.bufferFullGapBytes = counts.bufferFullGapBytes
        return s
    }

    /// A dictionary holding the directions that were counted (as the summary always had them).
    private static func perDirection(_ counts: (Int, Int)) -> [WebSocketDirection: Int] {
        var d: [WebSocketDirection: Int] = [:]
        if counts.0 != 0 { d[.clientToServer] = counts.0 }
        if counts.1 != 0 { d[.serverToClient] = counts.1 }
        return d
    }

    /// A connection dropped without `close` gives back the memory its dissectors held.
    deinit {
        fromClient?.releaseMemory()
        fromServer?.releaseMemory()
        configuration.messageMemory?.give(pendingCharged)
    }

    /// - Parameters:
    ///   - clientIsFirst: true/false when the SYN showed who the client is, nil when unknown.
    ///   - webSocketPorts: ports that speak WebSocket even when no handshake was seen (`--port`).
    public init(id: Int, first: TCPEndpoint, second: TCPEndpoint, clientIsFirst: Bool?, time: Double,
                configuration: WebSocketDissectorConfiguration, webSocketPorts: Set<Int>) {
        self.id = id
        self.endpoints = (first, second)
        self.configuration = configuration
        self.webSocketPorts = webSocketPorts
        if let c = clientIsFirst {
            client = c ? first : second
            server = c ? second : first
        }
        summaryBase = ConnectionSummary(connection: id, client: "\(client ?? first)", server: "\(server ?? second)",
                                    firstTime: time, lastTime: time, reason: "")
        // Picked up mid-stream on a known WebSocket port: no handshake to wait for.
        if webSocketPorts.contains(Int(first.port)) || webSocketPorts.contains(Int(second.port)) {
            if client == nil {
                let firstIsServer = webSocketPorts.contains(Int(first.port))
                client = firstIsServer ? second : first
                server = firstIsServer ? first : second
            }
            if clientIsFirst == nil {
                // Already open when the capture began: it may begin inside a frame.
                startWebSocket(deflate: .auto)
                fromClient?.beginsInsideStream()
                fromServer?.beginsInsideStream()
            }
        }
        summaryBase.client = "\(client ?? first)"
        summaryBase.server = "\(server ?? second)"
    }

    public var isWebSocket: Bool { phase == .webSocket }
    public var isIgnored: Bool { phase == .notWebSocket }
    /// An upgrade request was seen, whatever became of it.
    public var sawUpgradeRequest: Bool { handshake != nil && !requestTentative }

    /// Bytes in order from `sender` (the TCP layer has reassembled them), borrowed for the call:
    /// after the upgrade they go straight to the stream dissector, which makes the one copy it needs,
    /// or none when `mayModify` says the caller's bytes are a copy it can change (unmasking in place).
    /// - Parameter sink: where frames and messages go, if not to `emit` (see `SniffRecordSink`).
    public func data(from sender: TCPEndpoint, _ bytes: UnsafeRawBufferPointer, mayModify: Bool = false, time: Double,
                     sink: (any SniffRecordSink)? = nil, emit: (SniffEvent) -> Void) {
        // A capture's clock may step back (NTP, merged files): the span is from the earliest time.
        summaryBase.firstTime = min(summaryBase.firstTime, time)
        summaryBase.lastTime = max(summaryBase.lastTime, time)
        if client == nil {
            // The side that speaks first with a request line is the client.
            client = sender
            server = sender == endpoints.0 ? endpoints.1 : endpoints.0
            summaryBase.client = "\(client!)"
            summaryBase.server = "\(server!)"
        }
        let isClient = sender == client
        switch phase {
        case .notWebSocket:
            return
        case .webSocket:
            if !isClient && lateResponsePossible { return lateResponse(bytes, time: time, emit: emit) }
            if isClient && lateRequestPossible { return lateRequest(bytes, time: time, emit: emit) }
            if isClient, upgradeBodyLeft != nil {
                let skipped = skipUpgradeBody(bytes)
                guard skipped < bytes.count else { return }
                return feed(.clientToServer, UnsafeRawBufferPointer(rebasing: bytes[skipped...]), time: time, emit: emit)
            }
            feed(isClient ? .clientToServer : .serverToClient, bytes, mayModify: mayModify, time: time, sink: sink, emit: emit)
        case .awaitingRequest:
            // A connection on a --port whose opening was captured but which starts with frames,
            // not HTTP (its upgrade was not in the stream, or it speaks WebSocket from its first
            // byte): dissected from there.
            if onWebSocketPort && exchanges == 0 && requestBuffer.isEmpty && pendingServerBytes.isEmpty && clientBody == nil
                && !Self.mayStartHTTP(bytes, fromClient: isClient)
            {
                // Neither HTTP nor a frame (TLS on the port, another protocol): left alone.
                guard Self.mayStartFrame(bytes, fromClient: isClient) else {
                    phase = .notWebSocket
                    return
                }
                startWebSocket(deflate: .auto)
                feed(isClient ? .clientToServer : .serverToClient, bytes, mayModify: mayModify, time: time, emit: emit)
                return
            }
            guard isClient else {
                let used = responsesDue.isEmpty ? 0 : skipDueResponses(bytes)
                guard used < bytes.count, phase == .awaitingRequest else { return }
                // The server spoke first: its 101 is enough to follow the connection (the request
                // is not in the capture); anything else waits for the request, up to a bound.
                let searched = pendingServerBytes.count
                pendingServerBytes.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[used...]))
                switch HTTPHead.parse(pendingServerBytes, searchFrom: max(0, searched - 3)) {
                case .head(let head) where head.statusLine?.status == 101 && requestBuffer.isEmpty:
                    // (With part of a request at hand, its end or the gap that took it comes
                    // first: the response is kept for it.)
                    let rest = Array(pendingServerBytes[head.length...])
                    pendingServerBytes = []
                    startWithoutRequest(head, rest: rest, time: time, emit: emit)
                default: if pendingServerBytes.count > HTTPHead.maxLength { phase = .notWebSocket; pendingServerBytes = [] }
                }
                return
            }
            requestsBeforeUpgrade(bytes, time: time, emit: emit)
        case .awaitingResponse:
            if isClient {
                let roomy = holdClientBytes(Array(bytes), time: time)
                // Clients wait for the 101 before they send frames (RFC 6455 §4.1): frames long
                // after the request, or many of them, mean the response is not in the capture.
                // (So does running out of --max-message-memory, for want of a better choice.)
                if !roomy || pendingClientBytes > Self.maxPendingBytes || time - requestTime >= Self.missingResponseDelay {
                    startWithoutResponse(time: time, emit: emit)
                }
                return
            }
            let used = responsesDue.isEmpty ? 0 : skipDueResponses(bytes)
            guard used < bytes.count, phase == .awaitingResponse else { return }
            let searched = responseBuffer.count
            responseBuffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[used...]))
            var parsed = HTTPHead.parse(responseBuffer, searchFrom: max(0, searched - 3))
            // Interim responses (1xx but 101) come before the final one (RFC 9110 §15.2): passed over.
            while case .head(let head) = parsed, let s = head.statusLine?.status, (100..<200).contains(s), s != 101 {
                responseBuffer.removeFirst(head.length)
                parsed = HTTPHead.parse(responseBuffer)
            }
            switch parsed {
            case .needMore: return
            case .notHTTP(let why):
                // (RFC 6455 §4.2.2: the answer to an upgrade is an HTTP response.)
                if handshake != nil { brokeRule(&handshake!.responseError, "response is not HTTP: \(why)") }
                if let h = handshake { emit(.handshake(h)) }
                phase = .notWebSocket
            case .head(let head):
                let rest = Array(responseBuffer[head.length...])
                responseBuffer = []
                readResponse(head, time: time, emit: emit)
                if phase == .webSocket {
                    feedHeldClientBytes(emit: emit)
                    if !rest.isEmpty { rest.withUnsafeBytes { feed(.serverToClient, $0, time: time, emit: emit) } }
                } else if phase == .awaitingRequest {
                    // Refused, the connection kept open: the client's next request (a retry with
                    // credentials), if it came already, then the server's bytes after the refusal
                    // (its body, and the next response, which the retry must be known for).
                    replayHeldClientBytes(emit: emit)
                    if !rest.isEmpty { rest.withUnsafeBytes { data(from: sender, $0, time: time, emit: emit) } }
                }
            }
        }
    }

    /// Client bytes before the upgrade: request heads, and the bodies of ordinary requests on a
    /// kept-alive connection (passed over) until the upgrade request.
    private func requestsBeforeUpgrade(_ bytes: UnsafeRawBufferPointer, time: Double, emit: (SniffEvent) -> Void) {
        var i = 0
        while i < bytes.count && phase == .awaitingRequest {
            if clientBody != nil {
                i += clientBody!.consume(UnsafeRawBufferPointer(rebasing: bytes[i...]))
                guard clientBody!.isDone else {
                    if clientBody!.failure != nil { phase = .notWebSocket }
                    return
                }
                clientBody = nil
                continue
            }
            // Empty lines before a request (RFC 9112 §2.2) are passed over here, not gathered:
            // a head parsed again for every one of them would cost time in their square.
            if requestBuffer.isEmpty && (bytes[i] == 13 || bytes[i] == 10) {
                while i < bytes.count && (bytes[i] == 13 || bytes[i] == 10) {
                    i += 1
                    blankBytesBeforeRequest += 1
                }
                if blankBytesBeforeRequest > HTTPHead.maxLength { phase = .notWebSocket }
                continue
            }
            if requestBuffer.isEmpty { blankBytesBeforeRequest = 0 }
            // A request starts with its method, a token (RFC 9110 §9.1), or an empty line: other
            // bytes (TLS, a binary protocol) end the search at once, rather than after 64 KiB.
            if requestBuffer.isEmpty && !Self.mayStartRequest(bytes[i]) {
                phase = .notWebSocket
                return
            }
            let before = requestBuffer.count
            requestBuffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[i...]))
            switch HTTPHead.parse(requestBuffer, searchFrom: max(0, before - 3)) {
            case .needMore: return
            case .notHTTP: phase = .notWebSocket; requestBuffer = []
            case .head(let head) where head.requestLine != nil && !head.upgradesToWebSocket:
                // An ordinary request: an upgrade may still follow on the same connection, after
                // its response (RFC 9112 §9.3), unless either side closes it. (The buffer held no
                // whole head before these bytes, so the head ends inside them.)
                i += head.length - before
                requestBuffer = []
                exchanges += 1
                let closes = head.closesConnection || head.requestLine?.version == "HTTP/1.0"
                guard !closes, exchanges <= Self.maxExchanges, let framing = HTTPBodySkipper.framing(of: head, request: true) else {
                    phase = .notWebSocket
                    return
                }
                responsesDue.append(head.requestLine!.method)
                let body = HTTPBodySkipper(framing)
                clientBody = body.isDone ? nil : body
            case .head(let head) where head.requestLine == nil && head.statusLine?.status == 101:
                i = bytes.count
                // What spoke first was the server, answering a request that is not in the capture.
                (client, server) = (server, client)
                summaryBase.client = "\(client!)"
                summaryBase.server = "\(server!)"
                let rest = Array(requestBuffer[head.length...])
                requestBuffer = []
                startWithoutRequest(head, rest: rest, time: time, emit: emit)
            case .head(let head):
                i = bytes.count
                readRequest(head, time: time)
                let rest = Array(requestBuffer[head.length...])
                requestBuffer = []
                if phase == .awaitingResponse { replayEarlyServerBytes(time: time, emit: emit) }
                // A client may send frames right behind its request; keep them for after the 101.
                if !rest.isEmpty { holdClientBytes(rest, time: time) }
            }
        }
    }

    /// Server bytes that came before the request's head was whole, read now that it is.
    private func replayEarlyServerBytes(time: Double, emit: (SniffEvent) -> Void) {
        guard !pendingServerBytes.isEmpty else { return }
        let early = pendingServerBytes
        pendingServerBytes = []
        early.withUnsafeBytes { data(from: server!, $0, time: time, emit: emit) }
    }

    /// The server's port is one of `--port`'s.
    private var onWebSocketPort: Bool { server.map { webSocketPorts.contains(Int($0.port)) } ?? false }

    /// Whether `bytes`, the first of a direction, may begin an HTTP request (a method: capital
    /// letters; a client's WebSocket frame has its MASK bit in the second byte) or response
    /// (`HTTP/`), empty lines allowed before either.
    static func mayStartHTTP(_ bytes: UnsafeRawBufferPointer, fromClient: Bool) -> Bool {
        guard let first = bytes.first else { return true }
        if first == 13 || first == 10 { return true }
        if fromClient {
            return (65...90).contains(first) && (bytes.count < 2 || bytes[1] < 0x80)
        }
        let prefix = Array("HTTP/".utf8)
        return bytes.prefix(prefix.count).elementsEqual(prefix.prefix(min(bytes.count, prefix.count)))
    }

    /// Whether `bytes` may begin a frame: a defined opcode, no RSV2 or RSV3, FIN on a control
    /// frame, and from a client the MASK bit. (A TLS record, 16 03 0x, is no frame.)
    static func mayStartFrame(_ bytes: UnsafeRawBufferPointer, fromClient: Bool) -> Bool {
        guard let first = bytes.first else { return true }
        let opcode = first & 0x0F
        guard first & 0x30 == 0, [0, 1, 2, 8, 9, 10].contains(opcode), opcode < 8 || first & 0x80 != 0 else { return false }
        return bytes.count < 2 || (bytes[1] & 0x80 != 0) == fromClient
    }

    /// tchar (RFC 9110 §5.6.2), CR or LF.
    static func mayStartRequest(_ b: UInt8) -> Bool {
        switch b {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"): return true
        case 13, 10: return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
             UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
             UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default: return false
        }
    }

    /// Empty-line bytes passed over before the next request, at most `HTTPHead.maxLength`.
    private var blankBytesBeforeRequest = 0

    /// Methods of the ordinary requests before the upgrade whose responses are still to come.
    private var responsesDue: [String] = []
    private var clientBody: HTTPBodySkipper?
    private var serverBody: HTTPBodySkipper?
    /// Ordinary requests seen before the upgrade; past `maxExchanges` the connection is taken for
    /// plain HTTP and left alone.
    private var exchanges = 0
    static let maxExchanges = 100

    /// Server bytes that answer the ordinary requests before the upgrade: their heads and bodies
    /// are passed over. Returns how many of `bytes` they took (all, unless the last response due
    /// ended inside them).
    private func skipDueResponses(_ bytes: UnsafeRawBufferPointer) -> Int {
        var i = 0
        while !responsesDue.isEmpty && i < bytes.count && phase != .notWebSocket {
            if serverBody != nil {
                i += serverBody!.consume(UnsafeRawBufferPointer(rebasing: bytes[i...]))
                guard serverBody!.isDone else {
                    if serverBody!.failure != nil { phase = .notWebSocket }
                    return bytes.count
                }
                serverBody = nil
                responsesDue.removeFirst()
                continue
            }
            let before = responseBuffer.count
            responseBuffer.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[i...]))
            switch HTTPHead.parse(responseBuffer, searchFrom: max(0, before - 3)) {
            case .needMore: return bytes.count
            case .notHTTP: phase = .notWebSocket; responseBuffer = []; return bytes.count
            case .head(let head):
                i += head.length - before
                responseBuffer = []
                let status = head.statusLine?.status ?? 0
                if (100..<200).contains(status) && status != 101 { continue }  // interim: the final response follows
                guard status >= 200, !head.closesConnection, let framing = HTTPBodySkipper.framing(of: head, request: false, method: responsesDue.first),
                      framing != .untilClose else {
                    // Switched to another protocol, or the connection ends with this response.
                    phase = .notWebSocket
                    return bytes.count
                }
                let body = HTTPBodySkipper(framing)
                if body.isDone { responsesDue.removeFirst() } else { serverBody = body }
            }
        }
        return i
    }

    /// Client bytes that came before the upgrade response, each delivery with its time.
    private var pendingClientDeliveries: [(bytes: [UInt8], time: Double)] = []
    private var pendingClientBytes = 0
    /// Of those, the bytes held against the session's memory budget.
    private var pendingCharged = 0

    /// Holds client bytes until the response; false when the memory budget had no room for them
    /// (they are held all the same, uncounted, for the caller to let go of soon).
    @discardableResult
    private func holdClientBytes(_ bytes: [UInt8], time: Double) -> Bool {
        pendingClientDeliveries.append((bytes, time))
        pendingClientBytes += bytes.count
        guard let budget = configuration.messageMemory else { return true }
        guard budget.take(bytes.count) else { return false }
        pendingCharged += bytes.count
        return true
    }

    private func dropHeldClientBytes() {
        pendingClientDeliveries = []
        pendingClientBytes = 0
        configuration.messageMemory?.give(pendingCharged)
        pendingCharged = 0
    }

    /// Dissects the client bytes held for the response, each delivery at its own time, after the
    /// upgrade request's body if it announced one.
    private func feedHeldClientBytes(emit: (SniffEvent) -> Void) {
        let held = pendingClientDeliveries
        dropHeldClientBytes()
        if let framing = upgradeBody, framing != .length(0), requestCut == 0 { upgradeBodyLeft = HTTPBodySkipper(framing) }
        for d in held {
            d.bytes.withUnsafeBytes { bytes in
                let skipped = upgradeBodyLeft == nil ? 0 : skipUpgradeBody(bytes)
                if skipped < bytes.count { feed(.clientToServer, UnsafeRawBufferPointer(rebasing: bytes[skipped...]), time: d.time, emit: emit) }
            }
        }
    }

    /// The body of the upgrade request still to pass over before the client's frames: a request
    /// message ends after its body (RFC 9112 §6.3), and the protocol switches after it (RFC 9110
    /// §7.8). Nil once passed (or when there is none).
    private var upgradeBodyLeft: HTTPBodySkipper?

    /// Passes over what `bytes` hold of the upgrade request's body; returns how many.
    private func skipUpgradeBody(_ bytes: UnsafeRawBufferPointer) -> Int {
        guard var skipper = upgradeBodyLeft else { return 0 }
        let used = skipper.consume(bytes)
        // A body that breaks its framing: no more is passed over, and what it was given is read
        // as frames (they show what it was) rather than lost.
        if skipper.failure != nil {
            upgradeBodyLeft = nil
            return 0
        }
        upgradeBodyLeft = skipper.isDone ? nil : skipper
        return used
    }

    /// After a refusal that kept the connection open: the client bytes held for the response are
    /// read again as HTTP (the refused request's body, then the next request), each delivery at its
    /// own time.
    private func replayHeldClientBytes(emit: (SniffEvent) -> Void) {
        let held = pendingClientDeliveries
        dropHeldClientBytes()
        for d in held { d.bytes.withUnsafeBytes { data(from: client!, $0, time: d.time, emit: emit) } }
    }
    /// When the upgrade request was seen.
    private var requestTime = 0.0
    /// Client bytes held for an upgrade response, at most; past it the response is taken to be
    /// missing from the capture.
    static let maxPendingBytes = 1 << 20
    /// Seconds of capture time after the request from which client bytes mean the response is
    /// missing (a server answers in far less).
    static let missingResponseDelay = 1.0
    /// Frames were taken without the response: if it still comes, its head is passed over.
    private var lateResponsePossible = false

    /// The request was seen, but no response: the capture holds the client's direction only, or
    /// lost the response. The client's frames are dissected anyway (RSV1 decides compression when
    /// permessage-deflate was offered).
    private func startWithoutResponse(time: Double, emit: (SniffEvent) -> Void) {
        guard var record = handshake, !requestTentative else {
            phase = .notWebSocket
            dropHeldClientBytes()
            return
        }
        record.responseError = "no response in the capture (one direction captured, or it was lost): frames dissected without it"
        handshake = record
        emit(.handshake(record))
        let offered = record.offeredExtensions.contains { $0.lowercased().contains(PerMessageDeflateParameters.extensionName) }
        startWebSocket(deflate: offered ? .auto : .off)
        lateResponsePossible = true
        feedHeldClientBytes(emit: emit)
        if !responseBuffer.isEmpty {
            let partial = responseBuffer
            responseBuffer = []
            partial.withUnsafeBytes { lateResponse($0, time: time, emit: emit) }
        }
    }

    /// Followed from a 101 whose request had not come: the client's first bytes may still be that
    /// request (a capture can show the response first, its ACK covering the request), which is
    /// passed over rather than read as frames.
    private var lateRequestPossible = false

    private func lateRequest(_ bytes: UnsafeRawBufferPointer, time: Double, emit: (SniffEvent) -> Void) {
        requestBuffer.append(contentsOf: bytes)
        var frames: [UInt8]? = nil
        if !requestBuffer.withUnsafeBytes({ Self.mayStartHTTP($0, fromClient: true) }) {
            frames = requestBuffer
        } else {
            switch HTTPHead.parse(requestBuffer) {
            case .needMore: return
            case .notHTTP: frames = requestBuffer
            case .head(let head) where head.requestLine != nil: frames = Array(requestBuffer[head.length...])
            case .head: frames = requestBuffer
            }
        }
        lateRequestPossible = false
        requestBuffer = []
        if let frames, !frames.isEmpty { frames.withUnsafeBytes { data(from: client!, $0, time: time, emit: emit) } }
    }

    /// Server bytes after frames were taken without the response: a response head is passed over.
    private func lateResponse(_ bytes: UnsafeRawBufferPointer, time: Double, emit: (SniffEvent) -> Void) {
        responseBuffer.append(contentsOf: bytes)
        let prefix = Array("HTTP/".utf8)
        if responseBuffer.count < prefix.count && responseBuffer.elementsEqual(prefix.prefix(responseBuffer.count)) { return }
        var frames: [UInt8] = responseBuffer
        if responseBuffer.starts(with: prefix) {
            switch HTTPHead.parse(responseBuffer) {
            case .needMore: return
            case .notHTTP: break
            case .head(let head): frames = Array(responseBuffer[head.length...])
            }
        }
        lateResponsePossible = false
        responseBuffer = []
        if !frames.isEmpty { frames.withUnsafeBytes { feed(.serverToClient, $0, time: time, emit: emit) } }
    }

    /// A 101 response without its request (the capture holds the server's direction only, or began
    /// after the request): the connection is followed from the response.
    private func startWithoutRequest(_ head: HTTPHead, rest: [UInt8], time: Double, emit: (SniffEvent) -> Void) {
        guard let status = head.statusLine, head.upgradesToWebSocket else {
            phase = .notWebSocket
            return
        }
        var record = HandshakeRecord(
            connection: id, time: time, client: "\(client!)", server: "\(server!)", requestLine: "", host: nil, origin: nil, key: nil,
            offeredSubprotocols: [], offeredExtensions: [])
        record.requestError = "no request in the capture (one direction captured, or the capture began after it)"
        requestLost = true
        lateRequestPossible = true
        record.status = status.status
        record.statusReason = status.reason
        record.subprotocol = head.header("sec-websocket-protocol")
        let extensions = head.values("sec-websocket-extensions")
        record.extensions = extensions.isEmpty ? nil : extensions.joined(separator: ", ")
        var deflate: WebSocketDissectorConfiguration.DeflateMode = .off
        var parameters: PerMessageDeflateParameters? = nil
        if let accepted = try? WebSocketExtensionHeader.parse(extensions) {
            // No offer to hold the response to: only its own rules are checked.
            apply(Self.deflateAgreement(accepted, offers: nil), to: &record, deflate: &deflate, parameters: &parameters)
        } else if record.extensions?.lowercased().contains(PerMessageDeflateParameters.extensionName) == true {
            deflate = .auto
        }
        handshake = record
        emit(.handshake(record))
        startWebSocket(deflate: deflate, parameters: parameters)
        if !rest.isEmpty { rest.withUnsafeBytes { feed(.serverToClient, $0, time: time, emit: emit) } }
    }

    private func readRequest(_ head: HTTPHead, time: Double) {
        guard let line = head.requestLine else { phase = .notWebSocket; return }
        guard head.upgradesToWebSocket || requestTentative else { phase = .notWebSocket; return }
        var record = HandshakeRecord(
            connection: id, time: time, client: "\(client!)", server: "\(server!)", requestLine: head.startLine,
            host: head.header("host"), origin: head.header("origin"), key: head.header("sec-websocket-key"),
            offeredSubprotocols: head.values("sec-websocket-protocol")
                .flatMap { $0.split(separator: ",").map { $0.trimmingCharacters(in: " \t") } },
            offeredExtensions: head.values("sec-websocket-extensions"))
        if requestCut == 0 {
            do {
                request = try WebSocketUpgradeRequest.validate(method: line.method, target: line.target, version: line.version, headers: head.headers)
            } catch {
                brokeRule(&record.requestError, error.message)  // (a rule of RFC 6455 §4.1)
            }
        }
        handshake = record
        requestTime = time
        phase = .awaitingResponse
        upgradeMethod = line.method
        upgradeBody = head.closesConnection || line.version == "HTTP/1.0" ? nil : HTTPBodySkipper.framing(of: head, request: true)
    }

    /// The upgrade request's method, and the framing of its body (nil when the request closes the
    /// connection or its body cannot be followed): a refusal that keeps the connection open needs
    /// them to find the next request.
    private var upgradeMethod = "GET"
    private var upgradeBody: HTTPBodySkipper.Framing?

    /// A refusal (not 101) that keeps the connection open (RFC 9112 §9.3): a client may ask again
    /// on it, typically after a 401 with credentials (RFC 9110 §11.6.1). The refusal's body is
    /// passed over as an ordinary response's, the refused request's body too, and the connection
    /// waits for the next request. False when nothing can follow: either side closes, the body
    /// runs to the close, or `maxExchanges` were seen.
    private func awaitRetry(after head: HTTPHead) -> Bool {
        guard let requestBody = upgradeBody, !head.closesConnection, exchanges < Self.maxExchanges,
              let framing = HTTPBodySkipper.framing(of: head, request: false, method: upgradeMethod), framing != .untilClose
        else { return false }
        exchanges += 1
        request = nil
        phase = .awaitingRequest
        let body = HTTPBodySkipper(framing)
        if !body.isDone {
            responsesDue.append(upgradeMethod)
            serverBody = body
        }
        let sent = HTTPBodySkipper(requestBody)
        clientBody = sent.isDone ? nil : sent
        return true
    }

    private func readResponse(_ head: HTTPHead, time: Double, emit: (SniffEvent) -> Void) {
        guard var record = handshake else { phase = .notWebSocket; return }
        if requestTentative {
            // A request cut before its Upgrade header: an upgrade only if this grants one.
            guard head.statusLine?.status == 101 else {
                // An ordinary exchange on a kept-alive connection: an upgrade may still follow.
                handshake = nil
                requestTentative = false
                requestCut = 0
                if !awaitRetry(after: head) { phase = .notWebSocket }
                return
            }
            requestTentative = false
        }
        guard let status = head.statusLine else {
            brokeRule(&record.responseError, "not an HTTP status line: \(head.startLine.prefix(60))")
            emit(.handshake(record))
            phase = .notWebSocket
            return
        }
        record.status = status.status
        record.statusReason = status.reason
        record.subprotocol = head.header("sec-websocket-protocol")
        // Every line of it: a server may split its extensions over several (RFC 9110 §5.3).
        let extensionLines = head.values("sec-websocket-extensions")
        record.extensions = extensionLines.isEmpty ? nil : extensionLines.joined(separator: ", ")
        if let key = record.key, let accept = head.header("sec-websocket-accept") {
            record.acceptMatches = WebSocketHandshake.acceptValue(forKey: key) == accept
        }
        var deflate: WebSocketDissectorConfiguration.DeflateMode = .off
        var parameters: PerMessageDeflateParameters? = nil
        if status.status == 101 && responseCut > 0 {
            // The headers after the cut are unknown: what came is read, and nothing is judged
            // missing. RSV1 decides compression unless the agreement came whole.
            record.responseError = "the response's end was not captured (\(responseCut) bytes lost): only its first \(head.headers.count) header lines are known"
            deflate = .auto
            let offers = (try? WebSocketExtensionHeader.parse(record.offeredExtensions)) ?? []
            if let accepted = try? WebSocketExtensionHeader.parse(extensionLines),
               case .agreed(let agreement) = Self.deflateAgreement(accepted, offers: offers.isEmpty ? nil : offers)
            {
                parameters = agreement
                deflate = .on
            }
        } else if status.status == 101 && requestCut > 0 {
            // The request's end was cut off: its offers (and maybe its key) are not all known, so
            // the answer is held to its own rules, and the Accept to the key if it came.
            if let accepted = try? WebSocketExtensionHeader.parse(extensionLines) {
                apply(Self.deflateAgreement(accepted, offers: nil), to: &record, deflate: &deflate, parameters: &parameters)
            }
            if let key = record.key, let accept = head.header("sec-websocket-accept"), record.acceptMatches == false {
                brokeRule(&record.responseError, "Sec-WebSocket-Accept is \(accept), expected \(WebSocketHandshake.acceptValue(forKey: key)) for key \(key)")
            }
        } else if status.status == 101 {
            do {
                // What the request offered, even when the request itself broke a rule.
                let offered = request?.extensions ?? ((try? WebSocketExtensionHeader.parse(record.offeredExtensions)) ?? [])
                let response = try WebSocketUpgradeResponse.validate(
                    status: status.status, headers: head.headers, sentKey: record.key ?? "",
                    offeredSubprotocols: request?.subprotocols ?? record.offeredSubprotocols, offeredExtensions: offered)
                apply(Self.deflateAgreement(response.extensions, offers: offered), to: &record, deflate: &deflate, parameters: &parameters)
            } catch {
                brokeRule(&record.responseError, error.message)  // (a rule of RFC 6455 §4.2.2 or RFC 7692)
                // Read what follows as WebSocket anyway: RSV1 decides compression.
                if record.extensions?.lowercased().contains("permessage-deflate") == true { deflate = .auto }
            }
        }
        handshake = record
        emit(.handshake(record))
        guard status.status == 101 else {
            summaryBase.reason = "upgrade refused (\(status.status))"
            if !awaitRetry(after: head) { phase = .notWebSocket }
            return
        }
        startWebSocket(deflate: deflate, parameters: parameters)
    }

    private enum DeflateAgreement {
        case none
        case agreed(PerMessageDeflateParameters)
        case refused(String)
    }

    /// What a response's `permessage-deflate` element agrees to (RFC 7692 §7.1): held to the
    /// request's offers, the first it answers (a client offering several takes the first that
    /// validates), or to its own rules when the request is not in the capture (`offers` nil).
    /// Accepted twice, it is refused: both elements would claim RSV1 (§5).
    /// Puts an agreement into effect: permessage-deflate on with its parameters, or, refused, RSV1
    /// deciding and the rule broken in `response_error`.
    private func apply(
        _ agreement: DeflateAgreement, to record: inout HandshakeRecord, deflate: inout WebSocketDissectorConfiguration.DeflateMode,
        parameters: inout PerMessageDeflateParameters?
    ) {
        switch agreement {
        case .none: break
        case .agreed(let agreed):
            parameters = agreed
            deflate = .on
        case .refused(let message):
            brokeRule(&record.responseError, message)
            deflate = .auto
        }
    }

    /// The handshake broke a rule of RFC 6455 or 7692: `error` says which, and it counts as a
    /// protocol violation of the connection (exit status 1). Errors that only say what the capture
    /// lacks are set directly, and do not count.
    private func brokeRule(_ error: inout String?, _ message: String) {
        error = message
        counts.violations += 1
    }

    private static func isDeflate(_ element: WebSocketExtensionOffer) -> Bool {
        PerMessageDeflateParameters.sameName(element.name, PerMessageDeflateParameters.extensionName)
    }

    /// (`accepted` and `offers` may name other extensions too: only permessage-deflate's count.)
    private static func deflateAgreement(_ accepted: [WebSocketExtensionOffer], offers: [WebSocketExtensionOffer]?) -> DeflateAgreement {
        let elements = accepted.filter(isDeflate)
        guard let answer = elements.first else { return .none }
        guard elements.count == 1 else {
            return .refused("permessage-deflate accepted \(elements.count) times: each would use RSV1 (RFC 7692 §5)")
        }
        guard let offers else {
            do {
                let parameters = try PerMessageDeflateParameters(answer)
                if parameters.clientMaxWindowBits == .withoutValue {
                    return .refused("permessage-deflate: client_max_window_bits in a response needs a value 8-15 (RFC 7692 §7.1.2.2)")
                }
                return .agreed(parameters)
            } catch {
                return .refused("permessage-deflate: \(error.message) (RFC 7692 §7.1)")
            }
        }
        var first: String? = nil
        for offer in offers where isDeflate(offer) {
            do {
                return .agreed(try PerMessageDeflateParameters(offer).validateResponse(answer))
            } catch {
                if first == nil { first = error.message }
            }
        }
        return .refused("permessage-deflate: \(first ?? "the response answers no offer") (RFC 7692 §7.1)")
    }

    private func startWebSocket(deflate: WebSocketDissectorConfiguration.DeflateMode, parameters: PerMessageDeflateParameters? = nil) {
        var c = configuration
        c.deflate = deflate
        if let p = parameters {
            c.clientNoContextTakeover = p.clientToServer.noContextTakeover
            c.serverNoContextTakeover = p.serverToClient.noContextTakeover
            c.clientMaxWindowBits = max(9, p.clientToServer.windowBits)
            c.serverMaxWindowBits = max(9, p.serverToClient.windowBits)
        }
        // An extension sniff does not know (x-webkit-deflate-frame, say) was agreed: which RSV bits
        // it sets and how it changes payloads is its own, so neither RSV bits nor the UTF-8 of
        // text are judged (RFC 6455 §5.2, §9); payloads are shown as they travelled.
        let accepted = handshake?.extensions.flatMap { try? WebSocketExtensionHeader.parse($0) } ?? []
        if accepted.contains(where: { !Self.isDeflate($0) }) {
            c.parser.allowedReservedBits = 0x70
            c.assembler.validateUTF8 = false
        }
        fromClient = WebSocketStreamDissector(configuration: c, direction: .clientToServer)
        fromServer = WebSocketStreamDissector(configuration: c, direction: .serverToClient)
        // After a head a gap cut, the direction's next bytes may be frames (the snapshot length
        // cut the head's packet) or the rest of the head (a segment of it was lost): decided by
        // the first of them (`feed`).
        if requestCut > 0 { firstBytesMayContinueHead.insert(.clientToServer) }
        if responseCut > 0 { firstBytesMayContinueHead.insert(.serverToClient) }
        phase = .webSocket
        summaryBase.websocket = true
        summaryBase.reason = ""  // a refusal before (a retry) no longer ends it
    }

    /// While a direction's dissector holds bytes after a gap (`isHunting`): where each delivery
    /// since ended in the stream and when it came, so that frames it lets out later carry the
    /// time of the delivery that completed them, as frames do without a gap. At most
    /// `maxHeldDeliveries` are kept (the oldest go first).
    private var heldDeliveries: [WebSocketDirection: [(end: Int, time: Double)]] = [:]
    static let maxHeldDeliveries = 16_384

    /// Seconds a direction holding bytes after a gap may stay quiet before a live capture lets out
    /// what it can (`settleQuietHunts`).
    public static let huntPatience = 1.0

    /// Whether a direction holds bytes after a gap, waiting to find where frames start again.
    public var isHunting: Bool { isHunting(.clientToServer) || isHunting(.serverToClient) }

    /// For a live capture: each direction that holds bytes after a gap and has had nothing new for
    /// `huntPatience` seconds (of capture time, `now`) lets out the frames it can, as at the
    /// connection's end (see `WebSocketStreamDissector.settleHuntWhileQuiet`), so that a quiet
    /// connection does not keep them back until five more frames come.
    public func settleQuietHunts(now: Double, emit: (SniffEvent) -> Void) {
        for d in [WebSocketDirection.clientToServer, .serverToClient] where isHunting(d) {
            guard let last = heldDeliveries[d]?.last?.time, now - last >= Self.huntPatience else { continue }
            if d == .clientToServer {
                fromClient?.settleHuntWhileQuiet({ report($0, direction: d, time: last, emit: emit) })
            } else {
                fromServer?.settleHuntWhileQuiet({ report($0, direction: d, time: last, emit: emit) })
            }
            if !isHunting(d) { heldDeliveries[d] = nil }
        }
    }

    private func isHunting(_ direction: WebSocketDirection) -> Bool {
        (direction == .clientToServer ? fromClient?.isHunting : fromServer?.isHunting) == true
    }

    /// The time of the delivery that held stream byte `offset`, while bytes are held; else `time`.
    private func deliveryTime(_ direction: WebSocketDirection, offset: Int, default time: Double) -> Double {
        guard let held = heldDeliveries[direction], !held.isEmpty else { return time }
        var low = 0, high = held.count  // the first delivery that ends after `offset`
        while low < high {
            let mid = (low + high) / 2
            if held[mid].end > offset { high = mid } else { low = mid + 1 }
        }
        return low < held.count ? held[low].time : time
    }

    private func feed(_ direction: WebSocketDirection, _ bytes: UnsafeRawBufferPointer, mayModify: Bool = false, time: Double,
                      sink: (any SniffRecordSink)? = nil, emit: (SniffEvent) -> Void) {
        counts.bytes(direction == .clientToServer, bytes.count)
        if !firstBytesMayContinueHead.isEmpty, firstBytesMayContinueHead.remove(direction) != nil,
           !Self.mayStartFrame(bytes, fromClient: direction == .clientToServer)
        {
            // Not a frame: the rest of a head cut short, then frames, found as after a gap.
            if direction == .clientToServer { fromClient?.beginsInsideStream() } else { fromServer?.beginsInsideStream() }
        }
        if isHunting(direction) {
            let fed = (direction == .clientToServer ? fromClient?.bytesFed : fromServer?.bytesFed) ?? 0
            var held = heldDeliveries.removeValue(forKey: direction) ?? []
            if held.count >= Self.maxHeldDeliveries { held.removeFirst(held.count / 2) }
            held.append((fed + bytes.count, time))
            heldDeliveries[direction] = held
        }
        defer { if !heldDeliveries.isEmpty, !isHunting(direction) { heldDeliveries[direction] = nil } }
        if mayModify {
            let inPlace = UnsafeMutableRawBufferPointer(mutating: bytes)
            if direction == .clientToServer {
                fromClient?.feedViews(inPlace: inPlace, { report($0, direction: .clientToServer, time: time, sink: sink, emit: emit) })
            } else {
                fromServer?.feedViews(inPlace: inPlace, { report($0, direction: .serverToClient, time: time, sink: sink, emit: emit) })
            }
        } else if direction == .clientToServer {
            fromClient?.feedViews(bytes, { report($0, direction: .clientToServer, time: time, sink: sink, emit: emit) })
        } else {
            fromServer?.feedViews(bytes, { report($0, direction: .serverToClient, time: time, sink: sink, emit: emit) })
        }
    }

    private func report(_ event: DissectionEventView, direction: WebSocketDirection, time deliveredAt: Double,
                        sink: (any SniffRecordSink)? = nil, emit: (SniffEvent) -> Void) {
        let isClient = direction == .clientToServer
        // Each event is dated by when it was completed: the delivery that held its last byte (not
        // the current one, for frames let out after a gap). The records come by pointer (see
        // `DissectionEventView`) and are read through it, not copied.
        switch event {
        case .frame(let f):
            // A length near 2^63 (a damaged or hostile header, shown as far as it came) would
            // overflow: such a last byte lies past every delivery.
            let lastByte: Int
            if let length = f.pointee.header.frameLength, case (let end, false) = f.pointee.offset.addingReportingOverflow(length) {
                lastByte = end - 1
            } else {
                lastByte = Int.max
            }
            let time = deliveryTime(direction, offset: lastByte, default: deliveredAt)
            let op = f.pointee.header.opcode
            counts.frame(isClient, op, violations: f.pointee.violations.count)
            var timing = MessageTiming()
            if op.isControl {
                // Paired by the whole payload: a ping shown cut (--max-payload) is not paired, and
                // neither is the pong that answers it, rather than with another that begins alike.
                if op == .ping, !f.pointee.payloadTruncated {
                    if pings[direction, default: [:]].count >= Self.maxPings { forgetPings(direction) }
                    let key = Array(f.pointee.payload)
                    // The same payload again: the latest ping is the one a pong answers (RFC 6455 §5.5.3).
                    if pings[direction]?[key] != nil || remember(key.count) { pings[direction, default: [:]][key] = time }
                } else if op == .pong, !f.pointee.payloadTruncated {
                    let other: WebSocketDirection = isClient ? .serverToClient : .clientToServer
                    if let sent = pings[other]?.removeValue(forKey: Array(f.pointee.payload)) {
                        timing.pingRTT = time - sent
                        forget(f.pointee.payload.count)
                    }
                }
                if op == .close, closeCode == nil { closeCode = f.pointee.close?.code?.code ?? 1005 }
            }
            // (Optional chaining, not a bound copy of the sink, which retained it for every event.)
            if sink != nil {
                sink?.frame(connection: id, direction: direction, time: time, record: f, timing: timing)
            } else {
                emit(.frame(connection: id, direction: direction, time: time, record: f.pointee, timing: timing))
            }
        case .message(let m):
            let time = deliveryTime(direction, offset: m.pointee.endOffset - 1, default: deliveredAt)
            counts.message(isClient, violations: m.pointee.violations.count)
            var timing = MessageTiming()
            // (Through the pointer: `m.envelope` is an optional copy, which even nil is destroyed
            // through its type's metadata, for every message.)
            if let cid = m.pointee.borrowedEnvelope?.pointee.correlationID, cid.utf8.count <= Self.maxCorrelationIDLength {
                // The client asks, the server replies: a server message with an id no request waits
                // with (an event of a subscription, a second reply) is neither.
                if !isClient, let (asked, empty) = requests[cid]?.takeFirst() {
                    if empty { requests[cid] = nil }
                    requestCount -= 1
                    timing.replyLatency = time - asked
                    forget(cid.utf8.count)
                } else if isClient {
                    if requestCount >= Self.maxRequests { forgetRequests() }
                    if remember(cid.utf8.count) {
                        requestCount += 1
                        if requests[cid] == nil {
                            requests[cid] = WaitingRequests(first: time)
                        } else {
                            requests[cid]!.more.append(time)
                        }
                    }
                }
            }
            // (Optional chaining, not a bound copy of the sink, which retained it for every event.)
            if sink != nil {
                sink?.message(connection: id, direction: direction, time: time, record: m, timing: timing)
            } else {
                emit(.message(connection: id, direction: direction, time: time, record: m.pointee, timing: timing))
            }
        case .resync(let r):
            let time = deliveryTime(direction, offset: r.offset ?? (r.gapEnd + r.skipped - 1), default: deliveredAt)
            emit(.resync(connection: id, direction: direction, time: time, resync: r))
        }
    }

    public func gap(from sender: TCPEndpoint, missing: Int, time: Double, bufferFull: Bool = false, emit: (SniffEvent) -> Void) {
        counts.gaps += 1
        counts.gapBytes += missing
        if bufferFull { counts.bufferFullGapBytes += missing }
        let direction: WebSocketDirection? = client.map { sender == $0 ? .clientToServer : .serverToClient }
        // On a --port whose connection's opening was captured, a loss before its first bytes:
        // nothing says HTTP will come, so the connection is taken for WebSocket from here, the
        // bytes after the gap searched for frame starts (a response head that still comes is
        // passed over).
        if phase == .awaitingRequest && onWebSocketPort && exchanges == 0 && requestBuffer.isEmpty && pendingServerBytes.isEmpty
            && clientBody == nil && responsesDue.isEmpty && handshake == nil
        {
            startWebSocket(deflate: .auto)
            lateResponsePossible = true
        }
        // A head cut short: its handshake says so, rather than a gap line.
        if let d = direction, gapInHead(d, missing: missing, time: time, emit: emit) { return }
        // Only on a connection sniff shows (WebSocket, or that asked for an upgrade).
        if phase == .webSocket || handshake != nil {
            emit(.gap(connection: id, direction: direction, missing: missing, time: time, bufferFull: bufferFull))
        }
        // The client's first bytes lost, after a response whose request the capture does not hold:
        // the request was lost with them, and the stream's offsets do not count its head. The
        // bytes after the gap are searched for frame starts from offset 0 (as for a connection
        // picked up in its middle), whether or not frames were lost too.
        if phase == .webSocket, direction == .clientToServer, requestLost, let c = fromClient, c.bytesFed == 0 {
            lateRequestPossible = false
            fromClient?.beginsInsideStream()
            return
        }
        // Step over the lost bytes: exact when they fall inside a frame's payload (see skip).
        if phase == .webSocket, let d = direction {
            counts.bytes(d == .clientToServer, missing)
            heldDeliveries[d] = nil  // bytes held for an earlier hunt are lost with this gap
            if d == .clientToServer {
                fromClient?.skipViews(missing, { report($0, direction: d, time: time, emit: emit) })
            } else {
                fromServer?.skipViews(missing, { report($0, direction: d, time: time, emit: emit) })
            }
        }
    }

    /// A gap that took the end of the upgrade request's head or of its response's, whose start
    /// lines came whole: the head is read from its whole lines, marked cut, and the connection
    /// goes on (a capture with a small snapshot length cuts every head). True if it was one.
    private func gapInHead(_ d: WebSocketDirection, missing: Int, time: Double, emit: (SniffEvent) -> Void) -> Bool {
        if d == .clientToServer, phase == .awaitingRequest, clientBody == nil, !requestBuffer.isEmpty,
           let head = HTTPHead.cutByGap(requestBuffer), head.requestLine != nil
        {
            requestBuffer = []
            requestCut = missing
            requestTentative = !head.upgradesToWebSocket
            readRequest(head, time: time)
            guard phase == .awaitingResponse, var record = handshake else { return true }
            record.requestError = "the request's end was not captured (\(missing) bytes lost): only its first \(head.headers.count) header lines are known"
            handshake = record
            replayEarlyServerBytes(time: time, emit: emit)
            return true
        }
        if d == .serverToClient, phase == .awaitingResponse, responsesDue.isEmpty, !responseBuffer.isEmpty,
           let head = HTTPHead.cutByGap(responseBuffer), let status = head.statusLine?.status, !(100..<200).contains(status) || status == 101
        {
            responseBuffer = []
            responseCut = missing
            readResponse(head, time: time, emit: emit)
            if phase == .webSocket { feedHeldClientBytes(emit: emit) }
            // A refusal cut short: its body cannot be followed to a retry.
            if phase == .awaitingRequest { phase = .notWebSocket }
            return true
        }
        return false
    }

    /// End of the connection (FIN/RST, eviction, end of capture): reports the handshake if its
    /// response never came (and the client's frames, if it sent any), then what the dissectors
    /// still hold (see `WebSocketStreamDissector.finishViews`).
    public func close(reason: String, time: Double, emit: (SniffEvent) -> Void) {
        summaryBase.lastTime = max(summaryBase.lastTime, time)
        if summaryBase.reason.isEmpty { summaryBase.reason = reason }
        if phase == .awaitingResponse && !requestTentative {
            if !pendingClientDeliveries.isEmpty {
                startWithoutResponse(time: time, emit: emit)
            } else if var h = handshake {
                h.responseError = "no response in the capture (one direction captured, or it was lost)"
                handshake = h
                emit(.handshake(h))
            }
        }
        // Frames held while looking for where they start again after a gap.
        fromClient?.finishViews({ report($0, direction: .clientToServer, time: time, emit: emit) })
        fromServer?.finishViews({ report($0, direction: .serverToClient, time: time, emit: emit) })
        // Everything pairing held goes back at once (not key by key: the maps are dropped whole).
        configuration.messageMemory?.give(pairingCharged)
        pairingCharged = 0
        pings = [:]
        requests = [:]
        requestCount = 0
        emit(.closed(summary))
    }
}
