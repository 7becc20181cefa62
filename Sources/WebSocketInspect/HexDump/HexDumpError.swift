/// Why a text could not be read as a hex dump, and where.
///
/// `description` reads `line 3, column 12: 'g' is not a hex digit`. Lines and columns count from 1;
/// a column counts characters (a tab is one), so an editor's "go to column" lands on the culprit.
public struct HexDumpError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of problem this is, for code that reacts to some of them.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        private enum Base: String, Hashable, Sendable {
            case noBytes = "no bytes"
            case notHexDigit = "not a hex digit"
            case oddDigitCount = "odd number of hex digits"
            case groupSize = "wrong group size"
            case lineTooLong = "too many bytes on a line"
            case offsetMismatch = "offset mismatch"
            case layoutMismatch = "line does not match the layout"
            case badRepeat = "bad repeat line"
            case lengthMismatch = "length mismatch"
            case valueOutOfRange = "value out of range"
            case unexpectedCharacter = "unexpected character"
            case badEscape = "bad escape"
            case unterminated = "unterminated"
            case truncatedDump = "truncated dump"
            case tooLarge = "too large"
        }

        private let base: Base
        private init(_ base: Base) { self.base = base }

        /// The text holds no bytes at all.
        public static let noBytes = Code(.noBytes)
        /// A character where a hex digit belongs.
        public static let notHexDigit = Code(.notHexDigit)
        /// A run of hex digits that does not make whole bytes.
        public static let oddDigitCount = Code(.oddDigitCount)
        /// A group of hex digits of another size than its neighbours (`xxd -g`, tcpdump's pairs).
        public static let groupSize = Code(.groupSize)
        /// More bytes on a line than the layout or the other lines allow.
        public static let lineTooLong = Code(.lineTooLong)
        /// An offset that does not follow from the bytes before it.
        public static let offsetMismatch = Code(.offsetMismatch)
        /// A line that looks like a dump line but has the wrong offset width, separator or spacing.
        public static let layoutMismatch = Code(.layoutMismatch)
        /// A `*` line that cannot be expanded.
        public static let badRepeat = Code(.badRepeat)
        /// A header announces another length than the dump below it has (`Frame (74 bytes):`).
        public static let lengthMismatch = Code(.lengthMismatch)
        /// A number in a list that is not a byte (`300`, `-129`).
        public static let valueOutOfRange = Code(.valueOutOfRange)
        /// A character that has no place there (`81;;85`, `[0x81 x]`).
        public static let unexpectedCharacter = Code(.unexpectedCharacter)
        /// An escape sequence that is unknown or incomplete (`\q`, `\x8`).
        public static let badEscape = Code(.badEscape)
        /// A string literal or bracket that is never closed.
        public static let unterminated = Code(.unterminated)
        /// The tool that printed the dump left bytes out (Node's `... 12 more bytes`).
        public static let truncatedDump = Code(.truncatedDump)
        /// Expanding the dump would exceed `HexDumpReader.maximumExpandedBytes`.
        public static let tooLarge = Code(.tooLarge)

        public var description: String { base.rawValue }
    }

    public var code: Code
    /// 1-based line of the problem, nil when it concerns the whole text.
    public var line: Int?
    /// 1-based column (in characters) of the problem, nil when it concerns a whole line.
    public var column: Int?
    /// What was wrong, without the position: `'g' is not a hex digit`.
    public var reason: String

    public init(code: Code, line: Int?, column: Int?, reason: String) {
        self.code = code
        self.line = line
        self.column = column
        self.reason = reason
    }

    public var description: String {
        switch (line, column) {
        case let (line?, column?): "line \(line), column \(column): \(reason)"
        case let (line?, nil): "line \(line): \(reason)"
        default: reason
        }
    }
}
