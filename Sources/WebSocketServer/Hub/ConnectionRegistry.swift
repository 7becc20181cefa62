import NIOCore
import Synchronization

/// A connection as other threads see it: its id and a way to run code on its event loop.
struct ConnectionHandle: Sendable {
    let id: String
    let handler: NIOLoopBound<WebSocketFrameHandler>
    var eventLoop: any EventLoop { handler.eventLoop }
}

/// Every open WebSocket connection, for broadcast and rooms. A mutex guards the table; sending
/// happens on each connection's own event loop, one hop per loop, never under the lock.
final class ConnectionRegistry: Sendable {
    private let table = Mutex<[String: ConnectionHandle]>([:])

    func add(_ handle: ConnectionHandle) { table.withLock { $0[handle.id] = handle } }
    func remove(id: String) { _ = table.withLock { $0.removeValue(forKey: id) } }
    var count: Int { table.withLock { $0.count } }
    func snapshot() -> [ConnectionHandle] { table.withLock { Array($0.values) } }
    func handles(for ids: [String]) -> [ConnectionHandle] {
        table.withLock { t in ids.compactMap { t[$0] } }
    }

    /// Writes the same encoded frame to each connection: grouped by event loop so that each loop
    /// is entered once, and the bytes are shared (ByteBuffer is copy-on-write, never copied here).
    static func deliver(_ frame: ByteBuffer, to handles: [ConnectionHandle], messages: Int = 1) {
        var byLoop: [ObjectIdentifier: (loop: any EventLoop, targets: [NIOLoopBound<WebSocketFrameHandler>])] = [:]
        for h in handles {
            let key = ObjectIdentifier(h.eventLoop)
            byLoop[key, default: (h.eventLoop, [])].targets.append(h.handler)
        }
        for (_, group) in byLoop {
            let targets = group.targets
            if group.loop.inEventLoop {
                for t in targets { t.value.deliver(frame) }
            } else {
                group.loop.execute {
                    for t in targets { t.value.deliver(frame) }
                }
            }
        }
    }
}
