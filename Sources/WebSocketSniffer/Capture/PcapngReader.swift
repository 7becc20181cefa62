#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Reads pcapng captures, files and pipes alike (libpcap reads classic pcap). libpcap 1.10 refuses
/// an Interface Description Block whose link type or snapshot length differs from the first
/// interface's (Ethernet and raw IP, say, as dumpcap writes when capturing on several interfaces at
/// once, or a second section of another capture: `cat a.pcapng b.pcapng`), and the interface
/// numbers of the packets after it then point at the wrong interfaces. Here each packet comes with
/// its own interface's link type (draft-ietf-opsawg-pcapng: Section Header, Interface Description,
/// Enhanced, Simple and the obsolete Packet Block; other blocks are passed over).
///
/// Bounded: a block is at most `maxBlockLength` bytes, a section has at most `maxInterfaces`
/// interfaces. A block that breaks the format is a `Failure` with the offset where it starts; the
/// caller searches past it (`makeResync`, `resume(at:)`), as it does libpcap's files.
final class PcapngReader {
    struct Interface {
        let linkType: Int32
        let snapshotLength: Int
        /// Timestamp units per second (if_tsresol; 10^6 when absent).
        let unitsPerSecond: UInt64
        /// Seconds added to every timestamp (if_tsoffset).
        let offsetSeconds: Int64
    }

    struct Packet {
        let linkType: Int32
        let seconds: Int64
        let nanoseconds: Int32
        let wireLength: Int
        /// Into the reader's buffer: valid until the next read.
        let data: UnsafeRawBufferPointer
    }

    struct Failure: Error {
        let message: String
        /// Where the block that failed starts.
        let offset: Int64
        /// The file ends inside the block (cut short, rather than damaged).
        var endsTheFile = false
        /// Where the block ends, when its two lengths agree and only its content is wrong: the
        /// next block starts there.
        var blockEnd: Int64? = nil
        /// The block is, or may be, a packet: its damage takes a packet number (a damaged block of
        /// a known other type, such as names or an interface, does not).
        var mayBePacket = true
    }

    /// As large as a damage search finds (`CaptureResync.maxBlock`), and half what a pipe's spool
    /// holds behind the reading, so that the start of a block that turns out damaged is still
    /// there to search from.
    static let maxBlockLength = Int(CaptureResync.maxBlock)
    static let maxInterfaces = 65_536

    private let file: UnsafeMutablePointer<FILE>
    private let fileBuffer: UnsafeMutableRawPointer?
    private var bigEndian = false
    private var interfaces: [Interface] = []
    private var body: [UInt8] = []
    private var lastSeconds: Int64 = 0
    private var lastNanoseconds: Int32 = 0
    /// Where the next block starts.
    private(set) var offset: Int64 = 0
    /// Every link type the file's interfaces have, in the order first seen.
    let linkTypes: [Int32]

    /// Opens `path` if it is a pcapng file with an interface (see `linkTypes(_:)`); nil otherwise
    /// (libpcap reads it, or says why it cannot), or if it cannot be read at all.
    init?(path: String) {
        guard let types = Self.linkTypes(path), !types.isEmpty, let f = fopen(path, "rb") else { return nil }
        file = f
        let buffer = UnsafeMutableRawPointer.allocate(byteCount: 1 << 20, alignment: 16)
        fileBuffer = buffer
        setvbuf(f, buffer.assumingMemoryBound(to: CChar.self), _IOFBF, 1 << 20)
        linkTypes = types
    }

    /// Reads a pipe's stream (`PipeSpool.open()`, taken over) of a pcapng capture; `linkTypes` are
    /// those of the interfaces described before its first packet (`linkTypes(inPipe:)`).
    init(pipe: UnsafeMutablePointer<FILE>, linkTypes: [Int32]) {
        file = pipe
        fileBuffer = nil
        self.linkTypes = linkTypes
    }

    deinit {
        fclose(file)
        fileBuffer?.deallocate()
    }

    /// A search for where blocks start again after damage; nil if the file cannot be searched.
    func makeResync() -> CaptureResync? {
        CaptureResync(file: file)
    }

    /// For a capture arriving on a pipe: nil unless it is pcapng; else the link types of the
    /// interfaces described before its first packet block (looked at as they come, within the
    /// spool's window), where writers describe their interfaces (dumpcap capturing on several at
    /// once does). Interfaces described later are read as they come.
    static func linkTypes(inPipe spool: PipeSpool) -> [Int32]? {
        // Within the spool's window: blocks before the first packet are held until it is read.
        scanLinkTypes(untilFirstPacket: true) { at in
            at + 16 > spool.maxHeld ? [] : spool.bytes(at: at, count: 16).map { ArraySlice($0) } ?? []
        }
    }

    /// Reads on from `position`, where a search found a block to start.
    /// - Parameter newSectionBigEndian: the reading goes on in a section of this byte order
    ///   whose header was lost: with no interfaces but those it describes from here.
    func resume(at position: Int64, newSectionBigEndian: Bool? = nil) -> Bool {
        guard fseeko(file, off_t(position), SEEK_SET) == 0 else { return false }
        clearerr(file)
        offset = position
        if let newSectionBigEndian {
            bigEndian = newSectionBigEndian
            interfaces = []
        }
        return true
    }

    /// The link types of the interfaces of a pcapng file, as far as its blocks can be followed (up
    /// to damage: interfaces described after it are read as they come); nil if it is not pcapng.
    /// Every pcapng file is read here, not by libpcap: libpcap 1.10 refuses an interface whose
    /// link type or snapshot length differs from the file's first interface's (in any section:
    /// dumpcap on several interfaces at once, or `cat a.pcapng b.pcapng`), or a section in the
    /// other byte order than the first, and a damaged block before such a section hid it from this
    /// scan. Reads only block headers, through a 1 MiB window (a block that does not fit is seeked
    /// past): about one read per MiB of small packets.
    static func linkTypes(_ path: String) -> [Int32]? {
        guard let f = fopen(path, "rb") else { return nil }
        defer { fclose(f) }
        // Not a section header block: not pcapng, known without the scan's 1 MiB window (a
        // megabyte read, and its fresh pages, for every pcap file).
        var type: UInt32 = 0
        guard fread(&type, 1, 4, f) == 4, type == 0x0A0D_0D0A else { return nil }
        return scanLinkTypes(untilFirstPacket: false, fileWindow(f))
    }

    /// Bytes of `f` read through a 1 MiB window: the 16 at an offset, fewer at the end of the file.
    private static func fileWindow(_ f: UnsafeMutablePointer<FILE>) -> (Int64) -> ArraySlice<UInt8> {
        let windowSize = 1 << 20
        var window = [UInt8](repeating: 0, count: windowSize)
        var windowStart: Int64 = 0
        var windowCount = 0
        /// The 16 bytes at `at` (fewer at the end of the file).
        func header(at: Int64) -> ArraySlice<UInt8> {
            if at < windowStart || at + 16 > windowStart + Int64(windowCount) {
                guard fseeko(f, off_t(at), SEEK_SET) == 0 else { return [] }
                windowStart = at
                windowCount = fread(&window, 1, windowSize, f)
            }
            let i = Int(at - windowStart)
            return window[i..<min(i + 16, windowCount)]
        }
        return header
    }

    /// The scan of `linkTypes`, over the 16 bytes (fewer at the end) that `header` gives at each
    /// block's offset: nil if the capture is not pcapng, else the link types of its interfaces, in
    /// the order first seen.
    private static func scanLinkTypes(untilFirstPacket: Bool, _ header: (Int64) -> ArraySlice<UInt8>) -> [Int32]? {
        var bigEndian = false
        var all: [Int32] = []
        var at: Int64 = 0
        while true {
            let h: [UInt8] = Array(header(at))
            guard h.count >= 12 else { break }
            let type = UInt32(h[0]) | UInt32(h[1]) << 8 | UInt32(h[2]) << 16 | UInt32(h[3]) << 24
            if type == 0x0A0D_0D0A {
                if h[8] == 0x1A && h[9] == 0x2B && h[10] == 0x3C && h[11] == 0x4D {
                    bigEndian = true
                } else if h[8] == 0x4D && h[9] == 0x3C && h[10] == 0x2B && h[11] == 0x1A {
                    bigEndian = false
                } else {
                    if at == 0 { return nil }
                    break  // damage: the reading will say so
                }
            } else if at == 0 {
                return nil  // not pcapng
            }
            let length = Int(Self.u32(h, 4, bigEndian))
            guard length >= 12, length % 4 == 0, length <= maxBlockLength else { break }
            let blockType = bigEndian ? type.byteSwapped : type
            // Enhanced, simple and obsolete packet blocks.
            if untilFirstPacket && (blockType == 6 || blockType == 3 || blockType == 2) { break }
            if blockType == 1 && h.count >= 16 {
                let linkType = dlt(Int32(Self.u16(h, 8, bigEndian)))
                if !all.contains(linkType) { all.append(linkType) }
            }
            at += Int64(length)
        }
        return all
    }

    /// The DLT_ value libpcap (and `PacketDecoder`) use for a file's LINKTYPE_ value: the same
    /// number but for raw IP (LINKTYPE_RAW 101 is DLT_RAW 12 here).
    static func dlt(_ linkType: Int32) -> Int32 {
        linkType == PcapLinkType.linktypeRaw ? PcapLinkType.raw : linkType
    }

    static func u16(_ b: [UInt8], _ i: Int, _ big: Bool) -> UInt16 {
        big ? UInt16(b[i]) << 8 | UInt16(b[i + 1]) : UInt16(b[i]) | UInt16(b[i + 1]) << 8
    }

    static func u32(_ b: [UInt8], _ i: Int, _ big: Bool) -> UInt32 {
        big ? UInt32(b[i]) << 24 | UInt32(b[i + 1]) << 16 | UInt32(b[i + 2]) << 8 | UInt32(b[i + 3])
            : UInt32(b[i]) | UInt32(b[i + 1]) << 8 | UInt32(b[i + 2]) << 16 | UInt32(b[i + 3]) << 24
    }

    /// The byte order of the section being read.
    var sectionIsBigEndian: Bool { bigEndian }

    /// The next packet; nil at the end of the file.
    func next() throws(Failure) -> Packet? {
        while true {
            let start = offset
            var head = [UInt8](repeating: 0, count: 8)
            let got = fread(&head, 1, 8, file)
            if got == 0 && feof(file) != 0 { return nil }
            guard got == 8 else { throw Failure(message: "the file ends inside a block header", offset: start, endsTheFile: true) }
            let type = UInt32(head[0]) | UInt32(head[1]) << 8 | UInt32(head[2]) << 16 | UInt32(head[3]) << 24
            if type == 0x0A0D_0D0A {
                // A new section: the interfaces before it are not its, whatever else is wrong with it.
                interfaces = []
                var magic = [UInt8](repeating: 0, count: 4)
                guard fread(&magic, 1, 4, file) == 4 else {
                    throw Failure(message: "the file ends inside a section header", offset: start, endsTheFile: true, mayBePacket: false)
                }
                guard fseeko(file, off_t(start + 4), SEEK_SET) == 0 else { throw Failure(message: "cannot seek", offset: start) }
                let big = magic == [0x1A, 0x2B, 0x3C, 0x4D]
                guard big || magic == [0x4D, 0x3C, 0x2B, 0x1A] else {
                    throw Failure(message: "section header with an unknown byte-order magic", offset: start, mayBePacket: false)
                }
                bigEndian = big
                head = [UInt8](repeating: 0, count: 8)
                _ = fread(&head, 1, 4, file)  // the length again, now read in the section's byte order
                head = [0, 0, 0, 0] + Array(head[0..<4])
            }
            let swappedType = bigEndian ? type.byteSwapped : type
            // A block of a known type that is not a packet (section, interface, names, statistics,
            // secrets, custom) takes no packet number when it is damaged.
            let mayBePacket = swappedType == 2 || swappedType == 3 || swappedType == 6 || !CaptureResync.knownBlockTypes.contains(swappedType)
            let length = Int(Self.u32(head, 4, bigEndian))
            guard length >= 12, length % 4 == 0, length <= Self.maxBlockLength else {
                throw Failure(message: "block of type \(type) with length \(length) (at least 12, a multiple of 4, at most \(Self.maxBlockLength))",
                              offset: start, mayBePacket: mayBePacket)
            }
            let bodyLength = length - 12
            if body.count < bodyLength + 4 { body = [UInt8](repeating: 0, count: bodyLength + 4) }
            guard fread(&body, 1, bodyLength + 4, file) == bodyLength + 4 else {
                throw Failure(message: "the file ends inside a block of \(length) bytes", offset: start, endsTheFile: feof(file) != 0, mayBePacket: mayBePacket)
            }
            guard Self.u32(body, bodyLength, bigEndian) == UInt32(length) else {
                throw Failure(message: "block of type \(type): its trailing length differs from its leading one", offset: start, mayBePacket: mayBePacket)
            }
            offset = start + Int64(length)
            switch swappedType {
            case 0x0A0D_0D0A:
                continue
            case 1:
                guard bodyLength >= 8 else { throw Failure(message: "interface description block too short", offset: start, blockEnd: offset, mayBePacket: false) }
                guard interfaces.count < Self.maxInterfaces else { throw Failure(message: "more than \(Self.maxInterfaces) interfaces", offset: start, blockEnd: offset, mayBePacket: false) }
                let (i, error) = interface(bodyLength)
                interfaces.append(i)
                if let error {
                    throw Failure(message: "interface description block: \(error.why) (the interface is kept, with its link type and the options before)",
                                  offset: start, blockEnd: offset, mayBePacket: false)
                }
            case 6, 2:
                // Enhanced Packet Block: interface (32 bits), timestamp (64), captured and original
                // lengths; the obsolete Packet Block: interface and drops (16 each), the same after.
                guard bodyLength >= 20 else { throw Failure(message: "packet block too short", offset: start, blockEnd: offset) }
                let index = swappedType == 6 ? Int(Self.u32(body, 0, bigEndian)) : Int(Self.u16(body, 0, bigEndian))
                guard index < interfaces.count else {
                    throw Failure(message: "packet of interface \(index), which has no description block", offset: start, blockEnd: offset)
                }
                let captured = Int(Self.u32(body, 12, bigEndian))
                guard captured <= bodyLength - 20 else {
                    throw Failure(message: "packet block claims \(captured) captured bytes in \(bodyLength - 20)", offset: start, blockEnd: offset)
                }
                let units = UInt64(Self.u32(body, 4, bigEndian)) << 32 | UInt64(Self.u32(body, 8, bigEndian))
                (lastSeconds, lastNanoseconds) = Self.time(units, interfaces[index])
                return packet(interfaces[index], captured: captured, wire: Int(Self.u32(body, 16, bigEndian)), at: 20)
            case 3:
                // Simple Packet Block: interface 0, no timestamp (the last one is kept).
                guard bodyLength >= 4, let first = interfaces.first else {
                    throw Failure(message: "simple packet block without an interface or too short", offset: start, blockEnd: offset)
                }
                // Its captured length is the original's, or the interface's snapshot length if smaller.
                let wire = Int(Self.u32(body, 0, bigEndian))
                let captured = first.snapshotLength > 0 ? min(wire, first.snapshotLength) : wire
                guard captured <= bodyLength - 4 else {
                    throw Failure(message: "simple packet block holds \(bodyLength - 4) bytes, not the \(captured) it implies", offset: start, blockEnd: offset)
                }
                return packet(first, captured: captured, wire: wire, at: 4)
            default:
                continue
            }
        }
    }

    private func packet(_ i: Interface, captured: Int, wire: Int, at: Int) -> Packet {
        body.withUnsafeBytes { raw in
            Packet(linkType: i.linkType, seconds: lastSeconds, nanoseconds: lastNanoseconds, wireLength: max(wire, captured),
                   data: UnsafeRawBufferPointer(rebasing: raw[at..<(at + captured)]))
        }
    }

    /// An Interface Description Block's body (already read): link type, snapshot length, and the
    /// if_tsresol and if_tsoffset options.
    /// A damaged option does not cost the interface (its packets would all be lost): it keeps
    /// its link type, snapshot length and the options before it, and the error is said.
    private func interface(_ bodyLength: Int) -> (Interface, InterfaceError?) {
        let linkType = Self.dlt(Int32(Self.u16(body, 0, bigEndian)))
        let snap = Int(Self.u32(body, 4, bigEndian))
        var units: UInt64 = 1_000_000
        var resolutionSeen = false
        var offsetSeconds: Int64 = 0
        var i = 8
        while i + 4 <= bodyLength {
            let code = Self.u16(body, i, bigEndian)
            let length = Int(Self.u16(body, i + 2, bigEndian))
            let value = i + 4
            if code == 0 { break }  // opt_endofopt
            guard value + length <= bodyLength else { return (interface(), InterfaceError("option \(code) runs past the block's end")) }
            if code == 9 && length >= 1 && !resolutionSeen {
                // if_tsresol (the first one): 10^-v, or 2^-v with the top bit set; finer than 10^-19
                // or 2^-63 does not fit 64 bits.
                resolutionSeen = true
                let v = body[value]
                if v & 0x80 != 0 {
                    let e = Int(v & 0x7F)
                    guard e < 64 else { return (interface(), InterfaceError("timestamp resolution 2^-\(e) is finer than 64 bits hold")) }
                    units = 1 << UInt64(e)
                } else {
                    guard v <= 19 else { return (interface(), InterfaceError("timestamp resolution 10^-\(v) is finer than 64 bits hold")) }
                    units = (0..<Int(v)).reduce(1) { r, _ in r * 10 }
                }
            } else if code == 14 && length >= 8 {
                let high = UInt64(Self.u32(body, bigEndian ? value : value + 4, bigEndian))
                let low = UInt64(Self.u32(body, bigEndian ? value + 4 : value, bigEndian))
                offsetSeconds = Int64(bitPattern: high << 32 | low)
            }
            i = value + (length + 3) / 4 * 4
        }
        return (interface(), nil)
        func interface() -> Interface { Interface(linkType: linkType, snapshotLength: snap, unitsPerSecond: units, offsetSeconds: offsetSeconds) }
    }

    struct InterfaceError: Error {
        let why: String
        init(_ why: String) { self.why = why }
    }

    /// A timestamp in the interface's units as seconds and nanoseconds.
    static func time(_ units: UInt64, _ i: Interface) -> (Int64, Int32) {
        let seconds = units / i.unitsPerSecond
        let fraction = units % i.unitsPerSecond
        let product = fraction.multipliedFullWidth(by: 1_000_000_000)
        let nanoseconds = i.unitsPerSecond.dividingFullWidth(product).quotient
        return (Int64(clamping: seconds) &+ i.offsetSeconds, Int32(nanoseconds))
    }
}
