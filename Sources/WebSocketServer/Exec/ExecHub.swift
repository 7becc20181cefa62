import Logging
import NIOCore
import WebSocketCodec

/// `--exec` with `--mode broadcast`: one process for the whole server. Every line it prints goes
/// to every client (encoded once); every client's text message is a line on its stdin. It starts
/// with the first connection and keeps running while clients come and go; when it exits, every
/// client is closed with 1000 and the next connection starts it again.
///
/// Threading: everything runs on `loop`.
final class ExecHub: @unchecked Sendable {
    let loop: any EventLoop
    private let supervisor: ExecSupervisor
    private let registry: ConnectionRegistry
    private let tls: Bool
    private var process: ExecProcess?
    private var batch: [ByteBuffer] = []

    init(loop: any EventLoop, supervisor: ExecSupervisor, registry: ConnectionRegistry, tls: Bool) {
        self.loop = loop
        self.supervisor = supervisor
        self.registry = registry
        self.tls = tls
    }

    /// A client connected: start the process if it is not running.
    func connectionOpened() {
        loop.execute { self.startIfNeeded() }
    }

    private func startIfNeeded() {
        guard process == nil else { return }
        let me = NIOLoopBound(self, eventLoop: loop)
        do {
            process = try ExecProcess(
                supervisor: supervisor, loop: loop,
                environment: supervisor.environment(request: nil, connectionID: nil, tls: tls), context: "broadcast",
                callbacks: .init(
                    line: { me.value.line($0) },
                    batchDone: { me.value.sendBatch() },
                    ended: { me.value.ended() },
                    stdinWritable: { _ in }))
        } catch {
            supervisor.logger.error("cannot start the --exec process", metadata: ["error": "\(error.description)"])
            closeAll(code: 1011, reason: "cannot start the process")
        }
    }

    private func line(_ line: ByteBuffer) {
        var line = line
        let text = line.withUnsafeReadableBytes { WebSocketUTF8Validator.firstInvalidIndex($0) == nil }
        let frame = line.withUnsafeReadableBytes {
            WebSocketFrameHandler.encode(opcode: text ? .text : .binary, payload: $0, rsv1: false, allocator: ByteBufferAllocator())
        }
        line.clear()
        batch.append(frame)
    }

    private func sendBatch() {
        guard !batch.isEmpty else { return }
        let frames = batch
        batch = []
        let targets = registry.snapshot()
        for f in frames { ConnectionRegistry.deliver(f, to: targets) }
    }

    private func ended() {
        guard process != nil else { return }
        sendBatch()
        process = nil
        closeAll(code: 1000, reason: "process exited")
    }

    private func closeAll(code: UInt16, reason: String) {
        for h in registry.snapshot() {
            h.eventLoop.execute { h.handler.value.scriptClose(code: code, reason: reason) }
        }
    }

    /// Server shutdown: the process gets SIGTERM (SIGKILL after 2 s).
    func terminate() {
        loop.execute {
            self.process?.terminate()
            self.process = nil
        }
    }

    /// A client's text message as a line. A process that stops reading its stdin makes the
    /// sender a slow producer: it is closed with 1008 rather than queueing without bound.
    func write(_ bytes: [UInt8], from sender: ConnectionHandle) {
        loop.execute {
            guard let process = self.process else { return }
            guard process.isStdinWritable else {
                sender.eventLoop.execute { sender.handler.value.scriptClose(code: 1008, reason: "the process is not reading its input") }
                return
            }
            bytes.withUnsafeBytes { process.writeLine($0, allocator: ByteBufferAllocator()) }
        }
    }
}
