/// A token bucket for `--rate-limit`: `rate` tokens a second flow in, up to `burst`; each message takes
/// one. A connection that finds the bucket empty is over its limit (the server closes it with 4004).
///
/// Time is passed in as monotonic seconds (the caller's clock, such as `NIODeadline.now()` as
/// seconds), never read here, so tests can step it exactly. The bucket starts full: a client may
/// send `burst` messages at once on connecting.
public struct TokenBucket: Sendable {
    /// Tokens added per second.
    public let rate: Double
    /// The most tokens the bucket holds, which is the most messages accepted at once.
    public let burst: Double
    /// Tokens available as of `updatedAt`.
    public private(set) var tokens: Double
    /// The time `tokens` was last brought up to date; nil until the first `take`.
    public private(set) var updatedAt: Double?

    /// - Parameters:
    ///   - rate: tokens per second; must be positive and finite.
    ///   - burst: the bucket's size; nil means `max(1, rate)`, a second's worth of messages, and
    ///     at least one so that a slow rate (`0.5/s`) still lets a message through. At least 1.
    ///   - now: the time the bucket starts full; nil starts the clock at the first `take`.
    public init(rate: Double, burst: Double? = nil, now: Double? = nil) {
        precondition(rate > 0 && rate.isFinite, "a token bucket needs a positive, finite rate")
        let size = burst ?? max(1, rate)
        precondition(size >= 1 && size.isFinite, "a token bucket needs a burst of at least 1")
        self.rate = rate
        self.burst = size
        self.tokens = size
        self.updatedAt = now
    }

    /// Takes one token if there is one: true when the message is within the limit.
    ///
    /// A `now` earlier than the last one (a clock that is not monotonic) adds nothing rather than
    /// taking tokens away. A hair of tolerance (10⁻⁹ token) keeps messages spaced exactly `1/rate`
    /// apart from being refused by floating-point rounding.
    public mutating func take(now: Double) -> Bool {
        refill(now: now)
        guard tokens >= 1 - 1e-9 else { return false }
        tokens = max(0, tokens - 1)
        return true
    }

    /// Seconds until a `take` would succeed (0 when it would now), for a `Retry-After` or a log line.
    public mutating func secondsUntilNextToken(now: Double) -> Double {
        refill(now: now)
        return tokens >= 1 - 1e-9 ? 0 : (1 - tokens) / rate
    }

    private mutating func refill(now: Double) {
        guard let last = updatedAt else {
            updatedAt = now
            return
        }
        guard now > last else { return }
        tokens = min(burst, tokens + (now - last) * rate)
        updatedAt = now
    }
}
