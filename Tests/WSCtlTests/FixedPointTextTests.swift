import Foundation
import Testing
@testable import WSCtl

/// The time column of `sniff`'s text output, formatted without Foundation, against
/// `String(format:)` (glibc's printf: exact binary value, ties to even).
@Suite("Fixed-point text")
struct FixedPointTextTests {

    static func check(_ x: Double, digits: Int, width: Int, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(FixedPointText.format(x, digits: digits, width: width) == String(format: "%\(width).\(digits)f", x),
                "\(x) %\(width).\(digits)f", sourceLocation: sourceLocation)
    }

    @Test func edgeValues() {
        let values: [Double] = [0, -0.0, 1, -1, 0.5, 1.5, 2.5, 1e-7, -1e-7, 4e-7, 5e-7, 6e-7, 0.0000005, 0.0000015,
                                1.0 / 128, 3.0 / 128, 5.0 / 64, 0.1, 0.2, 0.3, 123.456, 1_790_000_000.123456,
                                1_790_000_000.9999996, 0x1p52, 0x1p53 + 2, 0x1p62, -0x1p62, .leastNonzeroMagnitude,
                                .leastNormalMagnitude, 9_999_999.9999995, 0.9999995, 999.9995, .infinity, -.infinity, .nan]
        for x in values {
            for (digits, width) in [(6, 11), (3, 0), (0, 5), (9, 1)] { Self.check(x, digits: digits, width: width) }
        }
    }

    /// Exact halves of the last digit, where rounding to even and rounding away differ.
    @Test func tiesRoundToEven() {
        for k in 0..<2000 {
            Self.check(Double(2 * k + 1) / 128, digits: 6, width: 11)
            Self.check(Double(2 * k + 1) / 2048, digits: 3, width: 0)
            Self.check(Double(2 * k + 1) / 2, digits: 0, width: 0)
            Self.check(-Double(2 * k + 1) / 128, digits: 6, width: 11)
        }
    }

    @Test func randomValuesOfEveryMagnitude() {
        var g = SplitMix(state: 31)
        for _ in 0..<20_000 {
            let exponent = Int.random(in: -30...62, using: &g)
            let x = Double(sign: Bool.random(using: &g) ? .minus : .plus, exponent: exponent,
                           significand: 1 + Double(g.next() >> 12) / 0x1p52)
            Self.check(x, digits: 6, width: 11)
            Self.check(x, digits: 3, width: 0)
        }
        // Capture times relative to the first packet, as sniff prints them.
        for _ in 0..<20_000 {
            let origin = 1_790_000_000 + Double(g.next() % 1_000_000) / 1e6
            let t = 1_790_000_000 + Double(g.next() % 100_000_000) / 1e6 + Double(g.next() % 1000) / 1e9
            Self.check(t - origin, digits: 6, width: 11)
        }
    }
}
