/// The flag bits of a TCP header (RFC 9293 §3.1; NS from RFC 3540, CWR and ECE from RFC 3168).
public struct TCPFlags: OptionSet, Sendable, Hashable, CustomStringConvertible {
    public let rawValue: UInt16
    public init(rawValue: UInt16) { self.rawValue = rawValue }

    public static let fin = TCPFlags(rawValue: 0x001)
    public static let syn = TCPFlags(rawValue: 0x002)
    public static let rst = TCPFlags(rawValue: 0x004)
    public static let psh = TCPFlags(rawValue: 0x008)
    public static let ack = TCPFlags(rawValue: 0x010)
    public static let urg = TCPFlags(rawValue: 0x020)
    public static let ece = TCPFlags(rawValue: 0x040)
    public static let cwr = TCPFlags(rawValue: 0x080)
    public static let ns = TCPFlags(rawValue: 0x100)

    /// tcpdump's letters: `S` SYN, `F` FIN, `R` RST, `P` PSH, `.` ACK, `U` URG, `E` ECE, `W` CWR, `N` NS.
    public var description: String {
        let letters: [(TCPFlags, Character)] = [
            (.syn, "S"), (.fin, "F"), (.rst, "R"), (.psh, "P"), (.urg, "U"), (.ece, "E"), (.cwr, "W"), (.ns, "N"), (.ack, "."),
        ]
        let text = String(letters.compactMap { contains($0.0) ? $0.1 : nil })
        return text.isEmpty ? "none" : text
    }
}
