/// The input as UTF-8 bytes cut into lines, with the character classes and error positions every
/// reader shares. Readers work on bytes, never on `Character`s: a 10 MB dump is 10 M bytes to look at once.
struct DumpText {
    let bytes: [UInt8]
    /// Byte index of the first character of each line.
    let lineStarts: [Int]
    /// Byte index just past the last character of each line (its terminator excluded).
    let lineEnds: [Int]

    init(_ string: String) {
        let bytes = Array(string.utf8)
        var starts: [Int] = []
        var ends: [Int] = []
        starts.reserveCapacity(bytes.count / 40 + 1)
        ends.reserveCapacity(bytes.count / 40 + 1)
        var start = 0
        var i = 0
        // \n, \r\n and a lone \r all end a line.
        while i < bytes.count {
            let c = bytes[i]
            if c == 0x0A || c == 0x0D {
                starts.append(start)
                ends.append(i)
                i += (c == 0x0D && i + 1 < bytes.count && bytes[i + 1] == 0x0A) ? 2 : 1
                start = i
            } else {
                i += 1
            }
        }
        if start < bytes.count {
            starts.append(start)
            ends.append(bytes.count)
        }
        self.bytes = bytes
        self.lineStarts = starts
        self.lineEnds = ends
    }

    var lineCount: Int { lineStarts.count }

    // MARK: Character classes

    @inline(__always)
    static func hexValue(_ c: UInt8) -> UInt8? {
        switch c {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): c &- UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): c &- UInt8(ascii: "a") &+ 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): c &- UInt8(ascii: "A") &+ 10
        default: nil
        }
    }

    @inline(__always)
    static func isHexDigit(_ c: UInt8) -> Bool {
        hexValue(c) != nil
    }

    @inline(__always)
    static func isLetter(_ c: UInt8) -> Bool {
        (c | 0x20) >= UInt8(ascii: "a") && (c | 0x20) <= UInt8(ascii: "z")
    }

    @inline(__always)
    static func isDigit(_ c: UInt8) -> Bool {
        c >= UInt8(ascii: "0") && c <= UInt8(ascii: "9")
    }

    @inline(__always)
    static func isIdentifierCharacter(_ c: UInt8) -> Bool {
        isLetter(c) || isDigit(c) || c == UInt8(ascii: "_")
    }

    /// The length in bytes of the whitespace character at `i`, or 0 when there is none. Besides
    /// space and tab this takes the Unicode spaces that pasting from web pages and chat brings
    /// (no-break space, the U+2000 family, the byte order mark).
    @inline(__always)
    func whitespaceLength(at i: Int, end: Int) -> Int {
        let c = bytes[i]
        if c == 0x20 || c == 0x09 || c == 0x0B || c == 0x0C { return 1 }
        if c < 0xC2 { return 0 }
        return unicodeSpaceLength(at: i, end: end)
    }

    private func unicodeSpaceLength(at i: Int, end: Int) -> Int {
        let c = bytes[i]
        if c == 0xC2, i + 1 < end, bytes[i + 1] == 0xA0 { return 2 }  // U+00A0
        guard i + 2 < end else { return 0 }
        let (c1, c2) = (bytes[i + 1], bytes[i + 2])
        switch (c, c1) {
        case (0xE2, 0x80): return (0x80...0x8B).contains(c2) || c2 == 0xAF ? 3 : 0  // U+2000–200B, U+202F
        case (0xE2, 0x81): return c2 == 0x9F ? 3 : 0  // U+205F
        case (0xE3, 0x80): return c2 == 0x80 ? 3 : 0  // U+3000
        case (0xEF, 0xBB): return c2 == 0xBF ? 3 : 0  // U+FEFF
        default: return 0
        }
    }

    /// The first index at or after `i` that is not whitespace (or `end`).
    @inline(__always)
    func skipWhitespace(from i: Int, end: Int) -> Int {
        var i = i
        while i < end {
            let w = whitespaceLength(at: i, end: end)
            if w == 0 { break }
            i += w
        }
        return i
    }

    /// The index just past the last non-whitespace character in `start..<end` (or `start`).
    func trimmedEnd(start: Int, end: Int) -> Int {
        var last = start
        var i = start
        while i < end {
            let w = whitespaceLength(at: i, end: end)
            if w == 0 {
                i += 1
                last = i
            } else {
                i += w
            }
        }
        return last
    }

    /// The index just past the run of hex digits starting at `i`.
    @inline(__always)
    func hexRunEnd(from i: Int, end: Int) -> Int {
        var i = i
        while i < end, Self.isHexDigit(bytes[i]) { i += 1 }
        return i
    }

    // MARK: Text for messages

    func string(_ range: Range<Int>) -> String {
        String(decoding: bytes[range], as: UTF8.self)
    }

    /// The trimmed text of line `line`.
    func trimmedLine(_ line: Int) -> String {
        let start = skipWhitespace(from: lineStarts[line], end: lineEnds[line])
        return string(start..<trimmedEnd(start: start, end: lineEnds[line]))
    }

    /// The character at `i` as an error message shows it: `'g'`, `'é'`, or `U+0007` for controls.
    func describeCharacter(at i: Int) -> String {
        guard i < bytes.count else { return "end of input" }
        let c = bytes[i]
        if c < 0x20 || c == 0x7F { return "U+" + hex(UInt64(c), width: 4).uppercased() }
        if c < 0x80 { return "'\(Character(Unicode.Scalar(c)))'" }
        var end = i + 1
        while end < bytes.count, end < i + 4, bytes[end] & 0xC0 == 0x80 { end += 1 }
        return "'\(string(i..<end))'"
    }

    /// A token for an error message, shortened when long.
    func describeToken(_ range: Range<Int>) -> String {
        if range.count <= 24 { return "'\(string(range))'" }
        return "'\(string(range.lowerBound..<(range.lowerBound + 20)))…'"
    }

    // MARK: Positions

    /// The 0-based line holding byte `index` (an index at a line's end belongs to that line).
    func lineIndex(of index: Int) -> Int {
        var low = 0
        var high = lineStarts.count - 1
        if high < 0 { return 0 }
        while low < high {
            let mid = (low + high + 1) / 2
            if lineStarts[mid] <= index { low = mid } else { high = mid - 1 }
        }
        return low
    }

    /// 1-based line and character column of byte `index`.
    func location(of index: Int) -> (line: Int, column: Int) {
        guard lineCount > 0 else { return (1, 1) }
        let line = lineIndex(of: index)
        var column = 1
        var i = lineStarts[line]
        let stop = min(index, bytes.count)
        while i < stop {
            if bytes[i] & 0xC0 != 0x80 { column += 1 }
            i += 1
        }
        return (line + 1, column)
    }

    func error(_ code: HexDumpError.Code, at index: Int, _ reason: String) -> HexDumpError {
        let (line, column) = location(of: index)
        return HexDumpError(code: code, line: line, column: column, reason: reason)
    }

    /// An error about the whole of the 0-based line `line`.
    func error(_ code: HexDumpError.Code, line: Int, _ reason: String) -> HexDumpError {
        HexDumpError(code: code, line: line + 1, column: nil, reason: reason)
    }

    // MARK: Labels

    /// Whether line `line` opens or closes a markdown code block.
    func isFence(_ line: Int) -> Bool {
        let start = skipWhitespace(from: lineStarts[line], end: lineEnds[line])
        return bytes[start..<lineEnds[line]].starts(with: "```".utf8)
    }

    /// The label of a block from the text lines directly above it: the last line that is not
    /// indented, with the indented lines after it (tcpdump -v continues its packet line indented),
    /// trimmed, without a trailing colon. Markdown fences are not labels.
    func label(fromLines allLines: [Int]) -> (text: String, line: Int)? {
        let lines = allLines.filter { !isFence($0) }
        guard var first = lines.indices.last else { return nil }
        while first > lines.startIndex {
            let start = lineStarts[lines[first]]
            let indented = start < lineEnds[lines[first]] && whitespaceLength(at: start, end: lineEnds[lines[first]]) > 0
            if !indented { break }
            first -= 1
        }
        var text = lines[first...].map { trimmedLine($0) }.joined(separator: " ")
        while text.last == ":" || text.last == " " { text.removeLast() }
        return text.isEmpty ? nil : (text, lines[first])
    }
}

/// `value` in lowercase hex, at least `width` digits.
func hex(_ value: UInt64, width: Int = 2) -> String {
    let digits = String(value, radix: 16)
    return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
}

/// Bytes, blocks and labels as a reader produces them.
struct BlockCollector {
    var bytes: [UInt8] = []
    var blocks: [Range<Int>] = []
    var labels: [String?] = []
    private(set) var openStart: Int?
    private var openLabel: String?

    var isOpen: Bool { openStart != nil }

    mutating func open(label: String?) {
        if isOpen { close() }
        openStart = bytes.count
        openLabel = label
    }

    /// Ends the open block; an empty one is dropped. Returns the closed block and its label.
    @discardableResult
    mutating func close() -> (range: Range<Int>, label: String?)? {
        guard let start = openStart else { return nil }
        openStart = nil
        guard bytes.count > start else { return nil }
        blocks.append(start..<bytes.count)
        labels.append(openLabel)
        return (start..<bytes.count, openLabel)
    }

    consuming func finish(format: HexDumpFormat, noBytes: @autoclosure () -> HexDumpError) throws(HexDumpError) -> HexDump {
        close()
        guard !bytes.isEmpty else { throw noBytes() }
        return HexDump(bytes: bytes, format: format, blocks: blocks, blockLabels: labels)
    }
}
