import Foundation
import Testing
@testable import WebSocketInspect

/// The byte writer behind every JSON line and hex dump: held to the String-based writer it
/// replaced (kept here as the oracle), byte for byte.
@Suite("Output buffer and JSON writing")
struct OutputBufferTests {
    /// The escaping of the String-based `JSONLineWriter` that `sniff` and `decode` used before the
    /// byte writer, unchanged: the output users have seen is the reference.
    static func oldQuoted(_ s: String) -> String {
        var out = "\""
        var plainStart = s.utf8.startIndex
        var i = plainStart
        let u = s.utf8
        while i != u.endIndex {
            let c = u[i]
            if c < 0x20 || c == 0x22 || c == 0x5C {
                out.append(contentsOf: s[plainStart..<i])
                switch c {
                case 0x22: out.append("\\\"")
                case 0x5C: out.append("\\\\")
                case 0x0A: out.append("\\n")
                case 0x0D: out.append("\\r")
                case 0x09: out.append("\\t")
                default:
                    let hex = String(c, radix: 16)
                    out.append("\\u00" + (hex.count == 1 ? "0" : "") + hex)
                }
                plainStart = u.index(after: i)
            }
            i = u.index(after: i)
        }
        out.append(contentsOf: s[plainStart..<u.endIndex])
        out.append("\"")
        return out
    }

    /// The hex of the old `hexString`.
    static func oldHex(_ bytes: [UInt8]) -> String {
        bytes.map { ($0 < 16 ? "0" : "") + String($0, radix: 16) }.joined()
    }

    static func newQuoted(_ bytes: [UInt8]) -> [UInt8] {
        var b = OutputBuffer(capacity: 16)
        bytes.withUnsafeBytes { b.jsonString($0) }
        return b.withBytes { Array($0) }
    }


    @Test func everyASCIIByteAtEveryPositionOfAWord() {
        // Each byte 0x00–0x7F alone and inside plain text at offsets 0–33, so that it lands in
        // every lane of a 16-byte block (twice over) and in the byte-at-a-time tail, and plain
        // runs end exactly at a block's end.
        for c in UInt8(0)...0x7F {
            for before in 0..<34 {
                for after in [0, 1, 7, 8, 9, 15, 16, 17] {
                    let bytes = [UInt8](repeating: 0x61, count: before) + [c] + [UInt8](repeating: 0x7A, count: after)
                    let s = String(decoding: bytes, as: UTF8.self)
                    #expect(Self.newQuoted(bytes) == Array(Self.oldQuoted(s).utf8), "byte 0x\(String(c, radix: 16)) after \(before)")
                }
            }
        }
    }

    /// Two bytes to escape at every pair of places in 40 bytes: a block is copied up to its first
    /// flagged byte, and the next block starts right after that byte, so a second one in the same
    /// 16 bytes, or just past them, must still be found.
    @Test func twoEscapesAtEveryPairOfPlaces() {
        for first in 0..<40 {
            for second in first + 1..<40 {
                for (a, b) in [(UInt8(0x22), UInt8(0x22)), (0x5C, 0x0A), (0x01, 0x22)] {
                    var bytes = (0..<40).map { UInt8(0x61 + $0 % 26) }
                    bytes[first] = a
                    bytes[second] = b
                    let s = String(decoding: bytes, as: UTF8.self)
                    #expect(Self.newQuoted(bytes) == Array(Self.oldQuoted(s).utf8), "at \(first) and \(second)")
                }
            }
        }
    }

    @Test func everyControlByteAndQuoteTogether() {
        var bytes = Array(UInt8(0)..<0x20) + Array("\"\\/\u{7F}".utf8)
        bytes += bytes.reversed()
        let s = String(decoding: bytes, as: UTF8.self)
        #expect(Self.newQuoted(bytes) == Array(Self.oldQuoted(s).utf8))
        #expect(String(decoding: Self.newQuoted(Array("a\u{8}\u{C}\u{1B}".utf8)), as: UTF8.self) == #""a\u0008\u000c\u001b""#)
    }

    @Test func randomUnicodeTextMatchesTheOldWriter() {
        var g = Seeded(state: 11)
        let pieces = ["a", "Z", " ", "\"", "\\", "\n", "\r", "\t", "\u{0}", "\u{1F}", "\u{7F}", "é", "κόσμε", "日本語", "🙂", "—", "\u{FFFD}", "\r\n"]
        for _ in 0..<2000 {
            let s = (0..<Int.random(in: 0...60, using: &g)).map { _ in pieces.randomElement(using: &g)! }.joined()
            #expect(Self.newQuoted(Array(s.utf8)) == Array(Self.oldQuoted(s).utf8), "\(s.debugDescription)")
            #expect(JSONLineWriter.quoted(s) == Self.oldQuoted(s))
        }
    }

    /// Bytes that are not UTF-8 cannot reach the old writer (a String repairs them first); the
    /// byte writer copies them as they are and escapes the same ASCII. Renderers hand it only text
    /// that was validated; this pins down what it does otherwise.
    @Test func invalidUTF8IsCopiedAndRepairedTextMatches() {
        var g = Seeded(state: 5)
        for _ in 0..<2000 {
            let bytes = (0..<Int.random(in: 0...40, using: &g)).map { _ in UInt8.random(in: 0...255, using: &g) }
            var expected: [UInt8] = [0x22]
            for b in bytes {
                switch b {
                case 0x22: expected += [0x5C, 0x22]
                case 0x5C: expected += [0x5C, 0x5C]
                case 0x0A: expected += Array("\\n".utf8)
                case 0x0D: expected += Array("\\r".utf8)
                case 0x09: expected += Array("\\t".utf8)
                case 0..<0x20: expected += Array("\\u00".utf8) + Array(Self.oldHex([b]).utf8)
                default: expected.append(b)
                }
            }
            expected.append(0x22)
            #expect(Self.newQuoted(bytes) == expected)
            let repaired = String(decoding: bytes, as: UTF8.self)
            #expect(Self.newQuoted(Array(repaired.utf8)) == Array(Self.oldQuoted(repaired).utf8))
        }
    }

    @Test func hexMatchesTheOldHexForEveryLengthAndByte() {
        var g = Seeded(state: 3)
        let all = Array(UInt8(0)...255)
        for start in 0..<8 {
            let bytes = Array(all[start...])
            #expect(hexString(bytes) == Self.oldHex(bytes))
        }
        for n in 0..<70 {
            let bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &g) }
            #expect(hexString(bytes) == Self.oldHex(bytes))
            #expect(hexString(bytes[...]) == Self.oldHex(bytes))
        }
        for _ in 0..<200 {
            let key = WebSocketMaskingKeyBytes(g.next())
            var b = OutputBuffer()
            b.appendHex(packed: key.packed)
            #expect(b.makeString() == Self.oldHex(key.bytes))
        }
    }

    struct WebSocketMaskingKeyBytes {
        let packed: UInt32
        init(_ r: UInt64) { packed = UInt32(truncatingIfNeeded: r) }
        var bytes: [UInt8] { (0..<4).map { UInt8(truncatingIfNeeded: packed >> (8 * $0)) } }
    }

    /// The eight digits at once below 100,000,000: every value up to 200,000, and 200,000 drawn at
    /// random, digit by digit against division, and written as `String` writes them.
    @Test func eightDigitsAtOnce() {
        var g = Seeded(state: 11)
        let values = Array(UInt64(0)..<200_000) + (0..<200_000).map { _ in g.next() % 100_000_000 }
        var wrong = 0
        for v in values {
            let digits = OutputBuffer.eightDigits(v)
            var rest = v
            for k in (0..<8).reversed() {
                if (digits >> UInt64(8 * k)) & 0xFF != rest % 10 { wrong += 1 }
                rest /= 10
            }
        }
        #expect(wrong == 0)
        for v in values.prefix(2_000) + values.suffix(2_000) {
            var b = OutputBuffer(capacity: 1)
            b.append(decimal: v)
            #expect(b.makeString() == String(v))
        }
    }

    @Test func decimalsMatchStringOfTheValue() {
        var g = Seeded(state: 9)
        var ints: [Int] = [0, 1, 9, 10, 11, 99, 100, 101, 999_999, 1_000_000, -1, -9, -10, Int.max, Int.min, Int.max - 1, Int.min + 1]
        var powers = 1
        for _ in 0..<18 { powers *= 10; ints += [powers - 1, powers, powers + 1, -powers] }
        ints += (0..<1000).map { _ in Int(bitPattern: UInt(truncatingIfNeeded: g.next())) >> Int.random(in: 0...62, using: &g) }
        for v in ints {
            var b = OutputBuffer(capacity: 1)
            b.append(decimal: v)
            #expect(b.makeString() == String(v))
        }
        // Every length and both sides of each power of ten, up to 10^19 (the digit count is
        // worked out from the bit length and one comparison).
        var tens: [UInt64] = []
        var p: UInt64 = 1
        for k in 0...19 {
            tens += [p - 1, p, p + 1, p | (p - 1) >> 1]
            if k < 19 { p *= 10 }
        }
        for v in [UInt64(0), 7, UInt64.max, UInt64.max - 1, 1 << 63] + tens + (0..<200).map({ _ in g.next() }) {
            var b = OutputBuffer(capacity: 1)
            b.append(decimal: v)
            #expect(b.makeString() == String(v))
        }
    }

    /// Decimals put into room reserved once for a run of pieces (the frame and message lines'
    /// keys) read as `String` writes them: one and two digits in place, longer ones out of line,
    /// each within `decimalRoom` (`Int.min`'s sign and 19 digits fill it exactly).
    @Test func decimalsPutIntoReservedRoom() {
        var ints: [Int] = [0, 9, 10, 99, 100, 101, 99_999_999, 100_000_000, -1, -9, -10, -99, -100, Int.max, Int.min]
        var p = 1
        for _ in 0..<18 { p *= 10; ints += [p - 1, p, -p] }
        for v in ints {
            var b = OutputBuffer(capacity: OutputBuffer.decimalRoom)  // exactly the room: none to spare
            b.put(decimal: v)
            #expect(b.makeString() == String(v))
            #expect(b.count <= OutputBuffer.decimalRoom)
        }
        var g = Seeded(state: 13)
        for v in [UInt64.max, 1 << 63, 10, 99, 100] + (0..<2000).map({ _ in g.next() >> (g.next() % 64) }) {
            var b = OutputBuffer(capacity: OutputBuffer.decimalRoom)  // exactly the room: none to spare
            b.put(decimal: v)
            #expect(b.makeString() == String(v))
        }
    }

    /// The copies made without a call, of every length up to 64 (keys, literals, runs of keys
    /// with their values): each lands whole, and nothing before or past it is touched.
    @Test func shortCopiesOfEveryLength() {
        let source = (0..<64).map { UInt8(0x41 + $0 % 26) ^ UInt8($0 / 26) }
        for n in 0...64 {
            var target = [UInt8](repeating: 0, count: 96)
            source.withUnsafeBytes { s in
                target.withUnsafeMutableBytes { t in OutputBuffer.copySmall(s.baseAddress!, to: t.baseAddress! + 16, count: n) }
            }
            #expect(Array(target[16..<(16 + n)]) == Array(source[0..<n]), "length \(n)")
            #expect(target[..<16].allSatisfy { $0 == 0 } && target[(16 + n)...].allSatisfy { $0 == 0 }, "length \(n)")
        }
    }

    /// Times: six decimals, from microseconds, the same digits as printf's %.6f of the value.
    @Test func secondsHaveSixDecimalsLikePrintf() {
        let cases: [(Int64, String)] = [
            (0, "0.000000"), (1, "0.000001"), (280, "0.000280"), (999_999, "0.999999"), (1_000_000, "1.000000"),
            (-5, "-0.000005"), (-1_000_001, "-1.000001"), (1_790_000_000_000_287, "1790000000.000287"),
        ]
        for (micros, text) in cases {
            var b = OutputBuffer(capacity: 1)
            b.jsonSeconds(micros: micros)
            #expect(b.makeString() == text)
        }
        var g = Seeded(state: 11)
        for _ in 0..<2000 {
            // Capture times as the sniffer sees them: whole seconds plus microseconds, as a Double.
            let seconds = Int64(g.next() % 4_000_000_000), micros = Int64(g.next() % 1_000_000)
            let t = Double(seconds) + Double(micros) / 1e6
            #expect(OutputBuffer.micros(t) == seconds * 1_000_000 + micros)
            var b = OutputBuffer(capacity: 1)
            b.jsonSeconds(t)
            #expect(b.makeString() == String(format: "%.6f", t))
        }
        for v in [Double.nan, .infinity, -.infinity, 1e300] {
            var b = OutputBuffer(capacity: 1)
            b.jsonSeconds(v)
            #expect(b.makeString() == "null")
        }
    }

    /// Many times into one buffer, as a line's `time` and `time_relative` follow each other: the
    /// whole seconds kept from one absolute time to the next (same second, next second, other
    /// values in between, negative ones, 13-digit ones) never show up where they do not belong.
    @Test func secondsInARowKeepTheirOwnWholePart() {
        func reference(_ micros: Int64) -> String {
            let m = micros.magnitude
            let fraction = String(m % 1_000_000)
            return (micros < 0 ? "-" : "") + "\(m / 1_000_000)." + String(repeating: "0", count: 6 - fraction.count) + fraction
        }
        var g = Seeded(state: 12)
        var b = OutputBuffer(capacity: 1)
        var expected: [String] = []
        var second: Int64 = 1_790_000_000
        for _ in 0..<20_000 {
            let micros: Int64
            switch g.next() % 8 {
            case 0:
                second += Int64(g.next() % 3)
                micros = second * 1_000_000 + Int64(g.next() % 1_000_000)
            case 1: micros = Int64(g.next() % 10_000_000)
            case 2: micros = -(second * 1_000_000 + Int64(g.next() % 1_000_000))
            case 3: micros = Int64(g.next() % UInt64(Int64.max))
            case 4: micros = 99_999_999_999 + Int64(g.next() % 3)  // around where the cache starts
            default: micros = second * 1_000_000 + Int64(g.next() % 1_000_000)
            }
            b.jsonSeconds(micros: micros)
            expected.append(reference(micros))
            if g.next() % 500 == 0 { b.removeAll() ; expected = [] }
        }
        #expect(b.makeString() == expected.joined(separator: ","))
    }

    @Test func growsPastItsCapacityKeepingWhatWasWritten() {
        var b = OutputBuffer(capacity: 16)
        var expected = ""
        for i in 0..<5000 {
            b.append(decimal: i)
            b.append(",")
            b.append(contentsOf: "é")
            expected += "\(i),é"
        }
        let long = [UInt8](repeating: 0x22, count: 100_000)
        long.withUnsafeBytes { b.appendJSONEscaped($0) }
        expected += String(repeating: "\\\"", count: 100_000)
        #expect(b.makeString() == expected)
        b.removeAll()
        #expect(b.isEmpty && b.makeString() == "")
    }

    /// A remembered piece is copied only while it is still in the buffer, under its own key, and
    /// where the comma state is the one it was written in; the state after it comes back with it.
    @Test func aRememberedPieceIsCopiedOnlyWhereItReadsTheSame() {
        var b = OutputBuffer(capacity: 16)
        b.beginJSONObject()
        b.jsonString("kind", "frame")
        let mark = b.mark
        b.jsonInt("connection", 7)
        b.jsonSeconds("time", 1.5)
        b.remember(since: mark, as: (7, 1))
        b.endJSONLine()
        b.beginJSONObject()
        let copied1 = b.appendRemembered((7, 1))  // right after "{": no comma wanted
        #expect(!copied1)
        b.jsonString("kind", "message")
        let copied2 = b.appendRemembered((7, 2))  // another key
        #expect(!copied2)
        let copied3 = b.appendRemembered((7, 1))
        #expect(copied3)
        b.jsonInt("index", 1)  // the comma state came back with the copy
        b.endJSONLine()
        #expect(b.makeString() == #"""
            {"kind":"frame","connection":7,"time":1.500000}
            {"kind":"message","connection":7,"time":1.500000,"index":1}

            """#)
        b.removeAll()
        b.beginJSONObject()
        b.jsonString("kind", "message")
        let copied4 = b.appendRemembered((7, 1))  // its bytes are gone
        #expect(!copied4)
    }

    @Test func commasNestLikeTheStringWriter() {
        var b = OutputBuffer()
        b.beginJSONObject()
        b.jsonString("kind", "x")
        b.jsonKey("nested")
        b.beginJSONObject()
        b.jsonInt("a", nil)
        b.jsonBool("b", true)
        b.endJSONObject()
        b.jsonKey("list")
        b.beginJSONArray()
        for i in 0..<3 {
            b.beginJSONObject()
            b.jsonInt("i", i)
            b.endJSONObject()
        }
        b.endJSONArray()
        b.jsonKey("empty")
        b.beginJSONArray()
        b.endJSONArray()
        b.jsonDouble("d", 0.5)
        b.jsonDouble("inf", .infinity)
        b.jsonUInt("u", UInt64.max)
        b.endJSONLine()
        b.beginJSONObject()
        b.jsonString("second", "line")
        b.endJSONLine()
        #expect(b.makeString() == """
            {"kind":"x","nested":{"a":null,"b":true},"list":[{"i":0},{"i":1},{"i":2}],"empty":[],"d":0.5,"inf":null,"u":18446744073709551615}
            {"second":"line"}

            """)

        var w = JSONLineWriter()
        w.string("kind", "x")
        w.raw("nested", #"{"a":null}"#)
        w.array("list", ["1", "\"two\""])
        w.double("d", 0.5)
        #expect(w.finish() == #"{"kind":"x","nested":{"a":null},"list":[1,"two"],"d":0.5}"#)
    }

    static func shortest(_ v: Double) -> String {
        var b = OutputBuffer(capacity: 8)
        b.append(shortest: v)
        return b.makeString()
    }

    /// Capture times (seconds since 1970 with micro- or nanosecond fractions), their differences,
    /// and doubles of every magnitude the fast path takes and around its edges: `String(v)` exactly.
    @Test func shortestDecimalMatchesStringOfTheValue() {
        var g = Seeded(state: 1234)
        var values: [Double] = [0, -0.0, 1, 2, 3, 0.1, 0.2, 0.3, 0.5, 1.5, 10, 100, 123.456, 1e-4, 9.999999999999999e-5,
                                0x1p-10, 0x1p-10.nextDown, 0x1p-10.nextUp, 0x1p52, 0x1p52.nextDown, 0x1p52.nextUp, 0x1p53,
                                4503599627370495.5, 1_790_000_000.000028, 1_790_000_000.123456, 1_790_000_000.1234567,
                                .infinity, -.infinity, .nan, -1.5, .leastNonzeroMagnitude, .greatestFiniteMagnitude,
                                1e15, 1e16, 0.000123, 0.001, 0.0009765625, 5e-324]
        for e in -12...53 { values += [0x1p0 * Double(sign: .plus, exponent: e, significand: 1)] }
        for _ in 0..<100_000 {
            let seconds = Double(1_600_000_000 + Int(g.next() % 400_000_000))
            let micro = seconds + Double(g.next() % 1_000_000) / 1e6
            let nano = seconds + Double(Int32(truncatingIfNeeded: g.next() % 1_000_000_000)) / 1e9
            values += [micro, nano, nano - seconds, micro - (seconds - Double(g.next() % 100))]
        }
        for _ in 0..<100_000 {
            values.append(Double(sign: .plus, exponent: Int.random(in: -12...53, using: &g), significand: 1 + Double(g.next() >> 12) / 0x1p52))
            values.append(Double(bitPattern: g.next()))
            values.append(Double(g.next() % 100_000) / [1, 2, 4, 8, 10, 100, 1000, 1024][Int(g.next() % 8)])
        }
        var mismatches = 0
        for v in values where Self.shortest(v) != String(v) {
            mismatches += 1
            if mismatches <= 5 { Issue.record("\(v.bitPattern): \(Self.shortest(v)) != \(String(v))") }
        }
        #expect(mismatches == 0)
    }

    /// The `hexdump -C`-style lines of `decode` and `sniff -v`, as the String-based code made them.
    static func oldHexLines(_ bytes: [UInt8], indent: String) -> [String] {
        var lines: [String] = []
        var i = 0
        while i < bytes.count {
            let row = bytes[i..<min(i + 16, bytes.count)]
            var hex = ""
            for (j, b) in row.enumerated() {
                if j == 8 { hex += " " }
                hex += (b < 16 ? "0" : "") + String(b, radix: 16) + " "
            }
            let pad = String(repeating: " ", count: max(0, 49 - hex.count))
            let ascii = String(row.map { $0 >= 0x20 && $0 < 0x7F ? Character(UnicodeScalar($0)) : "." })
            let off = String(i, radix: 16)
            lines.append("\(indent)\(String(repeating: "0", count: max(0, 4 - off.count)))\(off)  \(hex)\(pad)|\(ascii)|")
            i += 16
        }
        return lines
    }

    @Test func hexDumpLinesMatchTheOldOnes() {
        var g = Seeded(state: 21)
        for n in Array(0...40) + [63, 64, 65, 255, 4096, 70_000] {
            let bytes = (0..<n).map { _ in UInt8.random(in: 0...255, using: &g) }
            for indent in ["", "  ", "   0.000001 #1 C→S   "] {
                #expect(DissectionRenderer.hexLines(bytes, indent: indent) == Self.oldHexLines(bytes, indent: indent), "\(n) bytes")
            }
        }
        let all = Array(UInt8(0)...255)
        #expect(DissectionRenderer.hexLines(all, indent: "") == Self.oldHexLines(all, indent: ""))
    }
}
