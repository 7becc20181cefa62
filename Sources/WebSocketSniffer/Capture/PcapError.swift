/// A failure to open, filter, read or write a capture.
///
/// A struct around a kind rather than an enum, so kinds can be added without breaking callers' switches.
/// `description` is a complete sentence for the user; for missing capture permission it says how to get it.
public struct PcapError: Error, Sendable, Hashable, CustomStringConvertible {
    /// What failed.
    public struct Kind: Sendable, Hashable, CustomStringConvertible {
        private let name: String
        private init(_ name: String) { self.name = name }
        public var description: String { name }

        /// The capture file could not be opened or its file header is not pcap or pcapng.
        public static let openFile = Kind("open-file")
        /// The interface could not be opened for capture, for a reason other than the ones below.
        public static let openInterface = Kind("open-interface")
        /// The process may not capture packets (it needs root, or CAP_NET_RAW and CAP_NET_ADMIN).
        public static let permissionDenied = Kind("permission-denied")
        /// No interface has that name.
        public static let noSuchDevice = Kind("no-such-device")
        /// The interface is down.
        public static let interfaceDown = Kind("interface-down")
        /// The BPF filter expression did not compile or could not be installed.
        public static let filter = Kind("filter")
        /// Reading a packet failed: a truncated or corrupt file, or a failing interface.
        public static let read = Kind("read")
        /// Writing a capture file failed.
        public static let write = Kind("write")
    }

    public let kind: Kind
    /// libpcap's message, or ours, without the remedy.
    public let message: String
    /// For read errors: the 1-based number of the packet that could not be read (the packets before it
    /// were read fine).
    public let packetNumber: Int?
    /// For a read error in a damaged capture file: where the damage starts (the byte offset where the
    /// failed read started, just after the last good packet), nil when the file simply ends early.
    public let damagedFrom: Int64?
    /// For a read error in a damaged capture file: the byte offset of the next readable record, where
    /// the source reads on (later packets are numbered as if the failed record were one packet); nil
    /// if reading stopped here. Before `damagedFrom` when the records read just before the failure
    /// were found to be out of step: they are read again, in step.
    public let resumedAt: Int64?
    /// Packets the source returned before this error that it then found out of step (see
    /// `resumedAt`): the records are read again, in step, and these are not packets of the file.
    public let outOfStepPackets: Int

    public init(kind: Kind, message: String, packetNumber: Int? = nil, damagedFrom: Int64? = nil, resumedAt: Int64? = nil,
                outOfStepPackets: Int = 0) {
        self.kind = kind
        self.message = message
        self.packetNumber = packetNumber
        self.damagedFrom = damagedFrom
        self.resumedAt = resumedAt
        self.outOfStepPackets = outOfStepPackets
    }

    /// True when the source reads on after this error.
    public var resumes: Bool { resumedAt != nil }

    /// How to get capture permission on Linux, for the permission-denied message.
    public static let permissionRemedy =
        "run wsctl as root (sudo), or give it the capture capabilities once: sudo setcap cap_net_raw,cap_net_admin=eip $(which wsctl)"

    public var description: String {
        var text = message
        if let packetNumber { text = "packet \(packetNumber): " + text }
        if let damagedFrom {
            if let resumedAt, resumedAt >= damagedFrom {
                text += "; skipped \(resumedAt - damagedFrom) damaged bytes (from byte \(damagedFrom)), reading on at byte \(resumedAt)"
            } else if let resumedAt {
                text += "; the records read from byte \(resumedAt) to \(damagedFrom) were out of step (damage before them), reading them again from byte \(resumedAt)"
            } else {
                text += "; no readable packet after byte \(damagedFrom), the rest of the file is skipped"
            }
        }
        if kind == .permissionDenied { text += "; to capture, " + Self.permissionRemedy }
        return text
    }

    /// True if `message` is how libpcap or the kernel says permission is missing (EPERM/EACCES on the
    /// capture socket, "You don't have permission to capture on that device").
    static func looksLikePermissionProblem(_ message: String) -> Bool {
        let lower = message.lowercased()
        return lower.contains("permission") || lower.contains("operation not permitted") || lower.contains("eperm")
    }
}
