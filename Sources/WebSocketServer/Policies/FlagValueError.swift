/// A `wsctl serve` flag value that could not be read: a size, a duration or a rate.
///
/// `description` names the text and what was expected, so the command can print it as it is and
/// exit with status 2 (a usage error).
public struct FlagValueError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The text as given.
    public var value: String
    /// What was wrong, in words.
    public var reason: String

    public init(value: String, reason: String) {
        self.value = value
        self.reason = reason
    }

    public var description: String { "invalid value \"\(value)\": \(reason)" }
}

/// A non-negative decimal number at the start of `text`: digits, optionally a point and more digits
/// (`12`, `1.5`, `.5`, `2.`). No sign, exponent, hex or `inf`, which `Double(_:)` would take and no
/// flag means. `whole` is set when there is no fraction part, so whole byte counts stay exact.
struct DecimalPrefix {
    var value: Double
    var whole: Int?
    var rest: Substring

    init?(_ text: Substring) {
        var index = text.startIndex
        var integerDigits = Substring()
        var fractionDigits = Substring()
        var sawPoint = false
        let digitsStart = index
        while index < text.endIndex, text[index].isASCII, text[index].isNumber { index = text.index(after: index) }
        integerDigits = text[digitsStart..<index]
        if index < text.endIndex, text[index] == "." {
            sawPoint = true
            index = text.index(after: index)
            let fractionStart = index
            while index < text.endIndex, text[index].isASCII, text[index].isNumber { index = text.index(after: index) }
            fractionDigits = text[fractionStart..<index]
        }
        guard !integerDigits.isEmpty || !fractionDigits.isEmpty else { return nil }
        let literal = (integerDigits.isEmpty ? "0" : String(integerDigits)) + (fractionDigits.isEmpty ? "" : "." + fractionDigits)
        guard let value = Double(literal), value.isFinite else { return nil }
        self.value = value
        self.whole = sawPoint && !fractionDigits.allSatisfy({ $0 == "0" }) ? nil : Int(integerDigits.isEmpty ? "0" : integerDigits)
        self.rest = text[index...]
    }
}

extension Substring {
    /// Without leading and trailing spaces and tabs.
    var trimmingBlanks: Substring {
        var slice = self
        while let first = slice.first, first == " " || first == "\t" { slice = slice.dropFirst() }
        while let last = slice.last, last == " " || last == "\t" { slice = slice.dropLast() }
        return slice
    }
}
