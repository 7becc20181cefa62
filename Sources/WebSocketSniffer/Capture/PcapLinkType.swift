/// The link-layer header types (libpcap's DLT_ values, as `PcapSource.linkType` reports them) that
/// `PacketDecoder` understands. See https://www.tcpdump.org/linktypes.html.
public enum PcapLinkType {
    /// DLT_NULL: BSD loopback, a 4-byte address family in the capturing host's byte order.
    public static let null: Int32 = 0
    /// DLT_EN10MB: Ethernet, possibly with 802.1Q / 802.1ad VLAN tags.
    public static let ethernet: Int32 = 1
    /// DLT_RAW on most platforms: a bare IPv4 or IPv6 packet.
    public static let raw: Int32 = 12
    /// DLT_RAW on OpenBSD.
    public static let rawOpenBSD: Int32 = 14
    /// LINKTYPE_RAW, the value files carry for raw IP; some libpcap builds hand it through unmapped.
    public static let linktypeRaw: Int32 = 101
    /// DLT_LOOP: OpenBSD loopback, the 4-byte address family in network byte order.
    public static let loop: Int32 = 108
    /// DLT_LINUX_SLL: Linux cooked capture v1, what `-i any` gives on older libpcap.
    public static let linuxSLL: Int32 = 113
    /// DLT_IPV4: a bare IPv4 packet.
    public static let ipv4: Int32 = 228
    /// DLT_IPV6: a bare IPv6 packet.
    public static let ipv6: Int32 = 229
    /// DLT_LINUX_SLL2: Linux cooked capture v2, what `-i any` gives on libpcap 1.10 and later.
    public static let linuxSLL2: Int32 = 276

    /// Every link type `PacketDecoder.decode` can handle.
    public static let supported: [Int32] = [null, ethernet, raw, rawOpenBSD, linktypeRaw, loop, linuxSLL, ipv4, ipv6, linuxSLL2]
}
