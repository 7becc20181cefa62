/// Reads byte arrays as programs print and declare them: `[0x81, 0x05]`, `{0x81,0x05}`,
/// `Buffer.from([129, 5])`, `new Uint8Array([…])`, `xxd -i`, Java's `[-127, 5]`, Go's `[129 5]`,
/// `(byte)0x81` casts, `0x81u8` suffixes, `'a'` characters. Numbers without `0x` are decimal.
///
/// Each innermost bracket pair is a block; text outside brackets (the declaration, `Buffer.from(`,
/// `unsigned int len = 7;`) is ignored, as are declarator brackets (`data[]`, `[UInt8] =`, `[5]byte{`).
struct ArrayLiteralParser {
    let text: DumpText

    static func detects(_ text: DumpText) -> Bool {
        text.bytes.contains(UInt8(ascii: "[")) || text.bytes.contains(UInt8(ascii: "{"))
    }

    func parse() throws(HexDumpError) -> HexDump {
        let b = text.bytes
        var out = BlockCollector()
        var p = 0
        while p < b.count {
            let c = b[p]
            guard c == UInt8(ascii: "[") || c == UInt8(ascii: "{") else {
                p += 1
                continue
            }
            var q = p + 1
            while q < b.count {
                let d = b[q]
                if d == UInt8(ascii: "]") || d == UInt8(ascii: "}") || d == UInt8(ascii: "[") || d == UInt8(ascii: "{") { break }
                if d == UInt8(ascii: "'") { q = skipCharacterLiteral(at: q) } else { q += 1 }
            }
            guard q < b.count else { throw text.error(.unterminated, at: p, "\(text.describeCharacter(at: p)) is never closed") }
            if b[q] == UInt8(ascii: "[") || b[q] == UInt8(ascii: "{") {
                p = q
                continue
            }
            let closer = c == UInt8(ascii: "[") ? UInt8(ascii: "]") : UInt8(ascii: "}")
            guard b[q] == closer else {
                throw text.error(.unexpectedCharacter, at: q, "\(text.describeCharacter(at: q)) closes \(text.describeCharacter(at: p))")
            }
            if !isDeclarator(open: p, close: q) {
                out.open(label: nil)
                try readElements(from: p + 1, to: q, into: &out.bytes)
                out.close()
            }
            p = q + 1
        }
        return try out.finish(format: .array, noBytes: HexDumpError(code: .noBytes, line: nil, column: nil, reason: "no bytes in brackets found"))
    }

    private func skipCharacterLiteral(at q: Int) -> Int {
        let b = text.bytes
        var i = q + 1
        while i < b.count, b[i] != UInt8(ascii: "'"), b[i] != 0x0A {
            i += b[i] == UInt8(ascii: "\\") ? 2 : 1
        }
        return min(i + 1, b.count)
    }

    /// Brackets that declare or index rather than hold bytes: empty ones, `data[7]`, `[UInt8] =`, `[]byte{`.
    private func isDeclarator(open: Int, close: Int) -> Bool {
        let b = text.bytes
        var i = open + 1
        while i < close, text.whitespaceLength(at: i, end: close) > 0 || b[i] == 0x0A || b[i] == 0x0D { i += 1 }
        if i == close { return true }
        guard b[open] == UInt8(ascii: "[") else { return false }
        if open > 0, DumpText.isIdentifierCharacter(b[open - 1]) { return true }
        // A type: `[5]byte{`, `[]byte{` (Go), `[UInt8] = ` (Swift).
        if close + 1 < b.count {
            let after = b[close + 1]
            if after == UInt8(ascii: "{") || after == UInt8(ascii: "[") || DumpText.isIdentifierCharacter(after) { return true }
        }
        var j = close + 1
        while j < b.count, b[j] == 0x20 || b[j] == 0x09 { j += 1 }
        return j < b.count && b[j] == UInt8(ascii: "=") && (j + 1 == b.count || b[j + 1] != UInt8(ascii: "="))
    }

    private func readElements(from start: Int, to end: Int, into bytes: inout [UInt8]) throws(HexDumpError) {
        let b = text.bytes
        var p = start
        var sawElement = false
        var commaPending = false
        while p < end {
            let c = b[p]
            if c == 0x0A || c == 0x0D {
                p += 1
                continue
            }
            let w = text.whitespaceLength(at: p, end: end)
            if w > 0 {
                p += w
                continue
            }
            if c == UInt8(ascii: "/"), p + 1 < end, b[p + 1] == UInt8(ascii: "/") || b[p + 1] == UInt8(ascii: "*") {
                p = skipComment(at: p, end: end)
                continue
            }
            if c == UInt8(ascii: ",") {
                guard sawElement, !commaPending else { throw text.error(.unexpectedCharacter, at: p, "unexpected ','") }
                commaPending = true
                p += 1
                continue
            }
            if c == UInt8(ascii: "(") {
                // A cast such as (byte) or (uint8_t).
                var q = p + 1
                while q < end, DumpText.isIdentifierCharacter(b[q]) || b[q] == 0x20 { q += 1 }
                if q < end, b[q] == UInt8(ascii: ")"), q > p + 1 {
                    p = q + 1
                    continue
                }
            }
            let (value, next) = try readNumber(at: p, end: end)
            bytes.append(value)
            sawElement = true
            commaPending = false
            p = next
        }
    }

    private func skipComment(at p: Int, end: Int) -> Int {
        let b = text.bytes
        if b[p + 1] == UInt8(ascii: "/") {
            var q = p
            while q < end, b[q] != 0x0A, b[q] != 0x0D { q += 1 }
            return q
        }
        var q = p + 2
        while q + 1 < end, !(b[q] == UInt8(ascii: "*") && b[q + 1] == UInt8(ascii: "/")) { q += 1 }
        return min(q + 2, end)
    }

    /// One element: `0x81`, `129`, `-127`, `0b10000001`, `0o201`, `'A'`, `'\x81'`, with an optional
    /// type suffix (`u8`, `U`). Returns the byte and the index after the element.
    private func readNumber(at start: Int, end: Int) throws(HexDumpError) -> (UInt8, Int) {
        let b = text.bytes
        var p = start
        var negative = false
        if b[p] == UInt8(ascii: "-") || b[p] == UInt8(ascii: "+") {
            negative = b[p] == UInt8(ascii: "-")
            p += 1
        }
        guard p < end else { throw text.error(.unexpectedCharacter, at: start, "expected a number after \(text.describeCharacter(at: start))") }
        if b[p] == UInt8(ascii: "'") && !negative {
            return try readCharacter(at: p, end: end)
        }
        var radix: UInt64 = 10
        var digitsStart = p
        if b[p] == UInt8(ascii: "0"), p + 1 < end {
            switch b[p + 1] | 0x20 {
            case UInt8(ascii: "x"): radix = 16
            case UInt8(ascii: "b"): radix = 2
            case UInt8(ascii: "o"): radix = 8
            default: break
            }
            if radix != 10 { digitsStart = p + 2 }
        }
        var q = digitsStart
        var value: UInt64 = 0
        while q < end, let digit = DumpText.hexValue(b[q]), UInt64(digit) < radix {
            value = min(value * radix + UInt64(digit), 1 << 32)
            q += 1
        }
        if q == digitsStart {
            if radix == 16 { throw text.error(.notHexDigit, at: q, "\(text.describeCharacter(at: q)) is not a hex digit") }
            let tokenEnd = FreeFormText.tokenEnd(text, from: start, end: end)
            throw text.error(.unexpectedCharacter, at: start, "expected a number, found \(text.describeToken(start..<tokenEnd))")
        }
        let numberEnd = q
        // Type suffixes: Rust's u8/i8 (optionally after _), C's u/U.
        if q < end, b[q] == UInt8(ascii: "_") { q += 1 }
        if q < end, b[q] | 0x20 == UInt8(ascii: "u") || b[q] | 0x20 == UInt8(ascii: "i") {
            q += 1
            while q < end, DumpText.isDigit(b[q]) { q += 1 }
        }
        if q < end, b[q] != UInt8(ascii: ","), b[q] != 0x0A, b[q] != 0x0D, text.whitespaceLength(at: q, end: end) == 0,
           !(b[q] == UInt8(ascii: "/") && q + 1 < end && (b[q + 1] == UInt8(ascii: "/") || b[q + 1] == UInt8(ascii: "*"))) {
            let kind = radix == 16 ? "hex" : radix == 10 ? "decimal" : radix == 8 ? "octal" : "binary"
            let code: HexDumpError.Code = radix == 16 ? .notHexDigit : .unexpectedCharacter
            throw text.error(code, at: q, "\(text.describeCharacter(at: q)) is not a \(kind) digit")
        }
        let number = text.string(start..<numberEnd)
        if negative {
            guard value <= 128 else { throw text.error(.valueOutOfRange, at: start, "\(number) does not fit in a byte") }
            return (UInt8((256 - value) & 0xFF), q)
        }
        guard value <= 255 else { throw text.error(.valueOutOfRange, at: start, "\(number) does not fit in a byte") }
        return (UInt8(value), q)
    }

    private func readCharacter(at quote: Int, end: Int) throws(HexDumpError) -> (UInt8, Int) {
        let b = text.bytes
        var p = quote + 1
        guard p < end, b[p] != UInt8(ascii: "'") else { throw text.error(.unexpectedCharacter, at: quote, "empty character literal") }
        let value: UInt8
        if b[p] == UInt8(ascii: "\\") {
            (value, p) = try EscapedStringParser.decodeEscape(text, at: p, end: end)
        } else {
            guard b[p] < 0x80 else { throw text.error(.valueOutOfRange, at: p, "\(text.describeCharacter(at: p)) is not a single byte") }
            value = b[p]
            p += 1
        }
        guard p < end, b[p] == UInt8(ascii: "'") else { throw text.error(.unterminated, at: quote, "character literal is not closed") }
        return (value, p + 1)
    }
}
