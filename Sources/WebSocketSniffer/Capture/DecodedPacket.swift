/// A TCP segment found in a captured packet, with the IP and TCP header fields the reassembler and the
/// sniffer's output need. The payload is not copied: `payloadRange` locates it in the packet's bytes.
public struct DecodedPacket: Sendable, Hashable {
    public var ipVersion: IPVersion
    public var source: IPAddress
    public var destination: IPAddress
    public var sourcePort: UInt16
    public var destinationPort: UInt16
    public var sequenceNumber: UInt32
    public var acknowledgmentNumber: UInt32
    public var flags: TCPFlags
    public var window: UInt16
    /// The TCP payload within the bytes given to `PacketDecoder.decode`. It ends where the IP header's length
    /// says the packet ends, so Ethernet padding and trailers are excluded.
    public var payloadRange: Range<Int>
    /// Payload bytes the IP header announces but the capture does not hold, because the snapshot length cut
    /// the packet short. They occupy sequence space, so the reassembler reports them as a gap.
    public var uncapturedPayloadLength: Int
    /// The innermost 802.1Q / 802.1ad VLAN ID, if the frame was tagged.
    public var vlanID: UInt16?

    public init(
        ipVersion: IPVersion, source: IPAddress, destination: IPAddress, sourcePort: UInt16, destinationPort: UInt16,
        sequenceNumber: UInt32, acknowledgmentNumber: UInt32, flags: TCPFlags, window: UInt16,
        payloadRange: Range<Int>, uncapturedPayloadLength: Int = 0, vlanID: UInt16? = nil
    ) {
        self.ipVersion = ipVersion
        self.source = source
        self.destination = destination
        self.sourcePort = sourcePort
        self.destinationPort = destinationPort
        self.sequenceNumber = sequenceNumber
        self.acknowledgmentNumber = acknowledgmentNumber
        self.flags = flags
        self.window = window
        self.payloadRange = payloadRange
        self.uncapturedPayloadLength = uncapturedPayloadLength
        self.vlanID = vlanID
    }

    /// The sender.
    public var sourceEndpoint: TCPEndpoint { TCPEndpoint(address: source, port: sourcePort) }
    /// The receiver.
    public var destinationEndpoint: TCPEndpoint { TCPEndpoint(address: destination, port: destinationPort) }
    /// The payload length the IP header announces: captured plus uncaptured bytes.
    public var payloadLength: Int { payloadRange.count + uncapturedPayloadLength }
}

/// What `PacketDecoder.decode` found in a packet.
public enum PacketDecodeResult: Sendable, Hashable {
    /// A TCP segment.
    case tcp(DecodedPacket)
    /// Not a TCP segment the decoder can use, and why.
    case skipped(PacketSkipReason)

    /// The segment, or nil when skipped.
    public var packet: DecodedPacket? {
        if case .tcp(let p) = self { return p }
        return nil
    }

    /// The reason, or nil when a segment was found.
    public var skipReason: PacketSkipReason? {
        if case .skipped(let r) = self { return r }
        return nil
    }
}
