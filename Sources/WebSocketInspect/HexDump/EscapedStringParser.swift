/// Reads bytes written as string literals: Python's `b'\x81\x05Hello'`, C's and JavaScript's
/// `"\x81\x05"`, Wireshark's "Copy as Escaped String", or bare `\x81\x05Hello` as typed for printf.
/// Characters between escapes are their own (UTF-8) bytes.
///
/// Literals separated only by whitespace, `+`, parentheses or a line-continuing backslash form one
/// block (Python's implicit concatenation); other text or a blank line between them starts a new one.
struct EscapedStringParser {
    let text: DumpText

    static func detects(_ text: DumpText) -> Bool {
        let b = text.bytes
        var i = 0
        while i + 2 < b.count {
            if b[i] == UInt8(ascii: "\\"), b[i + 1] | 0x20 == UInt8(ascii: "x"), DumpText.isHexDigit(b[i + 2]) { return true }
            i += 1
        }
        return false
    }

    func parse() throws(HexDumpError) -> HexDump {
        let quoted = text.bytes.contains(UInt8(ascii: "\"")) || text.bytes.contains(UInt8(ascii: "'"))
        var out = BlockCollector()
        if quoted {
            try readLiterals(into: &out)
        } else {
            try readBareLines(into: &out)
        }
        return try out.finish(format: .escapedString, noBytes: HexDumpError(code: .noBytes, line: nil, column: nil, reason: "no string literal found"))
    }

    private func readBareLines(into out: inout BlockCollector) throws(HexDumpError) {
        for line in 0..<text.lineCount {
            let end = text.lineEnds[line]
            let first = text.skipWhitespace(from: text.lineStarts[line], end: end)
            if first == end {
                out.close()
                continue
            }
            if text.bytes[first...].starts(with: "```".utf8) { continue }
            if !out.isOpen { out.open(label: nil) }
            var p = first
            let last = text.trimmedEnd(start: first, end: end)
            while p < last {
                if text.bytes[p] == UInt8(ascii: "\\") {
                    let (value, next) = try Self.decodeEscape(text, at: p, end: last)
                    out.bytes.append(value)
                    p = next
                } else {
                    out.bytes.append(text.bytes[p])
                    p += 1
                }
            }
        }
    }

    private func readLiterals(into out: inout BlockCollector) throws(HexDumpError) {
        let b = text.bytes
        var p = 0
        var separated = true
        var newlines = 0
        while p < b.count {
            let c = b[p]
            if c == UInt8(ascii: "\"") || c == UInt8(ascii: "'") {
                if separated || !out.isOpen { out.open(label: nil) }
                p = try readLiteral(openingAt: p, into: &out.bytes)
                separated = false
                newlines = 0
                continue
            }
            switch c {
            case 0x0A, 0x0D:
                if c == 0x0A || p + 1 == b.count || b[p + 1] != 0x0A { newlines += 1 }
                if newlines >= 2 { separated = true }
            case 0x20, 0x09, UInt8(ascii: "+"), UInt8(ascii: "("), UInt8(ascii: ")"), UInt8(ascii: "\\"):
                break
            default:
                if DumpText.isDigit(c), p == 0 || !DumpText.isIdentifierCharacter(b[p - 1]), isListItem(at: p) {
                    // `{'\x81', 0x05}` is an array with a character in it, not a string.
                    throw text.error(.unexpectedCharacter, at: p, "a number outside the string literals")
                }
                // String prefixes (b'', rb'', u"", bash's $'') belong to the literal after them.
                var q = p
                while q < b.count, q - p < 2, DumpText.isLetter(b[q]) || b[q] == UInt8(ascii: "$") { q += 1 }
                if q > p, q < b.count, b[q] == UInt8(ascii: "'") || b[q] == UInt8(ascii: "\"") {
                    p = q
                    continue
                }
                separated = true
                newlines = 0
            }
            p += 1
        }
    }

    /// Whether the number at `i` sits in a list: after `,`, `[` or `{`, or before `,`.
    private func isListItem(at i: Int) -> Bool {
        let b = text.bytes
        var before = i - 1
        while before >= 0, b[before] == 0x20 || b[before] == 0x09 || b[before] == 0x0A || b[before] == 0x0D { before -= 1 }
        if before >= 0, b[before] == UInt8(ascii: ",") || b[before] == UInt8(ascii: "[") || b[before] == UInt8(ascii: "{") { return true }
        var after = i
        while after < b.count, DumpText.isIdentifierCharacter(b[after]) { after += 1 }
        while after < b.count, b[after] == 0x20 || b[after] == 0x09 { after += 1 }
        return after < b.count && b[after] == UInt8(ascii: ",")
    }

    /// Reads the literal whose quote is at `open`; returns the index after its closing quote.
    private func readLiteral(openingAt open: Int, into bytes: inout [UInt8]) throws(HexDumpError) -> Int {
        let b = text.bytes
        let quote = b[open]
        let end = text.lineEnds[text.lineIndex(of: open)]
        var p = open + 1
        while p < end {
            let c = b[p]
            if c == quote { return p + 1 }
            if c == UInt8(ascii: "\\") {
                let (value, next) = try Self.decodeEscape(text, at: p, end: end)
                bytes.append(value)
                p = next
            } else {
                bytes.append(c)
                p += 1
            }
        }
        throw text.error(.unterminated, at: open, "string literal is not closed on its line")
    }

    /// Decodes the escape whose backslash is at `i`: \xHH, \n \r \t \\ \' \" \0, octal \ooo,
    /// \a \b \f \v \e \? \/, and \uHHHH or \u{HH} up to 0xFF. Returns the byte and the index after.
    static func decodeEscape(_ text: DumpText, at i: Int, end: Int) throws(HexDumpError) -> (UInt8, Int) {
        let b = text.bytes
        guard i + 1 < end else { throw text.error(.badEscape, at: i, "'\\' at the end of the line") }
        let c = b[i + 1]
        switch c {
        case UInt8(ascii: "x"), UInt8(ascii: "X"):
            guard i + 3 < end, let high = DumpText.hexValue(b[i + 2]), let low = DumpText.hexValue(b[i + 3]) else {
                throw text.error(.badEscape, at: i, "\\x needs two hex digits")
            }
            return (high << 4 | low, i + 4)
        case UInt8(ascii: "n"): return (0x0A, i + 2)
        case UInt8(ascii: "r"): return (0x0D, i + 2)
        case UInt8(ascii: "t"): return (0x09, i + 2)
        case UInt8(ascii: "a"): return (0x07, i + 2)
        case UInt8(ascii: "b"): return (0x08, i + 2)
        case UInt8(ascii: "f"): return (0x0C, i + 2)
        case UInt8(ascii: "v"): return (0x0B, i + 2)
        case UInt8(ascii: "e"), UInt8(ascii: "E"): return (0x1B, i + 2)
        case UInt8(ascii: "\\"), UInt8(ascii: "'"), UInt8(ascii: "\""), UInt8(ascii: "?"), UInt8(ascii: "/"): return (c, i + 2)
        case UInt8(ascii: "0")...UInt8(ascii: "7"):
            var value = 0
            var j = i + 1
            while j < end, j < i + 4, b[j] >= UInt8(ascii: "0"), b[j] <= UInt8(ascii: "7") {
                value = value * 8 + Int(b[j] - UInt8(ascii: "0"))
                j += 1
            }
            guard value <= 0xFF else { throw text.error(.badEscape, at: i, "\(text.describeToken(i..<j)) is not a byte") }
            return (UInt8(value), j)
        case UInt8(ascii: "u"):
            var start = i + 2
            var stop: Int
            let braced = start < end && b[start] == UInt8(ascii: "{")
            if braced {
                start += 1
                stop = text.hexRunEnd(from: start, end: end)
                guard stop > start, stop < end, b[stop] == UInt8(ascii: "}") else {
                    throw text.error(.badEscape, at: i, "\\u{ needs hex digits and '}'")
                }
            } else {
                stop = min(start + 4, end)
                guard text.hexRunEnd(from: start, end: stop) == start + 4 else {
                    throw text.error(.badEscape, at: i, "\\u needs four hex digits")
                }
            }
            var value = 0
            for k in start..<stop where value <= 0xFF {
                value = value << 4 | Int(DumpText.hexValue(b[k])!)
            }
            let next = braced ? stop + 1 : stop
            guard value <= 0xFF else {
                throw text.error(.badEscape, at: i, "\(text.describeToken(i..<next)) is not a byte (only \\u0000 to \\u00ff are)")
            }
            return (UInt8(value), next)
        default:
            throw text.error(.badEscape, at: i, "unknown escape \(text.describeToken(i..<(i + 1 + Self.scalarLength(b[i + 1]))))")
        }
    }

    private static func scalarLength(_ lead: UInt8) -> Int {
        switch lead {
        case 0xF0...: 4
        case 0xE0...: 3
        case 0xC0...: 2
        default: 1
        }
    }
}
