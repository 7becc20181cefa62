import NIOCore
import WebSocketCodec

/// What the server hands a script (`serve --script`; the Lua host in WebSocketScripting is one).
///
/// Threading: the server calls `opened`, `message`, `closed` and `reload` on `loop` only, one at a
/// time; a connection's events keep their order. The script answers through `ScriptConnection`.
public protocol ServerScript: AnyObject, Sendable {
    /// The event loop the script runs on.
    var loop: any EventLoop { get }
    /// Whether messages go to the script (`message`) rather than to the `--mode` behaviour. Read from
    /// any thread.
    var handlesMessages: Bool { get }
    func opened(_ connection: ScriptConnection, request: ScriptRequest)
    /// A complete, valid data message (inflated, UTF-8 checked for text, within the limits).
    func message(connectionID: String, binary: Bool, payload: UnsafeRawBufferPointer)
    func closed(connectionID: String, code: UInt16, reason: String)
    /// SIGHUP.
    func reload()
}

/// Makes the server's script on the loop it will run on (called once, from `WebSocketServer.init`).
public typealias ServerScriptFactory = @Sendable (any EventLoop) throws -> any ServerScript

/// What a script sees of the upgrade request.
public struct ScriptRequest: Sendable {
    public var path: String
    /// The query string without `?` (may be empty).
    public var query: String
    public var headers: [(name: String, value: String)]
    /// "ip:port", "[v6]:port".
    public var remote: String
    public var subprotocol: String?

    public init(path: String, query: String, headers: [(name: String, value: String)], remote: String, subprotocol: String?) {
        self.path = path
        self.query = query
        self.headers = headers
        self.remote = remote
        self.subprotocol = subprotocol
    }
}

/// A connection as a script reaches it. `send`, `sendRaw`, `close`, `markWritten` and `flush` must
/// be called on `eventLoop` (check `isOnCurrentLoop`; otherwise hop with `eventLoop.execute`).
public struct ScriptConnection: Sendable {
    let handle: ConnectionHandle

    public var id: String { handle.id }
    public var eventLoop: any EventLoop { handle.eventLoop }
    public var isOnCurrentLoop: Bool { handle.eventLoop.inEventLoop }

    /// Queues a message (compressed when the client negotiated permessage-deflate); false when the
    /// connection is not open. Written by `flush`, or with the reply to the read in progress.
    public func send(opcode: WebSocketOpcode, payload: UnsafeRawBufferPointer) -> Bool {
        handle.handler.value.scriptSend(opcode: opcode, payload: payload)
    }

    /// Bytes onto the TCP stream as they are (for breaking the protocol on purpose).
    public func sendRaw(_ bytes: UnsafeRawBufferPointer) -> Bool {
        handle.handler.value.scriptSendRaw(bytes)
    }

    /// Starts the close handshake with `code` (nothing if it has begun).
    public func close(code: UInt16, reason: String) {
        handle.handler.value.scriptClose(code: code, reason: reason)
    }

    /// True the first time after a flush: the caller then owes this connection a `flush()`.
    public func markWritten() -> Bool {
        let h = handle.handler.value
        if h.scriptDirty { return false }
        h.scriptDirty = true
        return true
    }

    /// Writes what was queued, unless the connection is inside a read (which writes it at its end).
    public func flush() {
        handle.handler.value.flushScriptOutput()
    }
}
