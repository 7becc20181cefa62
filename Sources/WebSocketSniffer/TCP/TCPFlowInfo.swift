/// Identifies one TCP connection for the life of a `TCPReassembler`: numbered from 1 in the order flows
/// open, never reused (a new connection on the same four-tuple gets a new ID).
public struct TCPFlowID: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let rawValue: UInt64

    public init(rawValue: UInt64) {
        self.rawValue = rawValue
    }

    public var description: String { String(rawValue) }

    public static func < (lhs: TCPFlowID, rhs: TCPFlowID) -> Bool { lhs.rawValue < rhs.rawValue }
}

/// Which way bytes travel in a flow, relative to its initiator (see `TCPFlowInfo.initiator`).
public enum TCPDirection: Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// From the initiator (the client, when the handshake was seen) to the responder.
    case initiatorToResponder
    /// From the responder (the server, when the handshake was seen) to the initiator.
    case responderToInitiator

    /// The other direction.
    public var reversed: TCPDirection {
        self == .initiatorToResponder ? .responderToInitiator : .initiatorToResponder
    }

    public var description: String { self == .initiatorToResponder ? "initiator->responder" : "responder->initiator" }
}

/// What is known about a flow when it opens.
public struct TCPFlowInfo: Sendable, Hashable {
    public let id: TCPFlowID
    /// The SYN sender when the handshake was seen (the destination of a SYN-ACK, if only that was seen);
    /// otherwise the sender of the first segment seen, which may be either side.
    public let initiator: TCPEndpoint
    /// The other endpoint.
    public let responder: TCPEndpoint
    /// True if a SYN or SYN-ACK opened the flow, so `initiator` is known to be the client.
    public let handshakeSeen: Bool
    /// Capture time of the first segment.
    public let time: Double
    /// Packet number of the first segment.
    public let packetNumber: Int

    public init(
        id: TCPFlowID, initiator: TCPEndpoint, responder: TCPEndpoint, handshakeSeen: Bool, time: Double, packetNumber: Int
    ) {
        self.id = id
        self.initiator = initiator
        self.responder = responder
        self.handshakeSeen = handshakeSeen
        self.time = time
        self.packetNumber = packetNumber
    }

    /// The client, when the handshake showed which side it is.
    public var client: TCPEndpoint? { handshakeSeen ? initiator : nil }
    /// The server, when the handshake showed which side it is.
    public var server: TCPEndpoint? { handshakeSeen ? responder : nil }
    /// IPv4 or IPv6.
    public var ipVersion: IPVersion { initiator.address.version }

    /// The sender of bytes travelling in `direction`.
    public func source(of direction: TCPDirection) -> TCPEndpoint {
        direction == .initiatorToResponder ? initiator : responder
    }

    /// The receiver of bytes travelling in `direction`.
    public func destination(of direction: TCPDirection) -> TCPEndpoint {
        direction == .initiatorToResponder ? responder : initiator
    }

    /// The direction of a segment sent by `sender`, or nil if it is not an endpoint of this flow.
    public func direction(from sender: TCPEndpoint) -> TCPDirection? {
        if sender == initiator { return .initiatorToResponder }
        if sender == responder { return .responderToInitiator }
        return nil
    }
}
