/// The ways people paste bytes that `HexDumpReader` recognises.
///
/// `rawValue` is the spelling a command line takes (`--format xxd`); `name` is what to show a person.
public enum HexDumpFormat: String, CaseIterable, Hashable, Sendable, CustomStringConvertible {
    /// `818548656c6c6f`, `81 85 48 65`, `81:85:48`, `81-85-48`, over any number of lines.
    case plain
    /// `0x81, 0x85, 0x48` without brackets.
    case prefixedList = "0x-list"
    /// `[0x81, 0x05]`, `{0x81, 0x05}`, `Buffer.from([129, 5])`, `new Uint8Array([…])`, `xxd -i`.
    case array
    /// `b'\x81\x05Hello'`, `"\x81\x05"`, `\x81\x05Hello`.
    case escapedString = "escaped"
    /// Node.js's `console.log` of a Buffer: `<Buffer 81 05 48 65>`.
    case nodeBuffer = "node-buffer"
    /// `xxd`, any `-c`/`-g`, `-a` (`*` lines), `-s`.
    case xxd
    /// `hexdump -C` (and `hd`), with `*` lines and the final length line.
    case hexdumpCanonical = "hexdump-c"
    /// `hexdump` without options, `hexdump -x` and `od -x`: 16-bit words in little-endian byte order.
    case hexdumpWords = "hexdump-words"
    /// `od -t x1` with hex, octal or decimal offsets, with or without the `z` text column.
    case od
    /// `tcpdump -x`, `-xx`, `-X`, `-XX`: one block per packet, header lines skipped.
    case tcpdump
    /// `tshark -x` and Wireshark's "Copy as Hex Dump": one block per frame and per extra buffer
    /// (`Reassembled TCP (…)`, `Unmasked data (…)`), each labelled with its header.
    case wireshark

    /// A short human name, naming the tool that produces the layout.
    public var name: String {
        switch self {
        case .plain: "plain hex"
        case .prefixedList: "0x-prefixed byte list"
        case .array: "array literal"
        case .escapedString: "escaped string"
        case .nodeBuffer: "Node.js Buffer"
        case .xxd: "xxd"
        case .hexdumpCanonical: "hexdump -C"
        case .hexdumpWords: "hexdump / od -x (16-bit little-endian words)"
        case .od: "od -t x1"
        case .tcpdump: "tcpdump -x/-X"
        case .wireshark: "Wireshark / tshark -x"
        }
    }

    /// Whether each block is one captured packet (starting with link, IP or TCP headers) rather
    /// than a slice of a byte stream, so a caller may strip headers block by block.
    public var holdsPackets: Bool {
        self == .tcpdump || self == .wireshark
    }

    public var description: String { name }
}
