/// A small JSON object writer for JSON Lines output: keys in the order written, no Foundation,
/// no intermediate dictionaries. The schema's key order is part of what users see.
public struct JSONLineWriter {
    public private(set) var output: String = ""
    private var needsComma = false

    public init() {
        output.reserveCapacity(256)
        output.append("{")
    }

    private mutating func key(_ k: String) {
        if needsComma { output.append(",") }
        needsComma = true
        output.append("\"")
        output.append(k)
        output.append("\":")
    }

    public mutating func string(_ k: String, _ v: String?) {
        key(k)
        if let v { Self.appendQuoted(v, to: &output) } else { output.append("null") }
    }

    public mutating func int(_ k: String, _ v: Int?) {
        key(k)
        if let v { output.append(String(v)) } else { output.append("null") }
    }

    public mutating func uint(_ k: String, _ v: UInt64?) {
        key(k)
        if let v { output.append(String(v)) } else { output.append("null") }
    }

    public mutating func double(_ k: String, _ v: Double?) {
        key(k)
        if let v, v.isFinite { output.append(String(v)) } else { output.append("null") }
    }

    public mutating func bool(_ k: String, _ v: Bool?) {
        key(k)
        if let v { output.append(v ? "true" : "false") } else { output.append("null") }
    }

    /// Inserts already-serialised JSON (an object or array built by another writer).
    public mutating func raw(_ k: String, _ json: String) {
        key(k)
        output.append(json)
    }

    public mutating func array(_ k: String, _ items: [String]) {
        key(k)
        output.append("[")
        output.append(items.joined(separator: ","))
        output.append("]")
    }

    /// Closes the object and returns it.
    public mutating func finish() -> String {
        output.append("}")
        return output
    }

    /// JSON string escaping (RFC 8259 §7): quotes, backslash and control characters.
    public static func appendQuoted(_ s: String, to out: inout String) {
        out.append("\"")
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
    }

    public static func quoted(_ s: String) -> String {
        var out = ""
        appendQuoted(s, to: &out)
        return out
    }
}

/// Lower-case hex of bytes, no separators (tshark's `websocket.payload` style).
public func hexString<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
    let digits: [UInt8] = Array("0123456789abcdef".utf8)
    var out = [UInt8]()
    out.reserveCapacity(bytes.count * 2)
    for b in bytes {
        out.append(digits[Int(b >> 4)])
        out.append(digits[Int(b & 0xF)])
    }
    return String(decoding: out, as: UTF8.self)
}
