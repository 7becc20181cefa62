/// A JSON object built into a `String`, for the occasional line (a handshake, a summary) and for
/// callers that want the text: keys in the order written, no Foundation, no intermediate
/// dictionaries. The schema's key order is part of what users see. The bytes come from the same
/// `OutputBuffer` JSON methods that the per-frame renderers use.
public struct JSONLineWriter: ~Copyable {
    private var buffer = OutputBuffer(capacity: 256)

    public init() {
        buffer.beginJSONObject()
    }

    public mutating func string(_ k: String, _ v: String?) {
        buffer.jsonKey(named: k)
        if let v { buffer.jsonString(v) } else { buffer.jsonNull() }
    }

    public mutating func int(_ k: String, _ v: Int?) {
        buffer.jsonKey(named: k)
        if let v { buffer.jsonValue(v) } else { buffer.jsonNull() }
    }

    public mutating func uint(_ k: String, _ v: UInt64?) {
        buffer.jsonKey(named: k)
        if let v { buffer.jsonValue(v) } else { buffer.jsonNull() }
    }

    public mutating func double(_ k: String, _ v: Double?) {
        buffer.jsonKey(named: k)
        if let v { buffer.jsonValue(v) } else { buffer.jsonNull() }
    }

    /// Seconds with six decimals (see `OutputBuffer.jsonSeconds`): the form of every time the
    /// sniffer writes.
    public mutating func seconds(_ k: String, _ v: Double?) {
        buffer.jsonKey(named: k)
        if let v { buffer.jsonSeconds(v) } else { buffer.jsonNull() }
    }

    public mutating func bool(_ k: String, _ v: Bool?) {
        buffer.jsonKey(named: k)
        if let v { buffer.jsonValue(v) } else { buffer.jsonNull() }
    }

    /// Inserts already-serialised JSON (an object or array built by another writer).
    public mutating func raw(_ k: String, _ json: String) {
        buffer.jsonKey(named: k)
        buffer.jsonRaw(json)
    }

    /// An array of already-serialised JSON values.
    public mutating func array(_ k: String, _ items: [String]) {
        buffer.jsonKey(named: k)
        buffer.beginJSONArray()
        for item in items { buffer.jsonRaw(item) }
        buffer.endJSONArray()
    }

    /// Closes the object and returns it.
    public consuming func finish() -> String {
        buffer.endJSONObject()
        return buffer.makeString()
    }

    /// JSON string escaping (RFC 8259 §7): quotes, backslash and control characters.
    public static func appendQuoted(_ s: String, to out: inout String) {
        out.append(quoted(s))
    }

    /// `s` as a JSON string, quotes included.
    public static func quoted(_ s: String) -> String {
        var b = OutputBuffer(capacity: s.utf8.count + 16)
        b.jsonString(s)
        return b.makeString()
    }
}

/// Lower-case hex of bytes, no separators (tshark's `websocket.payload` style).
public func hexString<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
    var b = OutputBuffer(capacity: bytes.count * 2 + 1)
    if let done = bytes.withContiguousStorageIfAvailable({ b.appendHex(UnsafeRawBufferPointer($0)) }) {
        _ = done
    } else {
        Array(bytes).withUnsafeBytes { b.appendHex($0) }
    }
    return b.makeString()
}
