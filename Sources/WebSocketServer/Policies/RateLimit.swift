/// The value of `--rate-limit`: messages per connection per unit of time, with an optional burst.
///
///     100        100 messages a second (a bare number is per second)
///     100/s      the same
///     6000/m     6000 a minute, i.e. 100 a second
///     3600/h     one a second
///     10/s:20    10 a second, with bursts of up to 20
///     0.5/s      one every two seconds
///
/// Units: `s`, `sec`, `second`; `m`, `min`, `minute`; `h`, `hour`. Without `:burst` the burst is
/// `max(1, messagesPerSecond)`: one second's worth, and never less than one message.
public struct RateLimit: Hashable, Sendable, CustomStringConvertible {
    /// The close code for a connection over its limit (DESIGN.md: 4004 rate limit exceeded).
    public static let closeCode: UInt16 = 4004

    public var messagesPerSecond: Double
    public var burst: Double

    /// `burst` nil means `max(1, messagesPerSecond)`.
    public init(messagesPerSecond: Double, burst: Double? = nil) {
        self.messagesPerSecond = messagesPerSecond
        self.burst = burst ?? max(1, messagesPerSecond)
    }

    /// Reads a `--rate-limit` value (see the type's description).
    public init(parsing text: String) throws(FlagValueError) {
        let usage = "expected a rate such as 100/s, 100, 6000/m or 10/s:20 (burst after the colon)"
        let trimmed = Substring(text).trimmingBlanks
        guard !trimmed.isEmpty else { throw FlagValueError(value: text, reason: usage) }
        var ratePart = trimmed
        var burstPart: Substring?
        if let colon = trimmed.firstIndex(of: ":") {
            ratePart = trimmed[..<colon].trimmingBlanks
            burstPart = trimmed[trimmed.index(after: colon)...].trimmingBlanks
        }
        guard let count = DecimalPrefix(ratePart) else { throw FlagValueError(value: text, reason: usage) }
        var seconds = 1.0
        let unitText = count.rest.trimmingBlanks
        if !unitText.isEmpty {
            guard unitText.first == "/" else {
                throw FlagValueError(value: text, reason: "unexpected \"\(unitText)\" after the number; \(usage)")
            }
            let unit = unitText.dropFirst().trimmingBlanks.lowercased()
            guard let length = Self.units[unit] else {
                throw FlagValueError(value: text, reason: "unknown unit \"\(unit)\"; use /s, /m or /h")
            }
            seconds = length
        }
        guard count.value > 0 else { throw FlagValueError(value: text, reason: "the rate must be more than zero") }
        let perSecond = count.value / seconds
        var burst: Double?
        if let burstPart {
            guard let size = DecimalPrefix(burstPart), size.rest.isEmpty else {
                throw FlagValueError(value: text, reason: "expected a number of messages after ':' (10/s:20)")
            }
            guard size.value >= 1 else {
                throw FlagValueError(value: text, reason: "the burst must be at least 1 message, or no message would ever pass")
            }
            burst = size.value
        }
        self.init(messagesPerSecond: perSecond, burst: burst)
    }

    /// A full bucket for one connection.
    public func makeBucket(now: Double? = nil) -> TokenBucket {
        TokenBucket(rate: messagesPerSecond, burst: burst, now: now)
    }

    public var description: String { "\(Self.format(messagesPerSecond))/s:\(Self.format(burst))" }

    private static func format(_ value: Double) -> String {
        value.rounded() == value && abs(value) < 1e15 ? String(Int(value)) : String(value)
    }

    static let units: [String: Double] = [
        "s": 1, "sec": 1, "second": 1,
        "m": 60, "min": 60, "minute": 60,
        "h": 3600, "hour": 3600,
    ]
}
