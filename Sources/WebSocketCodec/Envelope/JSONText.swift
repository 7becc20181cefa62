/// Where and why JSON text could not be read.
struct JSONSyntaxError: Error {
    /// Byte offset of the offending byte (the length of the input when it ended too early).
    var offset: Int
    var reason: String
}

/// A strict reader of JSON text (RFC 8259) into `JSONValue`, keeping object member order.
///
/// Written here rather than taken from `JSONSerialization` for three things that does not give:
/// member order, the byte offset of an error, and a bound on nesting stated by the codec. The input
/// must already be valid UTF-8 (callers check it with `WebSocketUTF8Validator`), so strings are
/// sliced from it without decoding byte by byte.
struct JSONReader {
    /// Deeper nesting is refused rather than risking the stack on hostile input. Envelopes are a few
    /// levels deep; 256 leaves room for any payload an application sends.
    static let maxDepth = 256

    private let bytes: UnsafeRawBufferPointer
    private var index = 0
    private var depth = 0

    init(_ bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

    /// Reads one value that must fill the whole input, with whitespace around it.
    static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONSyntaxError) -> JSONValue {
        var reader = JSONReader(bytes)
        reader.skipWhitespace()
        let value = try reader.readValue()
        reader.skipWhitespace()
        guard reader.index == bytes.count else {
            throw reader.error("unexpected \(reader.found) after the JSON value")
        }
        return value
    }

    private var atEnd: Bool { index >= bytes.count }
    private var peek: UInt8 { bytes[index] }

    /// What is at the current position, for messages.
    private var found: String {
        guard !atEnd else { return "end of input" }
        let byte = peek
        if byte >= 0x21 && byte < 0x7F { return "'\(Character(Unicode.Scalar(byte)))'" }
        if byte == 0x20 { return "space" }
        if byte >= 0x80 {
            // Show the whole character: input is valid UTF-8, so its length follows from the lead byte.
            let length = byte >= 0xF0 ? 4 : byte >= 0xE0 ? 3 : 2
            let end = min(bytes.count, index + length)
            return "'\(String(decoding: UnsafeRawBufferPointer(rebasing: bytes[index..<end]), as: UTF8.self))'"
        }
        return "control character U+\(hex4(UInt16(byte)))"
    }

    private func error(_ reason: String, at offset: Int? = nil) -> JSONSyntaxError {
        JSONSyntaxError(offset: offset ?? index, reason: reason)
    }

    private mutating func skipWhitespace() {
        while !atEnd {
            switch peek {
            case 0x20, 0x09, 0x0A, 0x0D: index += 1
            default: return
            }
        }
    }

    private mutating func readValue() throws(JSONSyntaxError) -> JSONValue {
        guard !atEnd else { throw error("unexpected end of input, expected a value") }
        switch peek {
        case UInt8(ascii: "{"): return .object(try readObject())
        case UInt8(ascii: "["): return .array(try readArray())
        case UInt8(ascii: "\""): return .string(try readString())
        case UInt8(ascii: "t"): try readLiteral("true"); return .bool(true)
        case UInt8(ascii: "f"): try readLiteral("false"); return .bool(false)
        case UInt8(ascii: "n"): try readLiteral("null"); return .null
        case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"): return .number(try readNumber())
        default: throw error("unexpected \(found), expected a value")
        }
    }

    private mutating func enter() throws(JSONSyntaxError) {
        depth += 1
        if depth > Self.maxDepth { throw error("nesting deeper than \(Self.maxDepth) levels") }
    }

    private mutating func readObject() throws(JSONSyntaxError) -> JSONObject {
        try enter()
        index += 1
        var object = JSONObject()
        skipWhitespace()
        if !atEnd && peek == UInt8(ascii: "}") {
            index += 1
            depth -= 1
            return object
        }
        while true {
            skipWhitespace()
            guard !atEnd, peek == UInt8(ascii: "\"") else {
                throw error("unexpected \(found), expected a string for an object key")
            }
            let key = try readString()
            skipWhitespace()
            guard !atEnd, peek == UInt8(ascii: ":") else {
                throw error("unexpected \(found), expected ':' after the object key \"\(key)\"")
            }
            index += 1
            skipWhitespace()
            object[key] = try readValue()
            skipWhitespace()
            guard !atEnd else { throw error("unexpected end of input, expected ',' or '}' in an object") }
            switch peek {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "}"):
                index += 1
                depth -= 1
                return object
            default: throw error("unexpected \(found), expected ',' or '}' after an object member")
            }
        }
    }

    private mutating func readArray() throws(JSONSyntaxError) -> [JSONValue] {
        try enter()
        index += 1
        var array: [JSONValue] = []
        skipWhitespace()
        if !atEnd && peek == UInt8(ascii: "]") {
            index += 1
            depth -= 1
            return array
        }
        while true {
            skipWhitespace()
            array.append(try readValue())
            skipWhitespace()
            guard !atEnd else { throw error("unexpected end of input, expected ',' or ']' in an array") }
            switch peek {
            case UInt8(ascii: ","): index += 1
            case UInt8(ascii: "]"):
                index += 1
                depth -= 1
                return array
            default: throw error("unexpected \(found), expected ',' or ']' after an array element")
            }
        }
    }

    private mutating func readLiteral(_ word: StaticString) throws(JSONSyntaxError) {
        let start = index
        let text = UnsafeRawBufferPointer(start: word.utf8Start, count: word.utf8CodeUnitCount)
        for expected in text {
            guard !atEnd, peek == expected else {
                throw error("unexpected \(found) in a literal, expected \(word)", at: atEnd ? index : start)
            }
            index += 1
        }
    }

    /// `-? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)?` (RFC 8259 §6).
    private mutating func readNumber() throws(JSONSyntaxError) -> Double {
        let start = index
        func isDigit(_ b: UInt8) -> Bool { b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") }
        func digits() -> Int {
            let from = index
            while !atEnd && isDigit(peek) { index += 1 }
            return index - from
        }
        if peek == UInt8(ascii: "-") { index += 1 }
        guard !atEnd, isDigit(peek) else { throw error("unexpected \(found) in a number, expected a digit") }
        if peek == UInt8(ascii: "0") {
            index += 1
            if !atEnd && isDigit(peek) { throw error("a number must not have a leading zero") }
        } else {
            _ = digits()
        }
        if !atEnd && peek == UInt8(ascii: ".") {
            index += 1
            guard digits() > 0 else { throw error("unexpected \(found) in a number, expected a digit after '.'") }
        }
        if !atEnd && (peek == UInt8(ascii: "e") || peek == UInt8(ascii: "E")) {
            index += 1
            if !atEnd && (peek == UInt8(ascii: "+") || peek == UInt8(ascii: "-")) { index += 1 }
            guard digits() > 0 else { throw error("unexpected \(found) in a number, expected a digit in the exponent") }
        }
        let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index]), as: UTF8.self)
        guard let value = Double(text), value.isFinite else {
            throw error("the number \(text) is too large for a 64-bit float", at: start)
        }
        return value
    }

    private mutating func readString() throws(JSONSyntaxError) -> String {
        let opening = index
        index += 1
        let start = index
        // The common case, no escapes: one slice of the input.
        while !atEnd {
            let byte = peek
            if byte == UInt8(ascii: "\"") {
                index += 1
                return String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<index - 1]), as: UTF8.self)
            }
            if byte == UInt8(ascii: "\\") || byte < 0x20 { break }
            index += 1
        }
        var out = Array(bytes[start..<index])
        while true {
            guard !atEnd else { throw error("unexpected end of input in the string that starts at byte \(opening)") }
            let byte = peek
            switch byte {
            case UInt8(ascii: "\""):
                index += 1
                return String(decoding: out, as: UTF8.self)
            case UInt8(ascii: "\\"):
                index += 1
                try readEscape(into: &out)
            case 0x00..<0x20:
                throw error("control character U+\(hex4(UInt16(byte))) in a string must be escaped")
            default:
                out.append(byte)
                index += 1
            }
        }
    }

    private mutating func readEscape(into out: inout [UInt8]) throws(JSONSyntaxError) {
        guard !atEnd else { throw error("unexpected end of input in an escape") }
        let escape = peek
        index += 1
        let simple: UInt8?
        switch escape {
        case UInt8(ascii: "\""): simple = 0x22
        case UInt8(ascii: "\\"): simple = 0x5C
        case UInt8(ascii: "/"): simple = 0x2F
        case UInt8(ascii: "b"): simple = 0x08
        case UInt8(ascii: "f"): simple = 0x0C
        case UInt8(ascii: "n"): simple = 0x0A
        case UInt8(ascii: "r"): simple = 0x0D
        case UInt8(ascii: "t"): simple = 0x09
        case UInt8(ascii: "u"): simple = nil
        default:
            index -= 1
            throw error("invalid escape '\\' followed by \(found)", at: index - 1)
        }
        if let simple {
            out.append(simple)
            return
        }
        let escapeStart = index - 2
        let unit = try readHex4()
        var scalar: Unicode.Scalar?
        switch unit {
        case 0xD800...0xDBFF:
            // A high surrogate must be followed by an escaped low one (RFC 8259 §7).
            guard bytes.count - index >= 6, bytes[index] == UInt8(ascii: "\\"), bytes[index + 1] == UInt8(ascii: "u") else {
                throw error("unpaired surrogate \\u\(hex4(unit)) in a string", at: escapeStart)
            }
            index += 2
            let low = try readHex4()
            guard (0xDC00...0xDFFF).contains(low) else {
                throw error("unpaired surrogate \\u\(hex4(unit)) in a string", at: escapeStart)
            }
            scalar = Unicode.Scalar(0x10000 + (UInt32(unit) - 0xD800) << 10 + (UInt32(low) - 0xDC00))
        case 0xDC00...0xDFFF:
            throw error("unpaired surrogate \\u\(hex4(unit)) in a string", at: escapeStart)
        default:
            scalar = Unicode.Scalar(UInt32(unit))
        }
        out.append(contentsOf: String(Character(scalar!)).utf8)
    }

    private mutating func readHex4() throws(JSONSyntaxError) -> UInt16 {
        var value: UInt16 = 0
        for _ in 0..<4 {
            guard !atEnd else { throw error("unexpected end of input in a \\u escape") }
            let byte = peek
            let digit: UInt8
            switch byte {
            case UInt8(ascii: "0")...UInt8(ascii: "9"): digit = byte - UInt8(ascii: "0")
            case UInt8(ascii: "a")...UInt8(ascii: "f"): digit = byte - UInt8(ascii: "a") + 10
            case UInt8(ascii: "A")...UInt8(ascii: "F"): digit = byte - UInt8(ascii: "A") + 10
            default: throw error("unexpected \(found) in a \\u escape, expected a hex digit")
            }
            value = value << 4 | UInt16(digit)
            index += 1
        }
        return value
    }
}

/// Four upper-case hex digits.
func hex4(_ value: UInt16) -> String {
    let digits = String(value, radix: 16, uppercase: true)
    return String(repeating: "0", count: 4 - digits.count) + digits
}

/// Writes compact JSON text: no insignificant whitespace, object members in their order, strings
/// escaped only where RFC 8259 §7 requires (quote, backslash, control characters), so non-ASCII
/// text stays readable.
struct JSONWriter {
    private(set) var bytes: [UInt8] = []

    var text: String { String(decoding: bytes, as: UTF8.self) }

    mutating func write(_ value: JSONValue) {
        switch value {
        case .null: append("null")
        case .bool(let flag): append(flag ? "true" : "false")
        case .number(let number): writeNumber(number)
        case .string(let string): writeString(string)
        case .array(let array):
            bytes.append(UInt8(ascii: "["))
            for (i, element) in array.enumerated() {
                if i > 0 { bytes.append(UInt8(ascii: ",")) }
                write(element)
            }
            bytes.append(UInt8(ascii: "]"))
        case .object(let object):
            bytes.append(UInt8(ascii: "{"))
            for (i, (key, member)) in object.enumerated() {
                if i > 0 { bytes.append(UInt8(ascii: ",")) }
                writeString(key)
                bytes.append(UInt8(ascii: ":"))
                write(member)
            }
            bytes.append(UInt8(ascii: "}"))
        }
    }

    private mutating func append(_ ascii: StaticString) {
        bytes.append(contentsOf: UnsafeRawBufferPointer(start: ascii.utf8Start, count: ascii.utf8CodeUnitCount))
    }

    /// Whole numbers up to 2^53 without a fraction (`3`, not `3.0`); others in Swift's shortest
    /// round-trip form, which is valid JSON (`0.1`, `1e-07`, `1.5e+300`); non-finite ones as `null`.
    private mutating func writeNumber(_ number: Double) {
        guard number.isFinite else { return append("null") }
        if number.rounded(.towardZero) == number, abs(number) <= 9_007_199_254_740_992 {
            bytes.append(contentsOf: String(Int64(number)).utf8)
        } else {
            bytes.append(contentsOf: number.description.utf8)
        }
    }

    private mutating func writeString(_ string: String) {
        bytes.append(UInt8(ascii: "\""))
        for byte in string.utf8 {
            switch byte {
            case UInt8(ascii: "\""): append("\\\"")
            case UInt8(ascii: "\\"): append("\\\\")
            case 0x0A: append("\\n")
            case 0x0D: append("\\r")
            case 0x09: append("\\t")
            case 0x08: append("\\b")
            case 0x0C: append("\\f")
            case 0x00..<0x20:
                append("\\u")
                bytes.append(contentsOf: hex4(UInt16(byte)).utf8)
            default: bytes.append(byte)
            }
        }
        bytes.append(UInt8(ascii: "\""))
    }
}
