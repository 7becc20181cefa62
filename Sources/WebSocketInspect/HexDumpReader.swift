/// Reads WebSocket bytes the way people paste them: plain hex, byte lists and arrays, escaped
/// strings, and the dumps of xxd, hexdump, od, tcpdump and Wireshark.
///
/// Pure and I/O-free: text in, bytes out. The format is recognised from the text; an ambiguous text
/// is read as the most specific format that takes all of it, so a dump is never read as plain hex.
/// In dumps only the hex columns are read, never the text column beside them, even when it holds
/// hex digits (`|deadbeef|`): the layout and the offsets say where the hex ends, and every offset
/// must follow from the bytes before it.
///
/// ```swift
/// let dump = try HexDumpReader.read("00000000: 8105 4865 6c6c 6f  ..Hello")
/// dump.bytes   // [0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]
/// dump.format  // .xxd
/// ```
public enum HexDumpReader {
    /// The most bytes a dump may expand to through `*` lines (hexdump -C, od, xxd -a): 256 MiB.
    /// A `*` followed by a mistyped offset would otherwise ask for gigabytes; no WebSocket capture
    /// anyone pastes comes near this.
    public static let maximumExpandedBytes = 256 << 20

    /// Reads `text`, recognising its format.
    ///
    /// Dump layouts with an offset column are tried first, most specific first (tcpdump, xxd,
    /// hexdump -C, hexdump words, od, Wireshark). When a layout's lines are present but the text
    /// breaks it, its error is thrown rather than falling back to plain hex. Without such lines the
    /// formats without offsets are tried: Node Buffer, escaped string, array, 0x-list, plain hex.
    /// When every candidate fails, the error thrown is that of the dump layout that read the most
    /// lines before failing or, without dump lines, that of the most specific format detected.
    public static func read(_ text: String) throws(HexDumpError) -> HexDump {
        let dumpText = DumpText(text)
        var best: (error: HexDumpError, reached: Int)?
        for layout in OffsetDumpLayout.detectionOrder {
            let parser = OffsetDumpParser(text: dumpText, layout: layout)
            guard parser.isApplicable() else { continue }
            var reached = 0
            do throws(HexDumpError) {
                return try parser.parse(reached: &reached)
            } catch {
                // The layout that explained the most lines is the one the text was meant as.
                if best == nil || reached > best!.reached { best = (error, reached) }
            }
        }
        if let best { throw best.error }
        var first: HexDumpError?
        for format in freeFormOrder where detects(format, dumpText) {
            do throws(HexDumpError) {
                return try readFreeForm(format, dumpText)
            } catch {
                // Detection is by a strong sign (brackets, \x, <Buffer), so the first is the one meant.
                if first == nil { first = error }
            }
        }
        throw first ?? HexDumpError(code: .noBytes, line: nil, column: nil, reason: "no hex bytes found")
    }

    /// Reads `text` as `format`, whatever else it might look like.
    public static func read(_ text: String, format: HexDumpFormat) throws(HexDumpError) -> HexDump {
        let dumpText = DumpText(text)
        if let layout = OffsetDumpLayout.layout(for: format) {
            return try OffsetDumpParser(text: dumpText, layout: layout).parse()
        }
        return try readFreeForm(format, dumpText)
    }

    // MARK: Formats without offsets

    private static let freeFormOrder: [HexDumpFormat] = [.nodeBuffer, .escapedString, .array, .prefixedList, .plain]

    private static func detects(_ format: HexDumpFormat, _ text: DumpText) -> Bool {
        switch format {
        case .nodeBuffer: NodeBufferParser.detects(text)
        case .escapedString: EscapedStringParser.detects(text)
        case .array: ArrayLiteralParser.detects(text)
        case .prefixedList: hasPrefixedByte(text)
        default: true
        }
    }

    private static func readFreeForm(_ format: HexDumpFormat, _ text: DumpText) throws(HexDumpError) -> HexDump {
        switch format {
        case .nodeBuffer: try NodeBufferParser(text: text).parse()
        case .escapedString: try EscapedStringParser(text: text).parse()
        case .array: try ArrayLiteralParser(text: text).parse()
        case .prefixedList: try PrefixedListParser(text: text).parse()
        default: try PlainHexParser(text: text).parse()
        }
    }

    private static func hasPrefixedByte(_ text: DumpText) -> Bool {
        let b = text.bytes
        var i = 0
        while i + 2 < b.count {
            if b[i] == UInt8(ascii: "0"), b[i + 1] | 0x20 == UInt8(ascii: "x"), DumpText.isHexDigit(b[i + 2]) { return true }
            i += 1
        }
        return false
    }
}
