/// Reads hex without offsets: `818548656c6c6f`, `81 85 48 65`, `81:85:48`, `81-85-48` (.NET's
/// `BitConverter`), `0x818548…`, over as many lines as it takes. Blank lines split blocks; lines of
/// words (`client:`, `$ echo …`) are labels, not errors.
struct PlainHexParser {
    let text: DumpText

    func parse() throws(HexDumpError) -> HexDump {
        try FreeFormText.readLines(text, format: .plain, what: "hex bytes") { (first: Int, end: Int, bytes: inout [UInt8]) throws(HexDumpError) in
            try scan(from: first, end: end, into: &bytes)
        }
    }

    private static func isSeparator(_ c: UInt8) -> Bool {
        c == UInt8(ascii: ":") || c == UInt8(ascii: "-") || c == UInt8(ascii: ",") || c == UInt8(ascii: ";")
    }

    private func scan(from start: Int, end: Int, into bytes: inout [UInt8]) throws(HexDumpError) {
        let b = text.bytes
        var p = start
        var sawToken = false
        var separatorPending = false
        while p < end {
            let w = text.whitespaceLength(at: p, end: end)
            if w > 0 {
                p += w
                continue
            }
            let c = b[p]
            if Self.isSeparator(c) {
                guard sawToken, !separatorPending else {
                    throw text.error(.unexpectedCharacter, at: p, "unexpected \(text.describeCharacter(at: p))")
                }
                separatorPending = true
                p += 1
                continue
            }
            var digitsStart = p
            if c == UInt8(ascii: "0"), p + 2 < end, b[p + 1] | 0x20 == UInt8(ascii: "x"), DumpText.isHexDigit(b[p + 2]) {
                digitsStart = p + 2
            }
            let run = text.hexRunEnd(from: digitsStart, end: end)
            if run == digitsStart {
                throw text.error(.notHexDigit, at: p, "\(text.describeCharacter(at: p)) is not a hex digit")
            }
            if run < end, text.whitespaceLength(at: run, end: end) == 0, !Self.isSeparator(b[run]) {
                throw text.error(.notHexDigit, at: run, "\(text.describeCharacter(at: run)) is not a hex digit")
            }
            if (run - digitsStart) % 2 != 0 {
                throw text.error(.oddDigitCount, at: p, "odd number of hex digits in \(text.describeToken(p..<run))")
            }
            var i = digitsStart
            while i < run {
                bytes.append(DumpText.hexValue(b[i])! << 4 | DumpText.hexValue(b[i + 1])!)
                i += 2
            }
            sawToken = true
            separatorPending = false
            p = run
        }
    }
}

/// Reads `0x81, 0x85, 0x48` (commas optional, any lines), each item one byte.
struct PrefixedListParser {
    let text: DumpText

    func parse() throws(HexDumpError) -> HexDump {
        try FreeFormText.readLines(text, format: .prefixedList, what: "0x-prefixed bytes") { (first: Int, end: Int, bytes: inout [UInt8]) throws(HexDumpError) in
            try scanLine(from: first, end: end, into: &bytes)
        }
    }

    private func scanLine(from first: Int, end: Int, into bytes: inout [UInt8]) throws(HexDumpError) {
        let b = text.bytes
        var p = first
        var sawItem = false
        var commaPending = false
        while p < end {
            let w = text.whitespaceLength(at: p, end: end)
            if w > 0 {
                p += w
                continue
            }
            if b[p] == UInt8(ascii: ",") {
                guard sawItem, !commaPending else { throw text.error(.unexpectedCharacter, at: p, "unexpected ','") }
                commaPending = true
                p += 1
                continue
            }
            guard p + 1 < end, b[p] == UInt8(ascii: "0"), b[p + 1] | 0x20 == UInt8(ascii: "x") else {
                let tokenEnd = FreeFormText.tokenEnd(text, from: p, end: end)
                throw text.error(.unexpectedCharacter, at: p, "expected a 0x-prefixed byte, found \(text.describeToken(p..<tokenEnd))")
            }
            let run = text.hexRunEnd(from: p + 2, end: end)
            if run < end, text.whitespaceLength(at: run, end: end) == 0, b[run] != UInt8(ascii: ",") {
                throw text.error(.notHexDigit, at: run, "\(text.describeCharacter(at: run)) is not a hex digit")
            }
            switch run - (p + 2) {
            case 0:
                throw text.error(.notHexDigit, at: p + 2, "'0x' without hex digits")
            case 1:
                bytes.append(DumpText.hexValue(b[p + 2])!)
            case 2:
                bytes.append(DumpText.hexValue(b[p + 2])! << 4 | DumpText.hexValue(b[p + 3])!)
            default:
                throw text.error(.valueOutOfRange, at: p, "\(text.describeToken(p..<run)) does not fit in a byte")
            }
            sawItem = true
            commaPending = false
            p = run
        }
    }
}

/// Reads Node.js's rendering of a Buffer, `<Buffer 81 05 48 65 6c 6c 6f>`, one block per buffer.
struct NodeBufferParser {
    let text: DumpText
    private static let opening = Array("<Buffer".utf8)

    static func detects(_ text: DumpText) -> Bool {
        FreeFormText.find(opening, in: text.bytes, from: 0) != nil
    }

    func parse() throws(HexDumpError) -> HexDump {
        let b = text.bytes
        var out = BlockCollector()
        var searchFrom = 0
        while let found = FreeFormText.find(Self.opening, in: b, from: searchFrom) {
            var p = found + Self.opening.count
            out.open(label: nil)
            while true {
                while p < b.count, b[p] == 0x20 || b[p] == 0x0A || b[p] == 0x0D || b[p] == 0x09 { p += 1 }
                guard p < b.count else { throw text.error(.unterminated, at: found, "'<Buffer' is never closed with '>'") }
                if b[p] == UInt8(ascii: ">") { break }
                if b[p] == UInt8(ascii: ".") {
                    var end = p
                    while end < b.count, b[end] != UInt8(ascii: ">"), b[end] != 0x0A { end += 1 }
                    throw text.error(.truncatedDump, at: p, "Node.js left out bytes (\(text.string(p..<end))); print buf.toString('hex') to get them all")
                }
                let run = text.hexRunEnd(from: p, end: b.count)
                if run - p != 2 {
                    if run - p > 2 || (run - p == 1 && (run == b.count || b[run] == 0x20 || b[run] == UInt8(ascii: ">"))) {
                        throw text.error(.oddDigitCount, at: p, "expected two hex digits, found \(text.describeToken(p..<run))")
                    }
                    let bad = run
                    throw text.error(.notHexDigit, at: bad, "\(text.describeCharacter(at: bad)) is not a hex digit")
                }
                out.bytes.append(DumpText.hexValue(b[p])! << 4 | DumpText.hexValue(b[p + 1])!)
                p = run
            }
            out.close()
            searchFrom = p + 1
        }
        return try out.finish(format: .nodeBuffer, noBytes: HexDumpError(code: .noBytes, line: nil, column: nil, reason: "no bytes in the Node.js Buffer"))
    }
}

/// Telling prose from hex in formats without a fixed layout.
enum FreeFormText {
    /// The line walk shared by the free-form readers: blank lines close a block, lines of words
    /// become the next block's label, and every other line is handed to `scanLine` (from its first
    /// non-blank byte to its end) to append bytes to the open block.
    static func readLines(
        _ text: DumpText, format: HexDumpFormat, what: String,
        scanLine: (Int, Int, inout [UInt8]) throws(HexDumpError) -> Void
    ) throws(HexDumpError) -> HexDump {
        var out = BlockCollector()
        var textRun: [Int] = []
        var textLines = 0
        for line in 0..<text.lineCount {
            let end = text.lineEnds[line]
            let first = text.skipWhitespace(from: text.lineStarts[line], end: end)
            if first == end {
                out.close()
                textRun.removeAll()
                continue
            }
            if isTextLine(text, line) {
                out.close()
                textRun.append(line)
                textLines += 1
                continue
            }
            if !out.isOpen { out.open(label: text.label(fromLines: textRun)?.text) }
            textRun.removeAll()
            try scanLine(first, end, &out.bytes)
        }
        return try out.finish(format: format, noBytes: noBytes(what, textLines: textLines))
    }

    /// A line of words rather than bytes (`client:`, `Frame bytes`, `$ echo …`, a markdown fence):
    /// its first token is not hex, and it holds a word of two or more letters at least one of which
    /// is not a hex digit, or it starts like a prompt or a comment. A line that starts with hex is
    /// always read, so `81 85 4g` and `4d 51 58  MQX` are reported rather than skipped, and so is a
    /// typo like `g1 85`, which has no word.
    static func isTextLine(_ text: DumpText, _ line: Int) -> Bool {
        let b = text.bytes
        let end = text.lineEnds[line]
        let first = text.skipWhitespace(from: text.lineStarts[line], end: end)
        guard first < end else { return false }
        switch b[first] {
        case UInt8(ascii: "$"), UInt8(ascii: "#"), UInt8(ascii: "%"), UInt8(ascii: "/"), UInt8(ascii: "`"): return true
        default: break
        }
        var tokenEnd = first
        while tokenEnd < end, text.whitespaceLength(at: tokenEnd, end: end) == 0 { tokenEnd += 1 }
        var digits = first
        if tokenEnd - first > 2, b[first] == UInt8(ascii: "0"), b[first + 1] | 0x20 == UInt8(ascii: "x") { digits += 2 }
        var hexLike = true
        for i in digits..<tokenEnd where !DumpText.isHexDigit(b[i]) {
            let c = b[i]
            if c != UInt8(ascii: ":") && c != UInt8(ascii: "-") && c != UInt8(ascii: ",") && c != UInt8(ascii: ";") {
                hexLike = false
                break
            }
        }
        if hexLike { return false }
        var i = first
        while i < end {
            guard DumpText.isLetter(b[i]) else {
                i += 1
                continue
            }
            var start = i
            if b[i] | 0x20 == UInt8(ascii: "x"), i > first, b[i - 1] == UInt8(ascii: "0") { start += 1 }
            var length = 0
            var hasNonHex = false
            var j = start
            while j < end, DumpText.isLetter(b[j]) {
                if !DumpText.isHexDigit(b[j]) { hasNonHex = true }
                length += 1
                j += 1
            }
            if length >= 2 && hasNonHex { return true }
            i = max(j, i + 1)
        }
        return false
    }

    /// The error for a text without bytes, pointing at the notes when there were some.
    static func noBytes(_ what: String, textLines: Int) -> HexDumpError {
        let reason = textLines == 0 ? "no \(what) found"
            : "no \(what) found; \(textLines) line\(textLines == 1 ? "" : "s") of words \(textLines == 1 ? "was" : "were") skipped as notes"
        return HexDumpError(code: .noBytes, line: nil, column: nil, reason: reason)
    }

    /// The end of the token at `i`: up to whitespace or a comma.
    static func tokenEnd(_ text: DumpText, from i: Int, end: Int) -> Int {
        var j = i
        while j < end, text.whitespaceLength(at: j, end: end) == 0, text.bytes[j] != UInt8(ascii: ",") { j += 1 }
        return max(j, i + 1)
    }

    static func find(_ needle: [UInt8], in haystack: [UInt8], from start: Int) -> Int? {
        guard !needle.isEmpty, haystack.count >= needle.count else { return nil }
        var i = start
        let last = haystack.count - needle.count
        while i <= last {
            if haystack[i] == needle[0] {
                var k = 1
                while k < needle.count, haystack[i + k] == needle[k] { k += 1 }
                if k == needle.count { return i }
            }
            i += 1
        }
        return nil
    }
}
