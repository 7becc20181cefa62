/// Any JSON value (RFC 8259 §3): what an envelope's `payload` holds, and what an application puts there.
///
/// Objects keep their members in the order they were read or added (`JSONObject`), so a message
/// passed through wsctl comes out with its keys where they were. Numbers are `Double`s, as in
/// JavaScript, which every browser peer uses: integers beyond 2^53 lose precision, the same as there.
public enum JSONValue: Hashable, Sendable {
    case null
    case bool(Bool)
    case number(Double)
    case string(String)
    case array([JSONValue])
    case object(JSONObject)

    /// The member `key` of an object; nil when absent or when this is not an object.
    public subscript(key: String) -> JSONValue? {
        guard case .object(let object) = self else { return nil }
        return object[key]
    }

    /// The element at `index` of an array; nil when out of range or when this is not an array.
    public subscript(index: Int) -> JSONValue? {
        guard case .array(let array) = self, array.indices.contains(index) else { return nil }
        return array[index]
    }

    public var stringValue: String? {
        guard case .string(let value) = self else { return nil }
        return value
    }

    public var boolValue: Bool? {
        guard case .bool(let value) = self else { return nil }
        return value
    }

    public var doubleValue: Double? {
        guard case .number(let value) = self else { return nil }
        return value
    }

    /// The number as an `Int` when it is a whole number that fits; nil otherwise.
    public var intValue: Int? {
        guard case .number(let value) = self, value.rounded(.towardZero) == value else { return nil }
        return Int(exactly: value)
    }

    public var arrayValue: [JSONValue]? {
        guard case .array(let value) = self else { return nil }
        return value
    }

    public var objectValue: JSONObject? {
        guard case .object(let value) = self else { return nil }
        return value
    }

    public var isNull: Bool { self == .null }

    /// The JSON name of the value's kind, for messages: "null", "boolean", "number", "string",
    /// "array" or "object".
    public var kindName: String {
        switch self {
        case .null: return "null"
        case .bool: return "boolean"
        case .number: return "number"
        case .string: return "string"
        case .array: return "array"
        case .object: return "object"
        }
    }

    /// The kind and, for short scalars, the value, for error messages: `number 42`, `string ""`, `array`.
    var briefDescription: String {
        switch self {
        case .null, .array, .object: return kindName
        case .string(let value) where value.count > 40: return "string \"\(value.prefix(40))…\""
        default: return "\(kindName) \(encoded())"
        }
    }

    /// Compact JSON text (no spaces), object members in their order. Numbers that are not finite,
    /// which JSON cannot write, come out as `null`, as `JSON.stringify` does.
    public func encoded() -> String {
        var writer = JSONWriter()
        writer.write(self)
        return writer.text
    }
}

extension JSONValue: CustomStringConvertible {
    public var description: String { encoded() }
}

extension JSONValue: ExpressibleByNilLiteral, ExpressibleByBooleanLiteral, ExpressibleByIntegerLiteral,
    ExpressibleByFloatLiteral, ExpressibleByStringLiteral, ExpressibleByArrayLiteral, ExpressibleByDictionaryLiteral
{
    public init(nilLiteral: ()) { self = .null }
    public init(booleanLiteral value: Bool) { self = .bool(value) }
    public init(integerLiteral value: Int) { self = .number(Double(value)) }
    public init(floatLiteral value: Double) { self = .number(value) }
    public init(stringLiteral value: String) { self = .string(value) }
    public init(arrayLiteral elements: JSONValue...) { self = .array(elements) }
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self = .object(JSONObject(elements)) }
}

/// A JSON object whose members keep their order.
///
/// RFC 8259 §4 leaves member order without meaning, so two objects with the same members in a
/// different order are equal (and hash the same); the order only shows when the object is written.
/// Setting a new key appends it; setting an existing key keeps its place; setting nil removes it.
public struct JSONObject: Hashable, Sendable {
    /// The keys, in order.
    public private(set) var keys: [String]
    private var members: [String: JSONValue]

    public init() {
        keys = []
        members = [:]
    }

    /// Members in order. A key given twice keeps its first place and its last value, as
    /// JavaScript's `JSON.parse` does.
    public init(_ pairs: some Sequence<(String, JSONValue)>) {
        self.init()
        for (key, value) in pairs { self[key] = value }
    }

    public subscript(key: String) -> JSONValue? {
        get { members[key] }
        set {
            if let newValue {
                if members.updateValue(newValue, forKey: key) == nil { keys.append(key) }
            } else if members.removeValue(forKey: key) != nil {
                keys.removeAll { $0 == key }
            }
        }
    }

    public var count: Int { keys.count }
    public var isEmpty: Bool { keys.isEmpty }

    public static func == (lhs: JSONObject, rhs: JSONObject) -> Bool { lhs.members == rhs.members }
    public func hash(into hasher: inout Hasher) { hasher.combine(members) }
}

extension JSONObject: Sequence {
    public struct Iterator: IteratorProtocol {
        private let object: JSONObject
        private var index = 0

        init(_ object: JSONObject) { self.object = object }

        public mutating func next() -> (key: String, value: JSONValue)? {
            guard index < object.keys.count else { return nil }
            let key = object.keys[index]
            index += 1
            return (key, object.members[key]!)
        }
    }

    public func makeIterator() -> Iterator { Iterator(self) }
}

extension JSONObject: ExpressibleByDictionaryLiteral, CustomStringConvertible {
    public init(dictionaryLiteral elements: (String, JSONValue)...) { self.init(elements) }

    public var description: String { JSONValue.object(self).encoded() }
}

// MARK: - Codable

/// A key for any member name, for coding objects whose keys are not known in advance.
struct JSONCodingKey: CodingKey {
    var stringValue: String
    var intValue: Int? { nil }
    init(_ string: String) { stringValue = string }
    init?(stringValue: String) { self.stringValue = stringValue }
    init?(intValue: Int) { nil }
}

extension JSONObject: Codable {
    /// Members come in the order the decoder lists them; `JSONDecoder` does not keep the text's order
    /// (`WebSocketEnvelope.parse` does).
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: JSONCodingKey.self)
        self.init()
        for key in container.allKeys {
            self[key.stringValue] = try container.decode(JSONValue.self, forKey: key)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: JSONCodingKey.self)
        for (key, value) in self {
            try container.encode(value, forKey: JSONCodingKey(key))
        }
    }
}

extension JSONValue: Codable {
    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if container.decodeNil() {
            self = .null
        } else if let value = try? container.decode(Bool.self) {
            self = .bool(value)
        } else if let value = try? container.decode(Double.self) {
            self = .number(value)
        } else if let value = try? container.decode(String.self) {
            self = .string(value)
        } else if let value = try? container.decode([JSONValue].self) {
            self = .array(value)
        } else if let value = try? container.decode(JSONObject.self) {
            self = .object(value)
        } else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "not a JSON value")
        }
    }

    public func encode(to encoder: any Encoder) throws {
        switch self {
        case .object(let object):
            try object.encode(to: encoder)
        case .array(let array):
            var container = encoder.unkeyedContainer()
            for element in array { try container.encode(element) }
        default:
            var container = encoder.singleValueContainer()
            switch self {
            case .null: try container.encodeNil()
            case .bool(let value): try container.encode(value)
            case .number(let value): try container.encode(value)
            case .string(let value): try container.encode(value)
            case .array, .object: break
            }
        }
    }
}

extension JSONValue {
    /// Reads JSON text (RFC 8259; nesting up to 256 levels). Bytes that are not UTF-8 or not JSON
    /// are a `notJSON` error with the byte offset, line and column where reading stopped.
    public static func parse(_ bytes: UnsafeRawBufferPointer) throws(WebSocketEnvelopeError) -> JSONValue {
        try WebSocketEnvelope.readJSON(bytes, checkUTF8: true)
    }
}
