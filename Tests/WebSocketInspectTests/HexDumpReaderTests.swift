import Testing
import WebSocketInspect

/// One pasted text and what it must read as.
struct HexDumpSample: Sendable, CustomTestStringConvertible {
    var name: String
    var text: String
    var format: HexDumpFormat
    var bytes: [UInt8]
    var blockCount = 1

    var testDescription: String { name }
}

/// One text that must fail, and the exact message.
struct HexDumpFailure: Sendable, CustomTestStringConvertible {
    var name: String
    var text: String
    var format: HexDumpFormat?
    var message: String
    var code: HexDumpError.Code

    var testDescription: String { name }
}

@Suite("HexDumpReader")
struct HexDumpReaderTests {
    // MARK: Fixtures

    /// Decodes "81 05 48" for expectations, independently of the reader under test.
    static func hex(_ text: String) -> [UInt8] {
        let digits = text.unicodeScalars.filter { $0.properties.isASCIIHexDigit }.map { UInt8($0.value) }
        precondition(digits.count % 2 == 0)
        func value(_ c: UInt8) -> UInt8 { c <= 0x39 ? c - 0x30 : (c | 0x20) - 0x61 + 10 }
        return stride(from: 0, to: digits.count, by: 2).map { value(digits[$0]) << 4 | value(digits[$0 + 1]) }
    }

    /// RFC 6455 §5.7: a single-frame masked text message, "Hello".
    static let maskedHello = hex("81 85 37 fa 21 3d 7f 9f 4d 51 58")
    /// RFC 6455 §5.7: a single-frame unmasked text message, "Hello".
    static let hello = hex("81 05 48 65 6c 6c 6f")
    /// An unmasked 38-byte text frame whose payload is all hex digits: the text column of every dump
    /// of it reads `deadbeefcafeba…`, which must never come back as bytes.
    static let deadbeef: [UInt8] = [0x81, 0x26] + Array("deadbeefcafebabe0123456789abcdef001122".utf8)
    /// A binary frame claiming a 16-bit length of 128, all zeros: dumps print most of it as `*`.
    static let zeros = hex("82 7e 00 80") + [UInt8](repeating: 0, count: 128)
    /// IPv4 + TCP (timestamps) on loopback, client to server, carrying `maskedHello`.
    static let packet1 = hex("4500003f1c464000400620717f0000017f000001d4311f90000f4241001e848180180200bc3500000101080a0000000b00000008") + maskedHello
    /// The server's reply carrying `hello`.
    static let packet2 = hex("4500003b1c474000400620747f0000017f0000011f90d431001e8481000f424c80180200170300000101080a0000000c00000009") + hello
    /// The Ethernet header Linux puts on loopback captures.
    static let ethernet = [UInt8](repeating: 0, count: 12) + [0x08, 0x00]

    // MARK: Samples, one per format and tool option

    static let formatSamples: [HexDumpSample] = [
        HexDumpSample(name: "plain", text: "810548656c6c6f", format: .plain, bytes: hello),
        HexDumpSample(name: "plain, spaced", text: "81 05 48 65 6c 6c 6f", format: .plain, bytes: hello),
        HexDumpSample(name: "plain, colons, upper case", text: "81:05:48:65:6C:6C:6F", format: .plain, bytes: hello),
        HexDumpSample(name: "plain, dashes (.NET)", text: "81-05-48-65-6C-6C-6F", format: .plain, bytes: hello),
        HexDumpSample(name: "plain, 0x prefix on the whole", text: "0x810548656c6c6f\n", format: .plain, bytes: hello),
        HexDumpSample(name: "plain, 16-bit groups", text: "8185 37fa 213d 7f9f 4d51 58", format: .plain, bytes: maskedHello),
        HexDumpSample(
            name: "plain, odd whitespace over lines",
            text: "\t81 85  37FA \r\n   21\u{00A0}3d\u{2009}7f 9f\n4d5158   \n\n\n",
            format: .plain, bytes: maskedHello),
        HexDumpSample(name: "plain, in a markdown code block", text: "```\n81 85 37 fa 21 3d 7f 9f 4d 51 58\n```\n", format: .plain, bytes: maskedHello),
        HexDumpSample(name: "0x list", text: "0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f", format: .prefixedList, bytes: hello),
        HexDumpSample(name: "0x list, no commas, short items, lines", text: "0x81 0x5\n0X48 0x65 0x6C 0x6C 0x6F,\n", format: .prefixedList, bytes: hello),
        HexDumpSample(name: "JS array", text: "[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]", format: .array, bytes: hello),
        HexDumpSample(name: "C array", text: "{0x81,0x05,0x48,0x65,0x6c,0x6c,0x6f}", format: .array, bytes: hello),
        HexDumpSample(
            name: "C declaration",
            text: "static const uint8_t frame[7] = { 0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f };",
            format: .array, bytes: hello),
        HexDumpSample(
            name: "xxd -i",
            text: """
                unsigned char hello_bin[] = {
                  0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f
                };
                unsigned int hello_bin_len = 7;

                """,
            format: .array, bytes: hello),
        HexDumpSample(name: "Buffer.from, decimal", text: "Buffer.from([129, 5, 72, 101, 108, 108, 111])", format: .array, bytes: hello),
        HexDumpSample(
            name: "new Uint8Array, mixed",
            text: "const frame = new Uint8Array([0x81, 133, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 77, 81, 88]);",
            format: .array, bytes: maskedHello),
        HexDumpSample(name: "Python list", text: "bytes([129, 5, 72, 101, 108, 108, 111])", format: .array, bytes: hello),
        HexDumpSample(name: "Java Arrays.toString (signed)", text: "[-127, 5, 72, 101, 108, 108, 111]", format: .array, bytes: hello),
        HexDumpSample(name: "Java casts", text: "byte[] frame = new byte[]{(byte) 0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f};", format: .array, bytes: hello),
        HexDumpSample(name: "Go %v", text: "[129 5 72 101 108 108 111]", format: .array, bytes: hello),
        HexDumpSample(name: "Go literal with runes", text: "[]byte{0x81, 0x05, 'H', 'e', 'l', 'l', 'o'}", format: .array, bytes: hello),
        HexDumpSample(name: "Swift literal", text: "let frame: [UInt8] = [0x81, 0x05, 0x48, 0x65, 0x6C, 0x6C, 0x6F]", format: .array, bytes: hello),
        HexDumpSample(name: "C array with an escaped character", text: #"{'\x81', 0x05, 'H', 'e', 'l', 'l', 'o'}"#, format: .array, bytes: hello),
        HexDumpSample(name: "Rust vec! with suffix", text: "vec![0x81u8, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]", format: .array, bytes: hello),
        HexDumpSample(
            name: "arrays, one block each",
            text: "[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]\n[0x81, 0x85, 0x37, 0xfa, 0x21, 0x3d, 0x7f, 0x9f, 0x4d, 0x51, 0x58]",
            format: .array, bytes: hello + maskedHello, blockCount: 2),
        HexDumpSample(
            name: "arrays side by side",
            text: "[0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f]  [129, 133, 55, 250, 33, 61, 127, 159, 77, 81, 88]",
            format: .array, bytes: hello + maskedHello, blockCount: 2),
        HexDumpSample(name: "Go array type", text: "frame := [7]byte{0x81, 0x05, 0x48, 0x65, 0x6c, 0x6c, 0x6f}", format: .array, bytes: hello),
        HexDumpSample(name: "Python bytes", text: #"b'\x81\x05Hello'"#, format: .escapedString, bytes: hello),
        HexDumpSample(name: "Python bytes repr", text: #"b'\x81\x857\xfa!=\x7f\x9fMQX'"#, format: .escapedString, bytes: maskedHello),
        HexDumpSample(name: "JS string", text: #"ws._socket.write("\x81\x05Hello");"#, format: .escapedString, bytes: hello),
        HexDumpSample(name: "bare escapes (printf)", text: #"\x81\x05Hello"#, format: .escapedString, bytes: hello),
        HexDumpSample(name: "bare escapes in a markdown code block", text: "```\n\\x81\\x05Hello\n```", format: .escapedString, bytes: hello),
        HexDumpSample(name: "bash $''", text: #"printf $'\x81\x05Hell\157' | nc localhost 8080"#, format: .escapedString, bytes: hello),
        HexDumpSample(name: "Python implicit concatenation", text: "frame = (b'\\x81\\x05'\n         b'Hello')", format: .escapedString, bytes: hello),
        HexDumpSample(
            name: "Wireshark Copy as Escaped String",
            text: #"""
                "\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x08\x00\x45\x00" \
                "\x00\x3b\x1c\x47\x40\x00\x40\x06\x20\x74\x7f\x00\x00\x01\x7f\x00" \
                "\x00\x01\x1f\x90\xd4\x31\x00\x1e\x84\x81\x00\x0f\x42\x4c\x80\x18" \
                "\x02\x00\x17\x03\x00\x00\x01\x01\x08\x0a\x00\x00\x00\x0c\x00\x00" \
                "\x00\x09\x81\x05\x48\x65\x6c\x6c\x6f"
                """#,
            format: .escapedString, bytes: ethernet + packet2),
        HexDumpSample(name: "Node.js Buffer", text: "<Buffer 81 05 48 65 6c 6c 6f>", format: .nodeBuffer, bytes: hello),
        // printf '\x81\x85\x37\xfa\x21\x3d\x7f\x9f\x4d\x51\x58' > masked.bin, then each tool on it.
        HexDumpSample(
            name: "xxd",
            text: "00000000: 8185 37fa 213d 7f9f 4d51 58              ..7.!=..MQX\n",
            format: .xxd, bytes: maskedHello),
        HexDumpSample(
            name: "xxd -g1",
            text: "00000000: 81 85 37 fa 21 3d 7f 9f 4d 51 58                 ..7.!=..MQX\n",
            format: .xxd, bytes: maskedHello),
        HexDumpSample(
            name: "xxd -u -g1",
            text: "00000000: 81 85 37 FA 21 3D 7F 9F 4D 51 58                 ..7.!=..MQX\n",
            format: .xxd, bytes: maskedHello),
        HexDumpSample(
            name: "xxd -c 8",
            text: """
                00000000: 8185 37fa 213d 7f9f  ..7.!=..
                00000008: 4d51 58              MQX

                """,
            format: .xxd, bytes: maskedHello),
        HexDumpSample(
            name: "xxd -c 4 -s 2 (starts at an offset)",
            text: """
                00000002: 4865 6c6c  Hell
                00000006: 6f         o
                """,
            format: .xxd, bytes: Array(hello[2...])),
        HexDumpSample(
            name: "hexdump -C",
            text: """
                00000000  81 85 37 fa 21 3d 7f 9f  4d 51 58                 |..7.!=..MQX|
                0000000b

                """,
            format: .hexdumpCanonical, bytes: maskedHello),
        HexDumpSample(
            name: "hexdump (words)",
            text: """
                0000000 8581 fa37 3d21 9f7f 514d 0058          
                000000b

                """,
            format: .hexdumpWords, bytes: maskedHello),
        HexDumpSample(
            name: "hexdump -x",
            text: """
                0000000    8581    fa37    3d21    9f7f    514d    0058                
                000000b

                """,
            format: .hexdumpWords, bytes: maskedHello),
        HexDumpSample(
            name: "hexdump -C -s 3 (unaligned start)",
            text: """
                00000003  fa 21 3d 7f 9f 4d 51 58                           |.!=..MQX|
                0000000b
                """,
            format: .hexdumpCanonical, bytes: Array(maskedHello[3...])),
        HexDumpSample(
            name: "od -x (octal offsets, words)",
            text: """
                0000000 8581 fa37 3d21 9f7f 514d 0058
                0000013

                """,
            format: .hexdumpWords, bytes: maskedHello),
        HexDumpSample(
            name: "od -A x -t x1z",
            text: """
                000000 81 85 37 fa 21 3d 7f 9f 4d 51 58                 >..7.!=..MQX<
                00000b

                """,
            format: .od, bytes: maskedHello),
        HexDumpSample(
            name: "od -t x1 (octal offsets)",
            text: """
                0000000 81 85 37 fa 21 3d 7f 9f 4d 51 58
                0000013

                """,
            format: .od, bytes: maskedHello),
        HexDumpSample(
            name: "tcpdump -x",
            text: """
                \t0x0000:  4500 003f 1c46 4000 4006 2071 7f00 0001
                \t0x0010:  7f00 0001 d431 1f90 000f 4241 001e 8481
                \t0x0020:  8018 0200 bc35 0000 0101 080a 0000 000b
                \t0x0030:  0000 0008 8185 37fa 213d 7f9f 4d51 58
                """,
            format: .tcpdump, bytes: packet1),
        HexDumpSample(
            name: "tcpdump -XX",
            text: """
                12:00:00.000210 IP 127.0.0.1.8080 > 127.0.0.1.54321: Flags [P.], seq 2000001:2000008, ack 1000012, win 512, options [nop,nop,TS val 12 ecr 9], length 7
                \t0x0000:  0000 0000 0000 0000 0000 0000 0800 4500  ..............E.
                \t0x0010:  003b 1c47 4000 4006 2074 7f00 0001 7f00  .;.G@.@..t......
                \t0x0020:  0001 1f90 d431 001e 8481 000f 424c 8018  .....1......BL..
                \t0x0030:  0200 1703 0000 0101 080a 0000 000c 0000  ................
                \t0x0040:  0009 8105 4865 6c6c 6f                   ....Hello
                """,
            format: .tcpdump, bytes: ethernet + packet2),
        HexDumpSample(
            name: "Wireshark Copy as Hex Dump",
            text: """
                0000   00 00 00 00 00 00 00 00 00 00 00 00 08 00 45 00   ..............E.
                0010   00 3b 1c 47 40 00 40 06 20 74 7f 00 00 01 7f 00   .;.G@.@. t......
                0020   00 01 1f 90 d4 31 00 1e 84 81 00 0f 42 4c 80 18   .....1......BL..
                0030   02 00 17 03 00 00 01 01 08 0a 00 00 00 0c 00 00   ................
                0040   00 09 81 05 48 65 6c 6c 6f                        ....Hello

                """,
            format: .wireshark, bytes: ethernet + packet2),
        HexDumpSample(
            name: "Wireshark, unpadded short line",
            text: "0000  81 85 37 fa 21 3d 7f 9f  ..7.!=..",
            format: .wireshark, bytes: Array(maskedHello[..<8])),
        HexDumpSample(
            name: "Wireshark, older layout with a middle gap",
            text: """
                0000  00 00 00 00 00 00 00 00  00 00 00 00 08 00 45 00   ........ ......E.
                0010  00 3b 1c 47 40 00 40 06  20 74 7f 00 00 01 7f 00   .;.G@.@.  t......
                0020  00 01 1f 90 d4 31 00 1e  84 81 00 0f 42 4c 80 18   .....1.. ....BL..
                0030  02 00 17 03 00 00 01 01  08 0a 00 00 00 0c 00 00   ........ ........
                0040  00 09 81 05 48 65 6c 6c  6f                        ....Hell o
                """,
            format: .wireshark, bytes: ethernet + packet2),
    ]

    /// `printf '\x81\x26deadbeefcafebabe0123456789abcdef001122'`: 40 bytes whose text column is all
    /// hex digits. Reading any of it as hex would add bytes, and the offsets or counts would not match.
    static let deadbeefSamples: [HexDumpSample] = [
        HexDumpSample(
            name: "xxd",
            text: """
                00000000: 8126 6465 6164 6265 6566 6361 6665 6261  .&deadbeefcafeba
                00000010: 6265 3031 3233 3435 3637 3839 6162 6364  be0123456789abcd
                00000020: 6566 3030 3131 3232                      ef001122
                """,
            format: .xxd, bytes: deadbeef),
        HexDumpSample(
            name: "xxd -g1",
            text: """
                00000000: 81 26 64 65 61 64 62 65 65 66 63 61 66 65 62 61  .&deadbeefcafeba
                00000010: 62 65 30 31 32 33 34 35 36 37 38 39 61 62 63 64  be0123456789abcd
                00000020: 65 66 30 30 31 31 32 32                          ef001122
                """,
            format: .xxd, bytes: deadbeef),
        HexDumpSample(
            name: "xxd -c 8",
            text: """
                00000000: 8126 6465 6164 6265  .&deadbe
                00000008: 6566 6361 6665 6261  efcafeba
                00000010: 6265 3031 3233 3435  be012345
                00000018: 3637 3839 6162 6364  6789abcd
                00000020: 6566 3030 3131 3232  ef001122
                """,
            format: .xxd, bytes: deadbeef),
        HexDumpSample(
            name: "xxd -g4",
            text: """
                00000000: 81266465 61646265 65666361 66656261  .&deadbeefcafeba
                00000010: 62653031 32333435 36373839 61626364  be0123456789abcd
                00000020: 65663030 31313232                    ef001122
                """,
            format: .xxd, bytes: deadbeef),
        HexDumpSample(
            name: "hexdump -C",
            text: """
                00000000  81 26 64 65 61 64 62 65  65 66 63 61 66 65 62 61  |.&deadbeefcafeba|
                00000010  62 65 30 31 32 33 34 35  36 37 38 39 61 62 63 64  |be0123456789abcd|
                00000020  65 66 30 30 31 31 32 32                           |ef001122|
                00000028
                """,
            format: .hexdumpCanonical, bytes: deadbeef),
        HexDumpSample(
            name: "hexdump",
            text: """
                0000000 2681 6564 6461 6562 6665 6163 6566 6162
                0000010 6562 3130 3332 3534 3736 3938 6261 6463
                0000020 6665 3030 3131 3232                    
                0000028
                """,
            format: .hexdumpWords, bytes: deadbeef),
        HexDumpSample(
            name: "od -A x -t x1z",
            text: """
                000000 81 26 64 65 61 64 62 65 65 66 63 61 66 65 62 61  >.&deadbeefcafeba<
                000010 62 65 30 31 32 33 34 35 36 37 38 39 61 62 63 64  >be0123456789abcd<
                000020 65 66 30 30 31 31 32 32                          >ef001122<
                000028
                """,
            format: .od, bytes: deadbeef),
        HexDumpSample(
            name: "od -A d -t x1",
            text: """
                0000000 81 26 64 65 61 64 62 65 65 66 63 61 66 65 62 61
                0000016 62 65 30 31 32 33 34 35 36 37 38 39 61 62 63 64
                0000032 65 66 30 30 31 31 32 32
                0000040
                """,
            format: .od, bytes: deadbeef),
        HexDumpSample(
            name: "tcpdump -X",
            text: """
                \t0x0000:  8126 6465 6164 6265 6566 6361 6665 6261  .&deadbeefcafeba
                \t0x0010:  6265 3031 3233 3435 3637 3839 6162 6364  be0123456789abcd
                \t0x0020:  6566 3030 3131 3232                      ef001122
                """,
            format: .tcpdump, bytes: deadbeef),
        HexDumpSample(
            name: "tshark -x",
            text: """
                0000  81 26 64 65 61 64 62 65 65 66 63 61 66 65 62 61   .&deadbeefcafeba
                0010  62 65 30 31 32 33 34 35 36 37 38 39 61 62 63 64   be0123456789abcd
                0020  65 66 30 30 31 31 32 32                           ef001122
                """,
            format: .wireshark, bytes: deadbeef),
        HexDumpSample(
            name: "tshark --hexdump delimit",
            text: """
                0000  81 26 64 65 61 64 62 65 65 66 63 61 66 65 62 61   |.&deadbeefcafeba|
                0010  62 65 30 31 32 33 34 35 36 37 38 39 61 62 63 64   |be0123456789abcd|
                0020  65 66 30 30 31 31 32 32                           |ef001122|
                """,
            format: .wireshark, bytes: deadbeef),
    ]

    /// `{ printf '\x82\x7e\x00\x80'; head -c 128 /dev/zero; }`: `*` stands for six identical lines.
    static let repeatSamples: [HexDumpSample] = [
        HexDumpSample(
            name: "hexdump -C",
            text: """
                00000000  82 7e 00 80 00 00 00 00  00 00 00 00 00 00 00 00  |.~..............|
                00000010  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|
                *
                00000080  00 00 00 00                                       |....|
                00000084
                """,
            format: .hexdumpCanonical, bytes: zeros),
        HexDumpSample(
            name: "xxd -a",
            text: """
                00000000: 827e 0080 0000 0000 0000 0000 0000 0000  .~..............
                00000010: 0000 0000 0000 0000 0000 0000 0000 0000  ................
                *
                00000080: 0000 0000                                ....
                """,
            format: .xxd, bytes: zeros),
        HexDumpSample(
            name: "od -A x -t x1z",
            text: """
                000000 82 7e 00 80 00 00 00 00 00 00 00 00 00 00 00 00  >.~..............<
                000010 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00 00  >................<
                *
                000080 00 00 00 00                                      >....<
                000084
                """,
            format: .od, bytes: zeros),
        HexDumpSample(
            name: "hexdump -C, '*' right before the length",
            text: """
                00000000  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|
                *
                00000040
                """,
            format: .hexdumpCanonical, bytes: [UInt8](repeating: 0, count: 64)),
    ]

    @Test("reads each format", arguments: formatSamples)
    func readsFormat(_ sample: HexDumpSample) throws {
        let dump = try HexDumpReader.read(sample.text)
        #expect(dump.format == sample.format)
        #expect(dump.bytes == sample.bytes)
        #expect(dump.blocks.count == sample.blockCount)
        #expect(dump.blocks.first?.lowerBound == 0 && dump.blocks.last?.upperBound == dump.bytes.count)
    }

    @Test("never reads a text column of hex digits as bytes", arguments: deadbeefSamples)
    func ignoresTextColumn(_ sample: HexDumpSample) throws {
        let dump = try HexDumpReader.read(sample.text)
        #expect(dump.format == sample.format)
        #expect(dump.bytes.count == 40)
        #expect(dump.bytes == sample.bytes)
    }

    @Test("expands '*' lines", arguments: repeatSamples)
    func expandsRepeats(_ sample: HexDumpSample) throws {
        let dump = try HexDumpReader.read(sample.text)
        #expect(dump.format == sample.format)
        #expect(dump.bytes == sample.bytes)
    }

    @Test("forcing the format reads the same bytes", arguments: formatSamples + deadbeefSamples + repeatSamples)
    func forcedFormat(_ sample: HexDumpSample) throws {
        let dump = try HexDumpReader.read(sample.text, format: sample.format)
        #expect(dump.format == sample.format)
        #expect(dump.bytes == sample.bytes)
    }

    @Test("Windows line endings read the same", arguments: formatSamples + deadbeefSamples + repeatSamples)
    func windowsLineEndings(_ sample: HexDumpSample) throws {
        let crlf = sample.text.split(separator: "\n", omittingEmptySubsequences: false).joined(separator: "\r\n")
        #expect(crlf.utf8.count > sample.text.utf8.count || !sample.text.contains("\n"))
        let dump = try HexDumpReader.read(crlf)
        #expect(dump.format == sample.format)
        #expect(dump.bytes == sample.bytes)
    }

    // MARK: Blocks

    @Test("tcpdump -X: one block per packet, labelled with the packet line")
    func tcpdumpPackets() throws {
        let text = """
            tcpdump: verbose output suppressed, use -v[v]... for full protocol decode
            listening on lo, link-type EN10MB (Ethernet), snapshot length 262144 bytes
            12:00:00.000000 IP 127.0.0.1.54321 > 127.0.0.1.8080: Flags [P.], seq 1000001:1000012, ack 2000001, win 512, options [nop,nop,TS val 11 ecr 8], length 11
            \t0x0000:  4500 003f 1c46 4000 4006 2071 7f00 0001  E..?.F@.@..q....
            \t0x0010:  7f00 0001 d431 1f90 000f 4241 001e 8481  .....1....BA....
            \t0x0020:  8018 0200 bc35 0000 0101 080a 0000 000b  .....5..........
            \t0x0030:  0000 0008 8185 37fa 213d 7f9f 4d51 58    ......7.!=..MQX
            12:00:00.000210 IP 127.0.0.1.8080 > 127.0.0.1.54321: Flags [P.], seq 2000001:2000008, ack 1000012, win 512, options [nop,nop,TS val 12 ecr 9], length 7
            \t0x0000:  4500 003b 1c47 4000 4006 2074 7f00 0001  E..;.G@.@..t....
            \t0x0010:  7f00 0001 1f90 d431 001e 8481 000f 424c  .......1......BL
            \t0x0020:  8018 0200 1703 0000 0101 080a 0000 000c  ................
            \t0x0030:  0000 0009 8105 4865 6c6c 6f              ......Hello
            ^C
            2 packets captured
            """
        let dump = try HexDumpReader.read(text)
        #expect(dump.format == .tcpdump)
        #expect(dump.format.holdsPackets)
        #expect(dump.blocks == [0..<63, 63..<122])
        #expect(Array(dump.bytes(inBlock: 0)) == Self.packet1)
        #expect(Array(dump.bytes(inBlock: 1)) == Self.packet2)
        #expect(dump.blockLabels[0]?.hasPrefix("12:00:00.000000 IP 127.0.0.1.54321 > 127.0.0.1.8080") == true)
        #expect(dump.blockLabels[1]?.hasPrefix("12:00:00.000210 IP 127.0.0.1.8080 > 127.0.0.1.54321") == true)
    }

    @Test("tcpdump -v: the indented continuation belongs to the label")
    func tcpdumpVerboseLabel() throws {
        let text = """
            12:00:00.000210 IP (tos 0x0, ttl 64, id 7239, offset 0, flags [DF], proto TCP (6), length 59)
                127.0.0.1.8080 > 127.0.0.1.54321: Flags [P.], cksum 0x1703 (correct), seq 2000001:2000008, ack 1000012, win 512, length 7
            \t0x0000:  4500 003b 1c47 4000 4006 2074 7f00 0001  E..;.G@.@..t....
            \t0x0010:  7f00 0001 1f90 d431 001e 8481 000f 424c  .......1......BL
            \t0x0020:  8018 0200 1703 0000 0101 080a 0000 000c  ................
            \t0x0030:  0000 0009 8105 4865 6c6c 6f              ......Hello
            """
        let dump = try HexDumpReader.read(text)
        #expect(dump.bytes == Self.packet2)
        #expect(dump.blockLabels == ["12:00:00.000210 IP (tos 0x0, ttl 64, id 7239, offset 0, flags [DF], proto TCP (6), length 59) 127.0.0.1.8080 > 127.0.0.1.54321: Flags [P.], cksum 0x1703 (correct), seq 2000001:2000008, ack 1000012, win 512, length 7"])
    }

    @Test("tshark -x: each buffer of a packet is a block labelled with its header")
    func tsharkBuffers() throws {
        let text = """
            Frame (77 bytes):
            0000  00 00 00 00 00 00 00 00 00 00 00 00 08 00 45 00   ..............E.
            0010  00 3f 1c 46 40 00 40 06 20 71 7f 00 00 01 7f 00   .?.F@.@. q......
            0020  00 01 d4 31 1f 90 00 0f 42 41 00 1e 84 81 80 18   ...1....BA......
            0030  02 00 bc 35 00 00 01 01 08 0a 00 00 00 0b 00 00   ...5............
            0040  00 08 81 85 37 fa 21 3d 7f 9f 4d 51 58            ....7.!=..MQX
            Unmasked data (5 bytes):
            0000  48 65 6c 6c 6f                                    Hello

            0000  00 00 00 00 00 00 00 00 00 00 00 00 08 00 45 00   ..............E.
            0010  00 3b 1c 47 40 00 40 06 20 74 7f 00 00 01 7f 00   .;.G@.@. t......
            0020  00 01 1f 90 d4 31 00 1e 84 81 00 0f 42 4c 80 18   .....1......BL..
            0030  02 00 17 03 00 00 01 01 08 0a 00 00 00 0c 00 00   ................
            0040  00 09 81 05 48 65 6c 6c 6f                        ....Hello

            """
        let dump = try HexDumpReader.read(text)
        #expect(dump.format == .wireshark)
        #expect(dump.blocks == [0..<77, 77..<82, 82..<155])
        #expect(dump.blockLabels == ["Frame (77 bytes)", "Unmasked data (5 bytes)", nil])
        #expect(Array(dump.bytes(inBlock: 0)) == Self.ethernet + Self.packet1)
        #expect(Array(dump.bytes(inBlock: 1)) == Array("Hello".utf8))
        #expect(Array(dump.bytes(inBlock: 2)) == Self.ethernet + Self.packet2)
    }

    @Test("tshark -P -x: summary lines between packets are labels")
    func tsharkSummaries() throws {
        let text = """
                1 0.000000000    127.0.0.1 → 127.0.0.1    WebSocket 77 WebSocket Text [FIN] [MASKED]

            0000  00 00 00 00 00 00 00 00 00 00 00 00 08 00 45 00   ..............E.
            0010  00 3f 1c 46 40 00 40 06 20 71 7f 00 00 01 7f 00   .?.F@.@. q......
            0020  00 01 d4 31 1f 90 00 0f 42 41 00 1e 84 81 80 18   ...1....BA......
            0030  02 00 bc 35 00 00 01 01 08 0a 00 00 00 0b 00 00   ...5............
            0040  00 08 81 85 37 fa 21 3d 7f 9f 4d 51 58            ....7.!=..MQX

                2 0.000210000    127.0.0.1 → 127.0.0.1    WebSocket 73 WebSocket Text [FIN]

            0000  00 00 00 00 00 00 00 00 00 00 00 00 08 00 45 00   ..............E.
            0010  00 3b 1c 47 40 00 40 06 20 74 7f 00 00 01 7f 00   .;.G@.@. t......
            0020  00 01 1f 90 d4 31 00 1e 84 81 00 0f 42 4c 80 18   .....1......BL..
            0030  02 00 17 03 00 00 01 01 08 0a 00 00 00 0c 00 00   ................
            0040  00 09 81 05 48 65 6c 6c 6f                        ....Hello
            """
        let dump = try HexDumpReader.read(text)
        #expect(dump.format == .wireshark)
        #expect(dump.blocks == [0..<77, 77..<150])
        #expect(dump.bytes == Self.ethernet + Self.packet1 + Self.ethernet + Self.packet2)
    }

    @Test("blank-line-separated xxd dumps are blocks; a continued offset is not")
    func xxdParagraphs() throws {
        let two = """
            client:
            00000000: 8185 37fa 213d 7f9f 4d51 58              ..7.!=..MQX

            server:
            00000000: 8105 4865 6c6c 6f                        ..Hello
            """
        let dump = try HexDumpReader.read(two)
        #expect(dump.blocks == [0..<11, 11..<18])
        #expect(dump.blockLabels == ["client", "server"])
        #expect(dump.bytes == Self.maskedHello + Self.hello)

        let split = """
            00000000: 8126 6465 6164 6265 6566 6361 6665 6261  .&deadbeefcafeba

            00000010: 6265 3031 3233 3435 3637 3839 6162 6364  be0123456789abcd
            00000020: 6566 3030 3131 3232                      ef001122
            """
        let one = try HexDumpReader.read(split)
        #expect(one.blocks == [0..<40])
        #expect(one.bytes == Self.deadbeef)
    }

    @Test("back-to-back hexdump -C dumps are two blocks")
    func concatenatedDumps() throws {
        let text = """
            00000000  81 85 37 fa 21 3d 7f 9f  4d 51 58                 |..7.!=..MQX|
            0000000b
            00000000  81 05 48 65 6c 6c 6f                              |..Hello|
            00000007
            """
        let dump = try HexDumpReader.read(text)
        #expect(dump.blocks == [0..<11, 11..<18])
        #expect(dump.blockLabels == [nil, nil])
    }

    @Test("plain hex paragraphs with notes")
    func plainParagraphs() throws {
        let text = """
            Client frame:
            81 85 37 fa 21 3d 7f 9f 4d 51 58

            Server frame:
            81 05 48 65 6c 6c 6f
            """
        let dump = try HexDumpReader.read(text)
        #expect(dump.format == .plain)
        #expect(dump.blocks == [0..<11, 11..<18])
        #expect(dump.blockLabels == ["Client frame", "Server frame"])
    }

    // MARK: Junk around dumps

    @Test("leading and trailing junk lines are skipped")
    func junkLines() throws {
        let xxd = """
            $ printf '\\x81\\x85\\x37\\xfa\\x21\\x3d\\x7f\\x9f\\x4d\\x51\\x58' | xxd
            00000000: 8185 37fa 213d 7f9f 4d51 58              ..7.!=..MQX
            $ 
            """
        let dump = try HexDumpReader.read(xxd)
        #expect(dump.format == .xxd)
        #expect(dump.bytes == Self.maskedHello)

        let hexdump = """
            Here is what the client sent:

            00000000  81 85 37 fa 21 3d 7f 9f  4d 51 58                 |..7.!=..MQX|
            0000000b

            Any idea why the server closes with 1002?
            """
        #expect(try HexDumpReader.read(hexdump).bytes == Self.maskedHello)

        let plain = """
            $ websocat --binary -v ws://localhost:8080
            81 85 37 fa 21 3d 7f 9f 4d 51 58
            # that is all
            """
        #expect(try HexDumpReader.read(plain).bytes == Self.maskedHello)
    }

    // MARK: Escapes

    static let escapes: [(String, [UInt8])] = [
        (#"\x81\n"#, [0x81, 0x0A]), (#"\x81\r"#, [0x81, 0x0D]), (#"\x81\t"#, [0x81, 0x09]),
        (#"\x81\\"#, [0x81, 0x5C]), (#"'\x81\''"#, [0x81, 0x27]), (#""\x81\"""#, [0x81, 0x22]),
        (#"\x81\0"#, [0x81, 0x00]), (#"\x81\012"#, [0x81, 0x0A]), (#"\x81\377"#, [0x81, 0xFF]),
        (#"\x81\a\b\f\v\e"#, [0x81, 7, 8, 12, 11, 27]), (#""\x81\u0085""#, [0x81, 0x85]),
        (#""\x81\u{7e}""#, [0x81, 0x7E]), (#"\X81\xFF"#, [0x81, 0xFF]), (#"\x81 é"#, [0x81, 0x20, 0xC3, 0xA9]),
    ]

    @Test("escape sequences", arguments: escapes)
    func escapeSequence(_ text: String, _ bytes: [UInt8]) throws {
        let dump = try HexDumpReader.read(text)
        #expect(dump.format == .escapedString)
        #expect(dump.bytes == bytes)
    }

    // MARK: Errors

    static let failures: [HexDumpFailure] = [
        HexDumpFailure(name: "plain: not a hex digit", text: "81 85 4g", message: "line 1, column 8: 'g' is not a hex digit", code: .notHexDigit),
        HexDumpFailure(name: "plain: odd digits", text: "818548656c6c6", message: "line 1, column 1: odd number of hex digits in '818548656c6c6'", code: .oddDigitCount),
        HexDumpFailure(name: "plain: odd digits on line 2", text: "81 85\n48 6 6c", message: "line 2, column 4: odd number of hex digits in '6'", code: .oddDigitCount),
        HexDumpFailure(name: "plain: a comment after the bytes", text: "81 85 37 fa // masked", message: "line 1, column 13: '/' is not a hex digit", code: .notHexDigit),
        HexDumpFailure(name: "plain: a text column is not skipped", text: "81 85 37 fa 21 3d 7f 9f  ..7.!=..\n4d 51 58                 MQX", message: "line 1, column 26: '.' is not a hex digit", code: .notHexDigit),
        HexDumpFailure(name: "plain: a typo that starts a line", text: "81 85 37 fa\ng1 3d 7f 9f", message: "line 2, column 1: 'g' is not a hex digit", code: .notHexDigit),
        HexDumpFailure(name: "plain: only notes", text: "Frame 1: 81 85 37 fa\n", message: "no hex bytes found; 1 line of words was skipped as notes", code: .noBytes),
        HexDumpFailure(name: "plain: doubled separator", text: "81::85", message: "line 1, column 4: unexpected ':'", code: .unexpectedCharacter),
        HexDumpFailure(name: "nothing", text: "", message: "no hex bytes found", code: .noBytes),
        HexDumpFailure(name: "only prose", text: "hello world\n", message: "no hex bytes found; 1 line of words was skipped as notes", code: .noBytes),
        HexDumpFailure(
            name: "xxd: bad digit on line 3",
            text: """
                00000000: 8126 6465 6164 6265 6566 6361 6665 6261  .&deadbeefcafeba
                00000010: 6265 3031 3233 3435 3637 3839 6162 6364  be0123456789abcd
                00000020: 6g66 3030 3131 3232                      ef001122
                """,
            message: "line 3, column 12: 'g' is not a hex digit", code: .notHexDigit),
        HexDumpFailure(
            name: "xxd: offset jumps",
            text: """
                00000000: 8126 6465 6164 6265 6566 6361 6665 6261  .&deadbeefcafeba
                00000030: 6265 3031 3233 3435 3637 3839 6162 6364  be0123456789abcd
                """,
            message: "line 2, column 1: offset 0x10 expected, found 0x30", code: .offsetMismatch),
        HexDumpFailure(
            name: "xxd: a group left out",
            text: """
                00000000: 8126 6465 6164 6265 6566 6361 6665       .&deadbeefcafe
                00000010: 6265 3031 3233 3435 3637 3839 6162 6364  be0123456789abcd
                """,
            message: "line 2, column 1: offset 0x0e expected, found 0x10", code: .offsetMismatch),
        HexDumpFailure(
            name: "xxd: a group too many",
            text: """
                00000000: 8126 6465 6164 6265 6566 6361 6665 6261 6265  .&deadbeefcafebabe
                00000010: 3031 3233 3435 3637 3839 6162 6364       0123456789abcd
                """,
            message: "line 2, column 1: offset 0x12 expected, found 0x10", code: .offsetMismatch),
        HexDumpFailure(
            name: "xxd: last line longer than the others",
            text: """
                00000000: 8126 6465 6164 6265 6566 6361 6665 6261  .&deadbeefcafeba
                00000010: 6265 3031 3233 3435 3637 3839 6162 6364 6566  be0123456789abcdef
                """,
            message: "line 2: 18 bytes on this line, but the lines above hold 16", code: .lineTooLong),
        HexDumpFailure(
            name: "xxd: group of another size",
            text: "00000000: 8185 37 fa21 3d7f 9f4d 5158  ..7.!=..MQX",
            message: "line 1, column 16: expected a group of 4 hex digits, found 2", code: .groupSize),
        HexDumpFailure(
            name: "xxd: colon missing",
            text: """
                00000000: 8126 6465 6164 6265 6566 6361 6665 6261  .&deadbeefcafeba
                00000010 6265 3031 3233 3435 3637 3839 6162 6364  be0123456789abcd
                """,
            message: "line 2, column 9: expected ':' after the offset (xxd layout)", code: .layoutMismatch),
        HexDumpFailure(
            name: "hexdump -C: one space after the offset",
            text: """
                00000000  81 26 64 65 61 64 62 65  65 66 63 61 66 65 62 61  |.&deadbeefcafeba|
                00000010 62 65 30 31 32 33 34 35  36 37 38 39 61 62 63 64  |be0123456789abcd|
                """,
            message: "line 2, column 9: expected 2 spaces after the offset, found 1 (hexdump -C layout)", code: .layoutMismatch),
        HexDumpFailure(
            name: "hexdump -C: the length line disagrees",
            text: """
                00000000  81 85 37 fa 21 3d 7f 9f  4d 51 58                 |..7.!=..MQX|
                0000000c
                """,
            message: "line 2, column 1: offset 0x0b expected, found 0x0c", code: .offsetMismatch),
        HexDumpFailure(
            name: "hexdump -C: '*' not followed by an offset",
            text: """
                00000000  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|
                *
                """,
            message: "line 2, column 1: '*' is not followed by an offset line, so how often it repeats is unknown", code: .badRepeat),
        HexDumpFailure(
            name: "hexdump -C: '*' to an offset between lines",
            text: """
                00000000  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|
                *
                00000045
                """,
            message: "line 2, column 1: '*' repeats 16-byte lines from offset 0x10, but the next offset 0x45 is not a whole number of lines further", code: .badRepeat),
        HexDumpFailure(
            name: "hexdump -C: '*' first",
            text: "*\n00000000  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|",
            message: "line 1, column 1: '*' must come right after a dump line", code: .badRepeat),
        HexDumpFailure(
            name: "od: octal offsets jump",
            text: """
                0000000 81 26 64 65 61 64 62 65 65 66 63 61 66 65 62 61
                0000020 62 65 30 31 32 33 34 35 36 37 38 39 61 62 63 64
                0000060 65 66 30 30 31 31 32 32
                """,
            message: "line 3, column 1: offset 0o40 expected, found 0o60", code: .offsetMismatch),
        HexDumpFailure(
            name: "tcpdump: a new packet must start at 0",
            text: """
                12:00:00.000000 IP 127.0.0.1.8080 > 127.0.0.1.54321: Flags [P.], length 7
                \t0x0000:  8105 4865 6c6c 6f                        ..Hello
                12:00:00.000001 IP 127.0.0.1.8080 > 127.0.0.1.54321: Flags [P.], length 7
                \t0x0010:  8105 4865 6c6c 6f                        ..Hello
                """,
            message: "line 4, column 2: offset 0x00 expected, found 0x10", code: .offsetMismatch),
        HexDumpFailure(
            name: "tcpdump: seventeen bytes on a line",
            text: "\t0x0000:  4500 003f 1c46 4000 4006 2071 7f00 0001 7f",
            message: "line 1, column 51: more than 16 bytes on one line (tcpdump -x/-X layout)", code: .lineTooLong),
        HexDumpFailure(
            name: "tshark: header announces another length",
            text: """
                Frame (8 bytes):
                0000  81 05 48 65 6c 6c 6f                              ..Hello
                """,
            message: "line 1: 'Frame (8 bytes)' announces 8 bytes, the dump below it holds 7", code: .lengthMismatch),
        HexDumpFailure(name: "array: too large", text: "[0x81, 300]", message: "line 1, column 8: 300 does not fit in a byte", code: .valueOutOfRange),
        HexDumpFailure(name: "array: too negative", text: "[-129, 5]", message: "line 1, column 2: -129 does not fit in a byte", code: .valueOutOfRange),
        HexDumpFailure(name: "array: bad hex digit", text: "[0x81, 0x1g]", message: "line 1, column 11: 'g' is not a hex digit", code: .notHexDigit),
        HexDumpFailure(name: "array: doubled comma", text: "{0x81,, 0x05}", message: "line 1, column 7: unexpected ','", code: .unexpectedCharacter),
        HexDumpFailure(name: "array: not a number", text: "[0x81, five]", message: "line 1, column 8: expected a number, found 'five'", code: .unexpectedCharacter),
        HexDumpFailure(name: "array: never closed", text: "Buffer.from([129, 5,\n  72, 101", message: "line 1, column 13: '[' is never closed", code: .unterminated),
        HexDumpFailure(name: "0x list: too large", text: "0x81, 0x100", message: "line 1, column 7: '0x100' does not fit in a byte", code: .valueOutOfRange),
        HexDumpFailure(name: "0x list: bare byte", text: "0x81, 0x05, 48", format: .prefixedList, message: "line 1, column 13: expected a 0x-prefixed byte, found '48'", code: .unexpectedCharacter),
        HexDumpFailure(name: "escape: short \\x", text: #"b'\x81\x5'"#, message: #"line 1, column 7: \x needs two hex digits"#, code: .badEscape),
        HexDumpFailure(name: "escape: unknown", text: #""\x81\q""#, message: #"line 1, column 6: unknown escape '\q'"#, code: .badEscape),
        HexDumpFailure(name: "escape: octal over 255", text: #"\x81\477"#, message: #"line 1, column 5: '\477' is not a byte"#, code: .badEscape),
        HexDumpFailure(name: "escape: \\u over 255", text: #""\x81\u0100""#, message: #"line 1, column 6: '\u0100' is not a byte (only \u0000 to \u00ff are)"#, code: .badEscape),
        HexDumpFailure(name: "escape: not closed", text: #"b'\x81\x05Hello"#, message: "line 1, column 2: string literal is not closed on its line", code: .unterminated),
        HexDumpFailure(name: "Node: shortened", text: "<Buffer 81 05 48 65 ... 12 more bytes>", message: "line 1, column 21: Node.js left out bytes (... 12 more bytes); print buf.toString('hex') to get them all", code: .truncatedDump),
        HexDumpFailure(name: "forced xxd on plain hex", text: "81 05 48 65 6c 6c 6f", format: .xxd, message: "no bytes in this xxd dump", code: .noBytes),
    ]

    @Test("errors name the line, the column and the problem", arguments: failures)
    func failure(_ failure: HexDumpFailure) {
        do {
            let dump = if let format = failure.format {
                try HexDumpReader.read(failure.text, format: format)
            } else {
                try HexDumpReader.read(failure.text)
            }
            Issue.record("read \(dump.bytes.count) bytes as \(dump.format), expected: \(failure.message)")
        } catch {
            #expect(error.description == failure.message)
            #expect(error.code == failure.code)
        }
    }

    // MARK: Larger inputs

    /// xxd's default layout, written here so the test needs no xxd.
    static func xxdDump(_ bytes: [UInt8]) -> String {
        var lines: [String] = []
        for start in stride(from: 0, to: bytes.count, by: 16) {
            let line = bytes[start..<min(start + 16, bytes.count)]
            var hexPart = ""
            for (i, byte) in line.enumerated() {
                hexPart += String(byte, radix: 16).count == 1 ? "0" + String(byte, radix: 16) : String(byte, radix: 16)
                if i % 2 == 1 { hexPart += " " }
            }
            hexPart += String(repeating: " ", count: 40 - hexPart.count)
            let textPart = String(decoding: line.map { (0x20...0x7E).contains($0) ? $0 : UInt8(ascii: ".") }, as: UTF8.self)
            let offset = String(start, radix: 16)
            lines.append(String(repeating: "0", count: 8 - offset.count) + offset + ": " + hexPart + " " + textPart)
        }
        return lines.joined(separator: "\n") + "\n"
    }

    @Test("a 256 KiB xxd dump of every byte value reads back exactly")
    func largeDump() throws {
        var generator = SystemRandomNumberGenerator()
        let bytes = (0..<(256 << 10)).map { i in i % 3 == 0 ? UInt8(i & 0xFF) : UInt8.random(in: 0...255, using: &generator) }
        let dump = try HexDumpReader.read(Self.xxdDump(bytes))
        #expect(dump.format == .xxd)
        #expect(dump.bytes == bytes)
        #expect(dump.blocks == [0..<bytes.count])
    }

    @Test("the xxd writer above matches real xxd output")
    func xxdWriterMatchesXxd() {
        #expect(Self.xxdDump(Self.deadbeef) == """
            00000000: 8126 6465 6164 6265 6566 6361 6665 6261  .&deadbeefcafeba
            00000010: 6265 3031 3233 3435 3637 3839 6162 6364  be0123456789abcd
            00000020: 6566 3030 3131 3232                      ef001122

            """)
    }

    @Test("a '*' with a huge next offset is refused, not allocated")
    func repeatLimit() {
        let text = """
            00000000  00 00 00 00 00 00 00 00  00 00 00 00 00 00 00 00  |................|
            *
            ffffffff0
            """
        let thrown = thrownError { try HexDumpReader.read(text) }
        #expect(thrown is HexDumpError, "threw \(String(describing: thrown))")
        do {
            _ = try HexDumpReader.read(text)
        } catch {
            #expect(error.code == .tooLarge)
        }
    }

    @Test("format names and raw values")
    func formatNames() {
        #expect(HexDumpFormat(rawValue: "hexdump-c") == .hexdumpCanonical)
        #expect(Set(HexDumpFormat.allCases.map(\.rawValue)).count == HexDumpFormat.allCases.count)
        let allNamed = HexDumpFormat.allCases.allSatisfy { !$0.name.isEmpty }
        #expect(allNamed, "\(HexDumpFormat.allCases.map(\.name))")
        #expect(HexDumpFormat.allCases.filter(\.holdsPackets) == [.tcpdump, .wireshark])
    }
}
