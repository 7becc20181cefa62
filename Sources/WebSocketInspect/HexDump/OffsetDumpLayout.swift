/// The fixed layout of a dump tool that prints an offset, then hex, then (often) text:
/// `00000000: 8185 4865 6c6c 6f                        ..Hello` for xxd,
/// `00000000  81 85 48 65 6c 6c 6f                             |..Hello|` for hexdump -C.
///
/// The layout says where the hex ends, so the text column is never read as bytes even when it
/// reads `deadbeef`: hex groups are one space apart, the text column starts after a wider gap
/// (or a delimiter), and the offsets say how many bytes each line holds.
struct OffsetDumpLayout: Sendable {
    var format: HexDumpFormat
    /// tcpdump writes `0x0000:`.
    var offsetPrefix = false
    /// xxd and tcpdump end the offset with a colon.
    var offsetColon = false
    /// How many digits the offset has.
    var offsetDigits: ClosedRange<Int>
    /// Spaces between the offset (and its colon) and the first hex group.
    var offsetGap: ClosedRange<Int>
    /// Hex digits per group; nil when it varies with the tool's options (xxd -g) and is taken
    /// from the first group of each line.
    var groupDigits: Int?
    /// The last group of a dump may hold fewer bytes (xxd -g2 and tcpdump with an odd length).
    var lastGroupMayBeShort = false
    /// Groups are 16-bit words printed as numbers of a little-endian machine (`hexdump`, `od -x`).
    var swapsWords = false
    /// Groups are as many spaces apart as the first group is from the offset (hexdump -x: four).
    var groupGapFollowsOffsetGap = false
    /// After this many bytes a line may have one extra space (hexdump -C's middle gap).
    var midGapAfter: Int?
    /// The character that opens the text column (`|` for hexdump -C, `>` for od).
    var textDelimiter: UInt8?
    /// A `*` line stands for repeats of the line above it.
    var allowsRepeatLines = false
    /// A line with only an offset ends the dump and gives its length.
    var allowsEndOffset = false
    /// Offset radices, most likely first; the first pair of lines decides.
    var radices: [Int] = [16]
    var maxBytesPerLine: Int
    /// For detection only: a line counts as this layout's when its offset is a multiple of 16 too
    /// (for the layouts whose signature is weakest).
    var detectionNeedsAlignedOffset = false
    /// Headers like `Frame (74 bytes):` are checked against the dump below them.
    var checksAnnouncedLength = false

    static let tcpdump: OffsetDumpLayout = {
        // print-ascii.c: "\n\t0x%04x: " then " %02x%02x" per pair, a lone " %02x" for an odd
        // last byte, padded to 40 columns, two spaces, the text.
        var layout = OffsetDumpLayout(format: .tcpdump, offsetDigits: 4...8, offsetGap: 1...3, maxBytesPerLine: 16)
        layout.offsetPrefix = true
        layout.offsetColon = true
        layout.groupDigits = 4
        layout.lastGroupMayBeShort = true
        return layout
    }()

    static let xxd: OffsetDumpLayout = {
        // "%08x: ", groups of -g bytes one space apart, padded, two spaces, the text. -c up to 256.
        var layout = OffsetDumpLayout(format: .xxd, offsetDigits: 8...16, offsetGap: 1...2, maxBytesPerLine: 256)
        layout.offsetColon = true
        layout.lastGroupMayBeShort = true
        layout.allowsRepeatLines = true
        layout.radices = [16, 10]
        return layout
    }()

    static let hexdumpCanonical: OffsetDumpLayout = {
        // "%08x  ", 8 bytes, one more space, 8 bytes, "  |text|"; "*" for repeats; the length last.
        var layout = OffsetDumpLayout(format: .hexdumpCanonical, offsetDigits: 8...16, offsetGap: 2...2, maxBytesPerLine: 16)
        layout.groupDigits = 2
        layout.midGapAfter = 8
        layout.textDelimiter = UInt8(ascii: "|")
        layout.allowsRepeatLines = true
        layout.allowsEndOffset = true
        layout.detectionNeedsAlignedOffset = true
        return layout
    }()

    static let hexdumpWords: OffsetDumpLayout = {
        // "%07x" then " %04x" per 16-bit word in the machine's byte order; od -x likewise, with
        // octal offsets unless -A x. An odd last byte is padded with 00; the final offset tells.
        // hexdump -x writes "    %04x" per word instead.
        var layout = OffsetDumpLayout(format: .hexdumpWords, offsetDigits: 6...16, offsetGap: 1...4, maxBytesPerLine: 256)
        layout.groupDigits = 4
        layout.groupGapFollowsOffsetGap = true
        layout.swapsWords = true
        layout.allowsRepeatLines = true
        layout.allowsEndOffset = true
        layout.radices = [16, 8, 10]
        return layout
    }()

    static let od: OffsetDumpLayout = {
        // od -A x -t x1z: "%06x", " %02x" per byte, "  >text<"; -A o (the default) and -A d too.
        var layout = OffsetDumpLayout(format: .od, offsetDigits: 6...16, offsetGap: 1...1, maxBytesPerLine: 256)
        layout.groupDigits = 2
        layout.textDelimiter = UInt8(ascii: ">")
        layout.allowsRepeatLines = true
        layout.allowsEndOffset = true
        layout.radices = [16, 8, 10]
        return layout
    }()

    static let wireshark: OffsetDumpLayout = {
        // tshark -x (print.c): "%04x  ", "%02x " per byte, text at column 56; Wireshark's
        // "Copy as Hex Dump": "%04x  " then " %02x" per byte, three spaces, the text. Older
        // versions add a space after the eighth byte; `--hexdump delimit` wraps the text in |.
        var layout = OffsetDumpLayout(format: .wireshark, offsetDigits: 4...8, offsetGap: 2...3, maxBytesPerLine: 16)
        layout.groupDigits = 2
        layout.midGapAfter = 8
        layout.textDelimiter = UInt8(ascii: "|")
        layout.detectionNeedsAlignedOffset = true
        layout.checksAnnouncedLength = true
        return layout
    }()

    /// Most specific first: when two layouts read a text, the first wins.
    static let detectionOrder: [OffsetDumpLayout] = [.tcpdump, .xxd, .hexdumpCanonical, .hexdumpWords, .od, .wireshark]

    static func layout(for format: HexDumpFormat) -> OffsetDumpLayout? {
        detectionOrder.first { $0.format == format }
    }
}
