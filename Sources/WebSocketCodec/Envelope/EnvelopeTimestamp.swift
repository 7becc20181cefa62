#if canImport(FoundationEssentials)
import FoundationEssentials
#else
import Foundation
#endif

/// Reading and writing `metadata.timestamp`: ISO 8601 date-times in the extended format.
///
/// Written here because what peers send is wider than one `ISO8601FormatStyle` reads: JavaScript's
/// `toISOString()` gives `2024-05-01T12:34:56.789Z`, Python's `isoformat()` gives six fraction digits
/// and `+00:00`, or no offset at all for a naive datetime. Accepted (RFC 3339 §5.6 plus ISO 8601's
/// extended-format options):
///
///     YYYY-MM-DD ( T | t | space ) hh:mm [ :ss [ (. | ,) fraction ] ] [ Z | z | ±hh:mm | ±hhmm | ±hh ]
///
/// with every field range-checked (days per month with leap years, seconds up to 60 for a leap
/// second). A time without an offset is local time in ISO 8601; `date` reads it as UTC, since the
/// sender's zone is unknown. Dates alone, week dates, ordinal dates and the basic format
/// (`20240501T123456Z`) are refused: a message timestamp needs a time, and no peer writes those.
enum EnvelopeTimestamp {
    /// The instant the text names, or why it is not an ISO 8601 date-time.
    static func parse(_ text: String) -> Result<Date, Failure> {
        var scanner = Scanner(Array(text.utf8))
        do {
            return .success(try scanner.dateTime())
        } catch {
            return .failure(error)
        }
    }

    struct Failure: Error, Equatable {
        var reason: String
    }

    /// `YYYY-MM-DDThh:mm:ss.sssZ` in UTC, with milliseconds: what JavaScript's `toISOString()` writes,
    /// so every peer can read it back.
    static func format(_ date: Date) -> String {
        let milliseconds = Int64((date.timeIntervalSince1970 * 1000).rounded())
        let (days, msOfDay) = floorDivide(milliseconds, 86_400_000)
        let (year, month, day) = civil(fromDays: days)
        let hour = msOfDay / 3_600_000
        let minute = msOfDay / 60_000 % 60
        let second = msOfDay / 1000 % 60
        let ms = msOfDay % 1000
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(hour, 2)):\(pad(minute, 2)):\(pad(second, 2)).\(pad(ms, 3))Z"
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let digits = String(value)
        return digits.count >= width ? digits : String(repeating: "0", count: width - digits.count) + digits
    }

    private static func floorDivide(_ a: Int64, _ b: Int64) -> (quotient: Int64, remainder: Int64) {
        let q = a >= 0 ? a / b : (a - b + 1) / b
        return (q, a - q * b)
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant, "chrono-Compatible Low-Level
    /// Date Algorithms").
    static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The inverse of `days(fromCivil:_:_:)`.
    static func civil(fromDays days: Int64) -> (year: Int64, month: Int64, day: Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    static func daysInMonth(_ year: Int64, _ month: Int64) -> Int64 {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    private struct Scanner {
        let bytes: [UInt8]
        var index = 0

        init(_ bytes: [UInt8]) { self.bytes = bytes }

        var found: String {
            guard index < bytes.count else { return "the end" }
            let byte = bytes[index]
            return byte >= 0x20 && byte < 0x7F ? "'\(Character(Unicode.Scalar(byte)))'" : "byte 0x\(String(byte, radix: 16))"
        }

        mutating func number(_ digits: Int, _ what: String) throws(Failure) -> Int64 {
            var value: Int64 = 0
            for _ in 0..<digits {
                guard index < bytes.count, (0x30...0x39).contains(bytes[index]) else {
                    throw Failure(reason: "expected \(digits) digits for the \(what), found \(found)")
                }
                value = value * 10 + Int64(bytes[index] - 0x30)
                index += 1
            }
            return value
        }

        mutating func expect(_ byte: UInt8, _ what: String) throws(Failure) {
            guard index < bytes.count, bytes[index] == byte else {
                throw Failure(reason: "expected \(what), found \(found)")
            }
            index += 1
        }

        mutating func accept(_ options: UInt8...) -> Bool {
            guard index < bytes.count, options.contains(bytes[index]) else { return false }
            index += 1
            return true
        }

        func check(_ value: Int64, _ range: ClosedRange<Int64>, _ what: String) throws(Failure) {
            guard range.contains(value) else {
                throw Failure(reason: "\(what) \(value) is out of range \(range.lowerBound)–\(range.upperBound)")
            }
        }

        mutating func dateTime() throws(Failure) -> Date {
            let year = try number(4, "year")
            try expect(UInt8(ascii: "-"), "'-' after the year")
            let month = try number(2, "month")
            try check(month, 1...12, "month")
            try expect(UInt8(ascii: "-"), "'-' after the month")
            let day = try number(2, "day")
            try check(day, 1...EnvelopeTimestamp.daysInMonth(year, month), "day")
            guard accept(UInt8(ascii: "T"), UInt8(ascii: "t"), UInt8(ascii: " ")) else {
                throw Failure(reason: "expected 'T' and a time after the date, found \(found)")
            }
            let hour = try number(2, "hour")
            try check(hour, 0...23, "hour")
            try expect(UInt8(ascii: ":"), "':' after the hour")
            let minute = try number(2, "minute")
            try check(minute, 0...59, "minute")
            var seconds: Double = 0
            if accept(UInt8(ascii: ":")) {
                let whole = try number(2, "second")
                try check(whole, 0...60, "second")
                seconds = Double(whole)
                if accept(UInt8(ascii: "."), UInt8(ascii: ",")) {
                    let start = index
                    while index < bytes.count, (0x30...0x39).contains(bytes[index]) { index += 1 }
                    guard index > start else { throw Failure(reason: "expected digits after the decimal sign, found \(found)") }
                    seconds += Double("0." + String(decoding: bytes[start..<index], as: UTF8.self)) ?? 0
                }
            }
            var offsetMinutes: Int64 = 0
            if accept(UInt8(ascii: "Z"), UInt8(ascii: "z")) {
            } else if index < bytes.count, bytes[index] == UInt8(ascii: "+") || bytes[index] == UInt8(ascii: "-") {
                let sign: Int64 = bytes[index] == UInt8(ascii: "-") ? -1 : 1
                index += 1
                let hours = try number(2, "offset hours")
                try check(hours, 0...23, "offset hour")
                var minutes: Int64 = 0
                if index < bytes.count {
                    _ = accept(UInt8(ascii: ":"))
                    minutes = try number(2, "offset minutes")
                    try check(minutes, 0...59, "offset minute")
                }
                offsetMinutes = sign * (hours * 60 + minutes)
            }
            guard index == bytes.count else {
                throw Failure(reason: "unexpected \(found) after the time; expected Z, ±hh:mm or nothing")
            }
            let days = EnvelopeTimestamp.days(fromCivil: year, month, day)
            let whole = days * 86_400 + hour * 3600 + minute * 60 - offsetMinutes * 60
            return Date(timeIntervalSince1970: Double(whole) + seconds)
        }
    }
}
