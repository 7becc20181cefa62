/// Why `PacketDecoder` did not produce a TCP segment from a packet. The sniffer counts packets by reason;
/// none of them is fatal.
public enum PacketSkipReason: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    /// The capture's link-layer type is not one `PacketDecoder` knows.
    case unsupportedLinkType = "unsupported-link-type"
    /// The packet ends inside its link-layer header (Ethernet, VLAN tag, cooked header, loopback family).
    case truncatedLinkHeader = "truncated-link-header"
    /// The link layer carries something other than IPv4 or IPv6 (ARP, LLC, MPLS, …).
    case notIP = "not-ip"
    /// The packet ends inside its IP header, or the header's lengths contradict each other.
    case malformedIPHeader = "malformed-ip-header"
    /// An IPv4 or IPv6 fragment that could not be used: its datagram never completed, was cut
    /// short by the snapshot length, or was given up at a bound (`IPFragmentReassembler` puts the
    /// others together).
    case ipFragment = "ip-fragment"
    /// An IPv6 extension header the decoder cannot walk past (ESP), or an IPv6 jumbogram.
    case unsupportedIPv6Header = "unsupported-ipv6-header"
    /// IP carrying another protocol (UDP, ICMP, …).
    case notTCP = "not-tcp"
    /// The packet ends inside its TCP header, or the TCP data offset is impossible.
    case malformedTCPHeader = "malformed-tcp-header"

    public var description: String { rawValue }
}
