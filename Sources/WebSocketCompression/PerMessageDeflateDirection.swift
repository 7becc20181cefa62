/// How messages travelling in one direction of a connection are compressed, once negotiation is over:
/// the LZ77 window and whether it survives from one message to the next.
///
/// A connection has two, ``PerMessageDeflateParameters/serverToClient`` and
/// ``PerMessageDeflateParameters/clientToServer``, because RFC 7692 negotiates each side separately. A
/// server compresses with the first and inflates with the second, a client the other way round, and a
/// sniffer inflates with both.
public struct PerMessageDeflateDirection: Hashable, Sendable {
    /// Base-2 logarithm of the LZ77 window, 8–15 (RFC 7692 §7.1.2). 15 (32 KiB) is what the RFC
    /// assumes when nothing was negotiated, and what a sender without limits uses.
    public var windowBits: Int
    /// Whether the sender starts every message with an empty window (RFC 7692 §7.1.1), so that each
    /// message inflates on its own. Off by default, as context takeover is what the RFC assumes when
    /// nothing was negotiated.
    public var noContextTakeover: Bool

    /// - Precondition: `windowBits` is in 8...15.
    public init(windowBits: Int = 15, noContextTakeover: Bool = false) {
        precondition((8...15).contains(windowBits), "permessage-deflate window bits must be 8-15, got \(windowBits)")
        self.windowBits = windowBits
        self.noContextTakeover = noContextTakeover
    }
}
