import Foundation
import Testing

@testable import WebSocketServer

/// Origin, authentication and rate-limit policies, and the flag values that configure them.
@Suite enum PolicyTests {
    // MARK: - Origin

    @Suite struct Origins {
        @Test func noPatternsAllowEverything() {
            let policy = OriginPolicy(patterns: [])
            #expect(policy.allowsAnyOrigin)
            #expect(policy.allows(nil))
            #expect(policy.allows("https://anything.example"))
            #expect(policy.allows("not even an origin"))
        }

        @Test func starAllowsEverything() {
            let policy = OriginPolicy(patterns: ["https://a.example.com", "*"])
            #expect(policy.allowsAnyOrigin)
            #expect(policy.allows("http://evil.test:1234"))
        }

        /// A pattern with a scheme is an origin: scheme, host and port (the scheme's default when omitted).
        @Test(arguments: [
            ("https://app.example.com", true),
            ("HTTPS://APP.Example.COM", true),  // scheme and host are case-insensitive
            ("https://app.example.com:443", true),  // the default port, written out
            ("https://app.example.com.", true),  // a trailing dot on the host is the same host
            ("http://app.example.com", false),  // another scheme
            ("https://app.example.com:8443", false),  // another port
            ("https://example.com", false),
            ("https://xapp.example.com", false),
            ("https://sub.app.example.com", false),  // no wildcard in the pattern
            ("https://app.example.com.evil.test", false),
            ("null", false),
            ("", false),  // present but empty: malformed
            ("app.example.com", false),  // no scheme: not an origin
            ("https://app.example.com@evil.test", false),
        ])
        func exactOrigin(origin: String, allowed: Bool) {
            #expect(OriginPolicy(patterns: ["https://app.example.com"]).allows(origin) == allowed)
        }

        /// `*.` matches subdomains at any depth, never the bare domain or a look-alike.
        @Test(arguments: [
            ("https://a.example.com", true),
            ("https://a.b.c.example.com", true),
            ("https://A.EXAMPLE.COM", true),
            ("https://example.com", false),
            ("https://badexample.com", false),
            ("https://a.badexample.com", false),
            ("http://a.example.com", false),  // the pattern's scheme is https
            ("https://a.example.com:8443", false),  // and its port the default
            ("https://a.example.com.evil.test", false),
            ("https://evil.test/.example.com", false),  // a path cannot smuggle in the suffix
            ("https://evil.test?.example.com", false),
            ("https://evil.test#.example.com", false),
            ("https://user@a.example.com", false),
        ])
        func wildcardWithScheme(origin: String, allowed: Bool) {
            #expect(OriginPolicy(patterns: ["https://*.example.com"]).allows(origin) == allowed)
        }

        /// Without a scheme, a pattern names hosts: any scheme, any port unless one is given.
        @Test(arguments: [
            ("*.example.com", "http://a.example.com:3000", true),
            ("*.example.com", "wss://x.y.example.com", true),
            ("*.example.com", "https://example.com", false),
            ("localhost", "http://localhost:3000", true),
            ("localhost", "https://localhost", true),
            ("localhost", "http://localhost.evil.test", false),
            ("localhost:3000", "http://localhost:3000", true),
            ("localhost:3000", "https://localhost:3000", true),
            ("localhost:3000", "http://localhost:3001", false),
            ("localhost:3000", "http://localhost", false),
            ("*.example.com:8443", "https://a.example.com:8443", true),
            ("*.example.com:8443", "https://a.example.com", false),
        ])
        func hostPatterns(pattern: String, origin: String, allowed: Bool) {
            #expect(OriginPolicy(patterns: [pattern]).allows(origin) == allowed)
        }

        @Test(arguments: [
            ("http://localhost:3000", "http://localhost:3000", true),
            ("http://localhost:3000", "http://localhost:3001", false),
            ("http://localhost:3000", "https://localhost:3000", false),
            ("http://localhost", "http://localhost:80", true),
            ("http://localhost", "http://localhost:8080", false),
            ("http://localhost:*", "http://localhost:8080", true),
            ("http://localhost:*", "http://localhost", true),
            ("http://localhost:*", "https://localhost:8080", false),
            ("http://[::1]:8080", "http://[::1]:8080", true),
            ("http://[::1]:8080", "http://[::2]:8080", false),
            ("null", "null", true),
            ("null", "http://localhost", false),
        ])
        func portsAndSpecialOrigins(pattern: String, origin: String, allowed: Bool) {
            #expect(OriginPolicy(patterns: [pattern]).allows(origin) == allowed)
        }

        @Test func anyPatternInTheListIsEnough() {
            let policy = OriginPolicy(patterns: ["https://a.test", "http://localhost:3000"])
            #expect(policy.allows("https://a.test"))
            #expect(policy.allows("http://localhost:3000"))
            #expect(!policy.allows("https://b.test"))
            #expect(!policy.allowsAnyOrigin)
        }

        /// Non-browser clients send no Origin; the check is about browsers, so they pass (documented).
        @Test func missingOriginIsAllowedWithPatterns() {
            #expect(OriginPolicy(patterns: ["https://app.example.com"]).allows(nil))
        }

        @Test(arguments: [
            "", "   ", "https://", "*example.com", "https://*example.com", "foo.*.com", "https://a.*", "*.",
            "https://a.com/path", "https://a.com?q", "http://a.com:99999", "http://a.com:0", "http://a.com:x",
            "1http://a.com", "https://a.com@b.com", "https://[::1",
        ])
        func invalidPatternsAreReported(pattern: String) {
            let thrown = thrownError { try OriginPolicy(validating: [pattern]) }
            #expect(thrown is OriginPatternError, "threw \(String(describing: thrown))")
            // Unvalidated, a bad pattern matches nothing rather than widening the policy.
            #expect(!OriginPolicy(patterns: [pattern]).allows("https://a.com"))
        }

        @Test func patternErrorNamesThePattern() {
            do throws(OriginPatternError) {
                _ = try OriginPolicy(validating: ["https://ok.test", "https://*bad.test"])
                Issue.record("expected an error")
            } catch {
                #expect(error.pattern == "https://*bad.test")
                #expect(error.description.contains("https://*bad.test"))
            }
        }

        @Test func validPatternsValidate() throws {
            let policy = try OriginPolicy(validating: ["https://app.example.com/", "*.example.com", "localhost:*", "null", "*"])
            #expect(policy.allows("https://anything.test"))
        }

        @Test func closeCodeIs4003() {
            #expect(OriginPolicy.closeCode == 4003)
        }
    }

    // MARK: - Authentication

    @Suite struct Authentication {
        let policy = AuthPolicy(tokens: ["s3cret", "other-token"])

        @Test func noTokensAllowsEveryone() {
            let open = AuthPolicy(tokens: [String]())
            #expect(!open.isEnabled)
            #expect(open.check(query: nil, headers: []) == .allowed)
            #expect(open.check(query: "token=whatever", headers: []) == .allowed)
            #expect(open.accepts(token: "anything"))
        }

        @Test func emptyTokensAreIgnored() {
            #expect(!AuthPolicy(tokens: [""]).isEnabled)
            let policy = AuthPolicy(tokens: ["", "t"])
            #expect(policy.check(query: "token=", headers: []) == .missing)
        }

        @Test(arguments: [
            ("token=s3cret", AuthResult.allowed),
            ("?token=s3cret", .allowed),
            ("a=1&token=other-token&b=2", .allowed),
            ("token=s3cret#fragment", .allowed),
            ("token=wrong", .invalid),
            ("token=s3cre", .invalid),  // a prefix
            ("token=s3cret1", .invalid),  // an extension
            ("token=S3CRET", .invalid),  // tokens are case-sensitive
            ("token=s3cr%zzt", .invalid),  // malformed escape: tried, failed
            ("token=s3cret%", .invalid),
            ("token=", .missing),
            ("token", .missing),
            ("tokens=s3cret", .missing),
            ("a=1&b=2", .missing),
            ("", .missing),
            ("token=wrong&token=s3cret", .allowed),  // any presented token may match
        ])
        func queryToken(query: String, expected: AuthResult) {
            #expect(policy.check(query: query, headers: []) == expected)
        }

        @Test func noQueryAndNoHeaderIsMissing() {
            #expect(policy.check(query: nil, headers: []) == .missing)
            #expect(policy.check(query: nil, headers: [("Host", "example.com")]) == .missing)
        }

        /// `%XX` is decoded; `+` stays a plus sign (RFC 3986, what encodeURIComponent produces).
        @Test func queryTokenIsPercentDecoded() {
            let policy = AuthPolicy(tokens: ["a b+c/=é"])
            #expect(policy.check(query: "token=a%20b%2Bc%2F%3D%C3%A9", headers: []) == .allowed)
            #expect(policy.check(query: "token=a%20b+c/=%c3%a9", headers: []) == .allowed)
            #expect(policy.check(query: "token=a+b%2Bc%2F%3D%C3%A9", headers: []) == .invalid)
            #expect(policy.check(query: "%74oken=a%20b%2Bc%2F%3D%C3%A9", headers: []) == .allowed)
        }

        @Test(arguments: [
            ("Authorization", "Bearer s3cret", AuthResult.allowed),
            ("authorization", "bearer s3cret", .allowed),
            ("AUTHORIZATION", "BEARER   other-token  ", .allowed),
            ("Authorization", "Bearer\ts3cret", .allowed),
            ("Authorization", "Bearer wrong", .invalid),
            ("Authorization", "Bearer S3CRET", .invalid),
            ("Authorization", "Basic czNjcmV0", .missing),  // not a bearer token
            ("Authorization", "Bearer", .missing),
            ("Authorization", "Bearer   ", .missing),
            ("Authorization", "s3cret", .missing),
            ("X-Token", "Bearer s3cret", .missing),
        ])
        func bearerHeader(name: String, value: String, expected: AuthResult) {
            #expect(policy.check(query: nil, headers: [(name: name, value: value)]) == expected)
        }

        @Test func eitherPlaceMaySucceed() {
            #expect(policy.check(query: "token=wrong", headers: [("Authorization", "Bearer s3cret")]) == .allowed)
            #expect(policy.check(query: "token=s3cret", headers: [("Authorization", "Bearer wrong")]) == .allowed)
            #expect(policy.check(query: "token=wrong", headers: [("Authorization", "Bearer wrong")]) == .invalid)
            #expect(
                policy.check(query: nil, headers: [("Authorization", "Basic x"), ("Authorization", "Bearer s3cret")]) == .allowed)
        }

        @Test func closeCodes() {
            #expect(AuthResult.allowed.closeCode == nil)
            #expect(AuthResult.missing.closeCode == 4001)
            #expect(AuthResult.invalid.closeCode == 4002)
            #expect(AuthResult.missing.closeReason != nil)
            #expect((AuthResult.invalid.closeReason?.utf8.count ?? 999) <= 123)
        }

        @Test func acceptsToken() {
            #expect(policy.accepts(token: "s3cret"))
            #expect(policy.accepts(token: "other-token"))
            #expect(!policy.accepts(token: "s3cret "))
            #expect(!policy.accepts(token: ""))
        }

        @Test(arguments: [
            ("abc", "abc", true),
            ("abc", "abd", false),
            ("ab", "abc", false),
            ("abcd", "abc", false),
            ("", "abc", false),
            ("abcabc", "abc", false),  // a repetition of the secret is not the secret
        ])
        func constantTimeEqual(candidate: String, secret: String, equal: Bool) {
            #expect(AuthPolicy.constantTimeEqual(Array(candidate.utf8), Array(secret.utf8)) == equal)
        }
    }

    @Suite struct TokensFile {
        @Test func parseSkipsCommentsAndBlanksAndTrims() {
            let text = "\u{FEFF}# tokens for staging\n\n  alpha  \r\nbeta\n\t# indented comment\ngamma#not-a-comment\r\n\nalpha\n   \n"
            #expect(AuthTokensFile.parse(text) == ["alpha", "beta", "gamma#not-a-comment"])
        }

        @Test func parseOfNothingIsEmpty() {
            #expect(AuthTokensFile.parse("").isEmpty)
            #expect(AuthTokensFile.parse("# only\n\n").isEmpty)
        }

        @Test func loadReadsAFile() throws {
            let path = try temporaryFile("one\n# two\nthree\n")
            defer { try? FileManager.default.removeItem(atPath: path) }
            #expect(try AuthTokensFile.load(path: path) == ["one", "three"])
        }

        @Test func missingFileSaysSo() {
            let path = "/nonexistent-dir-for-wsctl-tests/tokens.txt"
            do throws(AuthTokensFileError) {
                _ = try AuthTokensFile.load(path: path)
                Issue.record("expected an error")
            } catch {
                #expect(error.path == path)
                #expect(error.description.contains(path))
                #expect(error.reason.contains("No such file"))
            }
        }

        @Test func directoryIsAnError() {
            let thrown = thrownError { try AuthTokensFile.load(path: NSTemporaryDirectory()) }
            #expect(thrown is AuthTokensFileError, "threw \(String(describing: thrown))")
        }

        /// An empty file must not quietly turn authentication off.
        @Test func fileWithoutTokensIsAnError() throws {
            let path = try temporaryFile("# nothing here\n\n")
            defer { try? FileManager.default.removeItem(atPath: path) }
            let thrown = thrownError { try AuthTokensFile.load(path: path) }
            #expect(thrown is AuthTokensFileError, "threw \(String(describing: thrown))")
        }

        @Test func nonUTF8FileIsAnError() throws {
            let path = NSTemporaryDirectory() + "wsctl-tokens-\(UUID().uuidString)"
            try Data([0x61, 0xFF, 0x0A]).write(to: URL(fileURLWithPath: path))
            defer { try? FileManager.default.removeItem(atPath: path) }
            let thrown = thrownError { try AuthTokensFile.load(path: path) }
            #expect(thrown is AuthTokensFileError, "threw \(String(describing: thrown))")
        }

        private func temporaryFile(_ contents: String) throws -> String {
            let path = NSTemporaryDirectory() + "wsctl-tokens-\(UUID().uuidString)"
            try contents.write(toFile: path, atomically: true, encoding: .utf8)
            return path
        }
    }

    // MARK: - Rate limit

    @Suite struct Buckets {
        /// The answers of `take` at each time, in order.
        private func takes(_ bucket: inout TokenBucket, at times: [Double]) -> [Bool] {
            times.map { bucket.take(now: $0) }
        }

        @Test func startsFullThenRefusesUntilRefilled() {
            var bucket = TokenBucket(rate: 2, burst: 2)
            // Full at the first take; half a token after 0.25 s; one after 1/rate seconds.
            let answers = takes(&bucket, at: [100, 100, 100, 100.25, 100.5, 100.5])
            #expect(answers == [true, true, false, false, true, false])
        }

        @Test func refillStopsAtTheBurst() {
            var bucket = TokenBucket(rate: 2, burst: 3, now: 0)
            let burst = takes(&bucket, at: [0, 0, 0, 0])
            #expect(burst == [true, true, true, false])
            // An hour idle refills to the burst, no further.
            let later = takes(&bucket, at: [3600, 3600, 3600, 3600])
            #expect(later == [true, true, true, false])
        }

        @Test func defaultBurstIsOneSecondButAtLeastOne() {
            #expect(TokenBucket(rate: 100).burst == 100)
            #expect(TokenBucket(rate: 0.5).burst == 1)
            var slow = TokenBucket(rate: 0.5)
            let answers = takes(&slow, at: [0, 1.9, 2])
            #expect(answers == [true, false, true])
        }

        @Test func steadyRateExactlyAtTheLimitPasses() {
            var bucket = TokenBucket(rate: 10, burst: 1)
            let answers = takes(&bucket, at: (0..<1000).map { Double($0) * 0.1 })
            let allAllowed = answers.allSatisfy { $0 }
            #expect(allAllowed, "refused at take \(answers.firstIndex(of: false) ?? -1)")
            let early = bucket.take(now: 999 * 0.1 + 0.05)
            #expect(!early)
        }

        @Test func sustainedOverloadIsRefused() {
            var bucket = TokenBucket(rate: 10, burst: 5)
            // 100 messages a second for 10 seconds against a limit of 10/s with a burst of 5:
            // the burst, then one per 0.1 s.
            let accepted = takes(&bucket, at: (0..<1000).map { Double($0) * 0.01 }).filter { $0 }.count
            #expect(accepted >= 100 && accepted <= 106)
        }

        @Test func clockGoingBackwardsAddsNothing() {
            var bucket = TokenBucket(rate: 1, burst: 1, now: 10)
            let answers = takes(&bucket, at: [10, 5, 10.5, 11])
            #expect(answers == [true, false, false, true])
        }

        @Test func secondsUntilNextToken() {
            var bucket = TokenBucket(rate: 4, burst: 1, now: 0)
            let full = bucket.secondsUntilNextToken(now: 0)
            let took = bucket.take(now: 0)
            let empty = bucket.secondsUntilNextToken(now: 0)
            let half = bucket.secondsUntilNextToken(now: 0.125)
            #expect(full == 0)
            #expect(took)
            #expect(empty == 0.25)
            #expect(half == 0.125)
        }
    }

    @Suite struct RateLimitFlag {
        @Test(arguments: [
            ("100", 100.0, 100.0),
            ("100/s", 100, 100),
            ("100/sec", 100, 100),
            ("6000/m", 100, 100),
            ("6000/min", 100, 100),
            ("3600/h", 1, 1),
            ("10/s:20", 10, 20),
            ("10/s:1", 10, 1),
            ("0.5/s", 0.5, 1),
            ("30/m", 0.5, 1),
            (" 5 / s : 7 ", 5, 7),
            ("5:2", 5, 2),
            ("10/S", 10, 10),
        ])
        func parses(text: String, rate: Double, burst: Double) throws {
            let limit = try RateLimit(parsing: text)
            #expect(limit.messagesPerSecond == rate)
            #expect(limit.burst == burst)
        }

        @Test(arguments: [
            "", "abc", "0", "0/s", "-5/s", "+5/s", "10/x", "10/", "10s", "10/s:", "10/s:0", "10/s:0.5", "10/s:abc",
            "10/s:-1", "1e3/s", "inf", "/s", ":5", "10/s:5:6",
        ])
        func refuses(text: String) {
            let thrown = thrownError { try RateLimit(parsing: text) }
            #expect(thrown is FlagValueError, "threw \(String(describing: thrown))")
        }

        @Test func errorNamesTheValue() {
            do throws(FlagValueError) {
                _ = try RateLimit(parsing: "10/fortnight")
                Issue.record("expected an error")
            } catch {
                #expect(error.value == "10/fortnight")
                #expect(error.description.contains("fortnight"))
            }
        }

        @Test func makesAMatchingBucket() throws {
            var bucket = try RateLimit(parsing: "2/s:3").makeBucket(now: 0)
            #expect(bucket.rate == 2)
            #expect(bucket.burst == 3)
            let answers = (0..<4).map { _ in bucket.take(now: 0) }
            #expect(answers == [true, true, true, false])
        }

        @Test func closeCodeIs4004() {
            #expect(RateLimit.closeCode == 4004)
        }
    }

    // MARK: - Sizes and durations

    @Suite struct SizesAndDurations {
        @Test(arguments: [
            ("1048576", 1_048_576),
            ("0", 0),
            ("100B", 100),
            ("100 b", 100),
            ("512k", 524_288),
            ("512K", 524_288),
            ("512KiB", 524_288),
            ("1KB", 1000),
            ("1kb", 1000),
            ("16M", 16_777_216),
            ("16MiB", 16_777_216),
            ("16mib", 16_777_216),
            ("16 MiB", 16_777_216),
            ("16MB", 16_000_000),
            ("1.5MB", 1_500_000),
            ("1.5M", 1_572_864),
            ("1.5MiB", 1_572_864),
            ("2G", 2_147_483_648),
            ("1GB", 1_000_000_000),
            ("1TiB", 1_099_511_627_776),
            ("1.1k", 1126),  // 1126.4, rounded down
            ("2.0K", 2048),
            (".5K", 512),
        ])
        func byteSizes(text: String, bytes: Int) throws {
            #expect(try ByteSizeFlag.parse(text) == bytes)
        }

        @Test(arguments: [
            "", "MiB", "-1", "+1", "16XB", "16 M B", "1e6", "abc", "0x10", "16MiBs", "99999999999999999999", "9000000T",
            "1..5M", ".",
        ])
        func badByteSizes(text: String) {
            let thrown = thrownError { try ByteSizeFlag.parse(text) }
            #expect(thrown is FlagValueError, "threw \(String(describing: thrown))")
        }

        @Test(arguments: [
            ("30s", 30.0),
            ("500ms", 0.5),
            ("2m", 120),
            ("10", 10),
            ("2.5", 2.5),
            ("1h", 3600),
            ("1m30s", 90),
            ("1h2m3s", 3723),
            ("1.5s", 1.5),
            ("250us", 0.000_25),
            ("0", 0),
            ("0s", 0),
        ])
        func durations(text: String, seconds: Double) throws {
            let parsed = try DurationFlag.parseSeconds(text)
            #expect(abs(parsed - seconds) < 1e-12)
        }

        @Test(arguments: ["", "s", "-5s", "5x", "5S", "5M", "1m30", "1e3s", "ms", "five", "5 s s", "1d"])
        func badDurations(text: String) {
            let thrown = thrownError { try DurationFlag.parseSeconds(text) }
            #expect(thrown is FlagValueError, "threw \(String(describing: thrown))")
        }
    }
}
