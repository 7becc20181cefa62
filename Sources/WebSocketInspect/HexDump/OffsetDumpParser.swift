/// What one line of an offset dump is, for a given layout.
enum DumpLineKind {
    case blank
    /// Anything that is not a dump line: a packet line, a buffer name, a shell prompt.
    case text
    /// `*`: the line above repeats until the next offset.
    case repeatMark(at: Int)
    /// An offset alone: the length of the dump (hexdump -C, od).
    case end(offset: Range<Int>)
    /// Offset digits, and where the first hex group starts.
    case dump(offset: Range<Int>, hex: Int)
    /// Looks like a dump line but breaks the layout (offset width, colon, spacing).
    case malformed(HexDumpError)
}

/// Reads xxd, hexdump, od, tcpdump and Wireshark dumps: lines of offset, hex, text.
///
/// Each line's hex ends where the layout says (a gap wider than the one between groups, or the
/// text delimiter), and no later than the next line's offset allows; every offset must follow from
/// the bytes before it. A block starts after text or blank lines or where offsets restart at 0.
struct OffsetDumpParser {
    let text: DumpText
    let layout: OffsetDumpLayout

    /// Whether the text has lines of this layout, so that the layout is worth trying: one dump
    /// line, or for the layouts with the weakest signature a dump line at an offset that is a multiple
    /// of 16, two dump lines, or a dump line and a length line (`hexdump -C -s 3`).
    func isApplicable() -> Bool {
        var dumpLines = 0
        var endLines = 0
        for line in 0..<text.lineCount {
            switch classify(line) {
            case .dump(let offset, _):
                if !layout.detectionNeedsAlignedOffset || text.bytes[offset.upperBound - 1] == UInt8(ascii: "0") { return true }
                dumpLines += 1
            case .end:
                endLines += 1
            default:
                continue
            }
            if dumpLines >= 2 || (dumpLines >= 1 && endLines >= 1) { return true }
        }
        return false
    }

    // MARK: Lines

    func classify(_ line: Int) -> DumpLineKind {
        let b = text.bytes
        let end = text.lineEnds[line]
        let first = text.skipWhitespace(from: text.lineStarts[line], end: end)
        if first == end { return .blank }
        if b[first] == UInt8(ascii: "*"), text.skipWhitespace(from: first + 1, end: end) == end {
            if layout.allowsRepeatLines { return .repeatMark(at: first) }
            return .malformed(text.error(.layoutMismatch, at: first, "'*' lines are not part of the \(layout.format.name) layout"))
        }
        var q = first
        if layout.offsetPrefix {
            guard q + 1 < end, b[q] == UInt8(ascii: "0"), b[q + 1] | 0x20 == UInt8(ascii: "x") else { return .text }
            q += 2
        }
        let digits = q..<text.hexRunEnd(from: q, end: end)
        let count = digits.count
        if count == 0 { return .text }
        q = digits.upperBound
        // A short number starting a line is text ("12:00:00.000 IP …"); four digits and more
        // before a hex group are an offset, and a broken one is an error, not text to skip.
        let offsetLike = count >= 4 || layout.offsetPrefix
        if layout.offsetColon {
            guard q < end, b[q] == UInt8(ascii: ":") else {
                let r = text.skipWhitespace(from: q, end: end)
                if offsetLike, r > q, startsWithGroup(at: r, end: end) {
                    return .malformed(text.error(.layoutMismatch, at: q, "expected ':' after the offset (\(layout.format.name) layout)"))
                }
                return .text
            }
            q += 1
        } else if q < end, b[q] == UInt8(ascii: ":") {
            // Another tool's offset (xxd's) among this layout's lines.
            let r = text.skipWhitespace(from: q + 1, end: end)
            if offsetLike, r > q + 1, startsWithGroup(at: r, end: end) {
                return .malformed(text.error(.layoutMismatch, at: q, "unexpected ':' after the offset (\(layout.format.name) layout)"))
            }
            return .text
        }
        let r = text.skipWhitespace(from: q, end: end)
        let gap = gapWidth(q, r)
        if r == end {
            guard offsetLike, layout.offsetDigits.contains(count) else { return .text }
            if layout.allowsEndOffset && !layout.offsetColon { return .end(offset: digits) }
            return .malformed(text.error(.layoutMismatch, at: digits.lowerBound, "an offset without bytes (\(layout.format.name) layout)"))
        }
        if gap == 0 {
            if layout.offsetColon && layout.offsetDigits.contains(count) {
                return .malformed(text.error(.layoutMismatch, at: r, "expected a space after the offset"))
            }
            return .text
        }
        let groupFollows = startsWithGroup(at: r, end: end)
        if !layout.offsetDigits.contains(count) {
            if offsetLike && groupFollows {
                let bound = layout.offsetDigits.upperBound >= 16 ? "at least \(layout.offsetDigits.lowerBound)" : "\(layout.offsetDigits.lowerBound) to \(layout.offsetDigits.upperBound)"
                return .malformed(text.error(.layoutMismatch, at: digits.lowerBound, "offset \(text.describeToken(digits)) has \(count) digits; \(layout.format.name) offsets have \(bound)"))
            }
            return .text
        }
        if !layout.offsetGap.contains(gap) {
            if groupFollows || layout.offsetColon {
                let wanted = layout.offsetGap.count == 1 ? "\(layout.offsetGap.lowerBound)" : "\(layout.offsetGap.lowerBound) to \(layout.offsetGap.upperBound)"
                return .malformed(text.error(.layoutMismatch, at: q, "expected \(wanted) space\(layout.offsetGap.upperBound == 1 ? "" : "s") after the offset, found \(gap) (\(layout.format.name) layout)"))
            }
            return .text
        }
        if !layout.offsetColon && !DumpText.isHexDigit(b[r]) { return .text }
        return .dump(offset: digits, hex: r)
    }

    /// Width of the whitespace in `start..<end`: a space is 1, a tab 2 (it stands for a wide gap).
    @inline(__always)
    private func gapWidth(_ start: Int, _ end: Int) -> Int {
        var width = 0
        var i = start
        while i < end {
            width += text.bytes[i] == 0x09 ? 2 : 1
            i += text.whitespaceLength(at: i, end: end)
        }
        return width
    }

    /// A run of two or more hex digits at `i` that ends the line or is followed by whitespace.
    private func startsWithGroup(at i: Int, end: Int) -> Bool {
        let run = text.hexRunEnd(from: i, end: end)
        return run - i >= 2 && (run == end || text.whitespaceLength(at: run, end: end) > 0)
    }

    /// A group of this layout's size (or a short last one) at `i`.
    @inline(__always)
    private func isGroup(at i: Int, end: Int, digits: Int) -> Bool {
        let run = text.hexRunEnd(from: i, end: end)
        let length = run - i
        guard length >= 2, length % 2 == 0, run == end || text.whitespaceLength(at: run, end: end) > 0 else { return false }
        return length == digits || (length < digits && layout.lastGroupMayBeShort)
    }

    /// Reads the hex groups of one line from `start`, appending bytes; returns how many.
    ///
    /// Groups follow each other one space apart (hexdump -C and old Wireshark put one more after
    /// the eighth byte, hexdump -x four). Anything after a wider gap or the text delimiter is the text column.
    /// When the next offset says how many bytes the line holds (`limit`), reading stops there
    /// unless an unmistakable group follows, which the offset check then reports.
    func scanHex(line: Int, from start: Int, limit: Int?, into bytes: inout [UInt8]) throws(HexDumpError) -> Int {
        let b = text.bytes
        let end = text.lineEnds[line]
        // hexdump -x puts as many spaces between words as after the offset.
        var groupGap = 1
        if layout.groupGapFollowsOffsetGap {
            var i = start
            while i > text.lineStarts[line], text.whitespaceLength(at: i - 1, end: end) == 1 { i -= 1 }
            groupGap = gapWidth(i, start)
        }
        var p = start
        var count = 0
        var group = layout.groupDigits
        var shortGroup: Range<Int>?
        while true {
            let tokenStart = p
            let runEnd = text.hexRunEnd(from: p, end: end)
            if runEnd < end && text.whitespaceLength(at: runEnd, end: end) == 0 {
                throw text.error(.notHexDigit, at: runEnd, "\(text.describeCharacter(at: runEnd)) is not a hex digit")
            }
            if let short = shortGroup, let size = group {
                throw text.error(.groupSize, at: short.lowerBound, "expected a group of \(size) hex digits, found \(short.count)")
            }
            let digits = runEnd - tokenStart
            if digits % 2 != 0 {
                throw text.error(.oddDigitCount, at: tokenStart, "odd number of hex digits in \(text.describeToken(tokenStart..<runEnd))")
            }
            if let size = group {
                if digits > size || (digits < size && !layout.lastGroupMayBeShort) {
                    throw text.error(.groupSize, at: tokenStart, "expected a group of \(size) hex digits, found \(digits)")
                }
                if digits < size { shortGroup = tokenStart..<runEnd }
            } else {
                group = digits
            }
            if layout.swapsWords {
                bytes.append(Self.byte(b, tokenStart + 2))
                bytes.append(Self.byte(b, tokenStart))
            } else {
                var i = tokenStart
                while i < runEnd {
                    bytes.append(Self.byte(b, i))
                    i += 2
                }
            }
            count += digits / 2
            if count > layout.maxBytesPerLine {
                throw text.error(.lineTooLong, at: tokenStart, "more than \(layout.maxBytesPerLine) bytes on one line (\(layout.format.name) layout)")
            }
            var gap = 0
            var q = runEnd
            while q < end {
                let w = text.whitespaceLength(at: q, end: end)
                if w == 0 { break }
                gap += b[q] == 0x09 ? 2 : 1
                q += w
            }
            if q >= end { break }
            if let delimiter = layout.textDelimiter, b[q] == delimiter { break }
            let groupNext = isGroup(at: q, end: end, digits: group ?? digits)
            if let limit, count >= limit, !(gap == groupGap && groupNext) { break }
            if gap == groupGap || (gap == 2 && count == layout.midGapAfter && groupNext) {
                p = q
                continue
            }
            break
        }
        return count
    }

    @inline(__always)
    private static func byte(_ b: [UInt8], _ i: Int) -> UInt8 {
        DumpText.hexValue(b[i])! << 4 | DumpText.hexValue(b[i + 1])!
    }

    // MARK: Offsets

    func offsetValue(_ digits: Range<Int>, radix: Int) throws(HexDumpError) -> UInt64 {
        var value: UInt64 = 0
        for i in digits {
            let digit = UInt64(DumpText.hexValue(text.bytes[i])!)
            guard digit < UInt64(radix) else {
                throw text.error(.layoutMismatch, at: i, "\(text.describeCharacter(at: i)) is not a digit of a \(Self.radixName(radix)) offset")
            }
            let (shifted, o1) = value.multipliedReportingOverflow(by: UInt64(radix))
            let (sum, o2) = shifted.addingReportingOverflow(digit)
            guard !o1 && !o2 else { throw text.error(.layoutMismatch, at: digits.lowerBound, "offset \(text.describeToken(digits)) is too large") }
            value = sum
        }
        return value
    }

    static func radixName(_ radix: Int) -> String {
        switch radix {
        case 8: "octal"
        case 10: "decimal"
        default: "hex"
        }
    }

    static func format(_ offset: UInt64, radix: Int) -> String {
        switch radix {
        case 8: "0o" + String(offset, radix: 8)
        case 10: String(offset)
        default: "0x" + hex(offset)
        }
    }

    /// The radix of the offsets, from the first two lines in a row: the one under which the second
    /// offset is the first plus the first line's byte count (od prints octal unless told otherwise).
    func detectRadix() -> Int {
        guard layout.radices.count > 1, text.lineCount > 1 else { return layout.radices[0] }
        var kind = classify(0)
        for line in 0..<(text.lineCount - 1) {
            let next = classify(line + 1)
            defer { kind = next }
            guard case .dump(let offset, let hexStart) = kind else { continue }
            let nextOffset: Range<Int>
            switch next {
            case .dump(let o, _), .end(let o): nextOffset = o
            default: continue
            }
            var scratch: [UInt8] = []
            guard let count = try? scanHex(line: line, from: hexStart, limit: nil, into: &scratch) else { break }
            for radix in layout.radices {
                guard let a = try? offsetValue(offset, radix: radix), let b = try? offsetValue(nextOffset, radix: radix), b > a else { continue }
                if b - a == UInt64(count) || (layout.swapsWords && b - a + 1 == UInt64(count)) { return radix }
            }
            break
        }
        return layout.radices[0]
    }

    // MARK: Reading

    func parse() throws(HexDumpError) -> HexDump {
        var reached = 0
        return try parse(reached: &reached)
    }

    /// Reads the dump; `reached` is left at the 0-based line being read when an error was found,
    /// which tells how much of the text this layout explained.
    func parse(reached: inout Int) throws(HexDumpError) -> HexDump {
        let radix = detectRadix()
        var out = BlockCollector()
        out.bytes.reserveCapacity(text.bytes.count / 3)
        var labelLine: Int?
        var expected: UInt64 = 0
        var firstStart: UInt64?
        var previous: (start: Int, count: Int)?
        var pendingRepeat: Int?
        var afterDumpLine = false
        var textRun: [Int] = []
        var widestFromOffsets = 0
        var unconstrained: [(line: Int, count: Int)] = []

        func offsetStart(_ digits: Range<Int>) -> Int {
            layout.offsetPrefix ? digits.lowerBound - 2 : digits.lowerBound
        }

        func mismatch(expected: UInt64, found: UInt64, at digits: Range<Int>) -> HexDumpError {
            text.error(.offsetMismatch, at: offsetStart(digits),
                       "offset \(Self.format(expected, radix: radix)) expected, found \(Self.format(found, radix: radix))")
        }

        func closeBlock() throws(HexDumpError) {
            previous = nil
            // A last line is read by layout alone; it cannot hold more than the lines the offsets measured.
            if widestFromOffsets > 0, let over = unconstrained.first(where: { $0.count > widestFromOffsets }) {
                throw text.error(.lineTooLong, line: over.line, "\(over.count) bytes on this line, but the lines above hold \(widestFromOffsets)")
            }
            widestFromOffsets = 0
            unconstrained.removeAll()
            guard let (range, label) = out.close() else { return }
            if layout.checksAnnouncedLength, let label, let line = labelLine, let announced = Self.announcedLength(label), announced != range.count {
                throw text.error(.lengthMismatch, line: line, "'\(label)' announces \(announced) bytes, the dump below it holds \(range.count)")
            }
        }

        func expandRepeat(upTo value: UInt64) throws(HexDumpError) {
            guard let at = pendingRepeat, let line = previous else { return }
            pendingRepeat = nil
            let width = UInt64(line.count)
            guard value >= expected, (value - expected) % width == 0 else {
                throw text.error(.badRepeat, at: at, "'*' repeats \(width)-byte lines from offset \(Self.format(expected, radix: radix)), but the next offset \(Self.format(value, radix: radix)) is not a whole number of lines further")
            }
            guard value - expected <= UInt64(max(0, HexDumpReader.maximumExpandedBytes - out.bytes.count)) else {
                throw text.error(.tooLarge, at: at, "'*' would expand to \(value - expected) bytes, more than the limit of \(HexDumpReader.maximumExpandedBytes)")
            }
            let repeated = Array(out.bytes[line.start..<(line.start + line.count)])
            for _ in 0..<((value - expected) / width) {
                out.bytes.append(contentsOf: repeated)
            }
            expected = value
        }

        var next: DumpLineKind = text.lineCount > 0 ? classify(0) : .blank
        for line in 0..<text.lineCount {
            reached = line
            let kind = next
            next = line + 1 < text.lineCount ? classify(line + 1) : .blank
            switch kind {
            case .blank:
                textRun.removeAll(keepingCapacity: true)
                afterDumpLine = false
            case .text:
                textRun.append(line)
                afterDumpLine = false
            case .malformed(let error):
                throw error
            case .repeatMark(let at):
                guard afterDumpLine, pendingRepeat == nil, previous != nil else {
                    throw text.error(.badRepeat, at: at, "'*' must come right after a dump line")
                }
                pendingRepeat = at
            case .end(let digits):
                let value = try offsetValue(digits, radix: radix)
                textRun.removeAll(keepingCapacity: true)
                afterDumpLine = false
                // od prints a lone offset for empty input.
                guard out.isOpen else { continue }
                try expandRepeat(upTo: value)
                if layout.swapsWords, value + 1 == expected, let last = previous, last.count > 0 {
                    // The odd last byte was padded to a word.
                    out.bytes.removeLast()
                    expected -= 1
                }
                guard value == expected else { throw mismatch(expected: expected, found: value, at: digits) }
                try closeBlock()
            case .dump(let digits, let hexStart):
                let value = try offsetValue(digits, radix: radix)
                if out.isOpen {
                    try expandRepeat(upTo: value)
                    if value != expected {
                        guard value == 0 || value == firstStart else {
                            // After a packet line or a buffer name a new block was due.
                            throw mismatch(expected: textRun.isEmpty ? expected : 0, found: value, at: digits)
                        }
                        try closeBlock()
                    }
                } else if let firstStart, value != 0, value != firstStart {
                    throw mismatch(expected: 0, found: value, at: digits)
                }
                if !out.isOpen {
                    let label = text.label(fromLines: textRun)
                    out.open(label: label?.text)
                    labelLine = label?.line
                    if firstStart == nil { firstStart = value }
                    expected = value
                }
                var limit: Int?
                switch next {
                case .dump(let o, _), .end(let o):
                    if let nextValue = try? offsetValue(o, radix: radix), nextValue > value, nextValue - value <= UInt64(layout.maxBytesPerLine) {
                        limit = Int(nextValue - value)
                    }
                default:
                    break
                }
                let start = out.bytes.count
                let count = try scanHex(line: line, from: hexStart, limit: limit, into: &out.bytes)
                if limit != nil {
                    widestFromOffsets = max(widestFromOffsets, count)
                } else {
                    unconstrained.append((line, count))
                }
                previous = (start, count)
                expected = value + UInt64(count)
                textRun.removeAll(keepingCapacity: true)
                afterDumpLine = true
            }
        }
        reached = text.lineCount
        if let at = pendingRepeat {
            throw text.error(.badRepeat, at: at, "'*' is not followed by an offset line, so how often it repeats is unknown")
        }
        try closeBlock()
        let name = layout.format.name
        return try out.finish(format: layout.format, noBytes: HexDumpError(code: .noBytes, line: nil, column: nil, reason: "no bytes in this \(name) dump"))
    }

    /// `74` from `Frame (74 bytes)`.
    static func announcedLength(_ label: String) -> Int? {
        guard label.hasSuffix(" bytes)"), let open = label.lastIndex(of: "(") else { return nil }
        let number = label[label.index(after: open)...].dropLast(" bytes)".count)
        return Int(number)
    }
}
