import Testing
@testable import WebSocketCodec

@Suite("Close codes (RFC 6455 §7.4)")
struct CloseCodeTests {
    /// §7.4.1 defines 1000–1003 and 1007–1011 for endpoints to send; 1004 is reserved, and 1005,
    /// 1006 and 1015 "MUST NOT be set as a status code in a Close control frame by an endpoint".
    /// The IANA registry (§11.7) has since added 1012–1014 for servers to send. §7.4.2: 0–999 are
    /// not used, the rest of 1000–2999 is reserved for future revisions of the protocol,
    /// 3000–3999 are for registered libraries and applications, 4000–4999 for private use, and
    /// nothing above 4999 is defined.
    static func mayBeSent(_ code: Int) -> Bool {
        let definedForSending: Set<Int> = [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014]
        if code < 1000 { return false }
        if code < 3000 { return definedForSending.contains(code) }
        return code < 5000
    }

    @Test("isSendable matches §7.4 for every 16-bit code")
    func sendableEverywhere() {
        var mismatches: [Int] = []
        for code in 0...65535 where WebSocketCloseCode(code: UInt16(code)).isSendable != Self.mayBeSent(code) {
            mismatches.append(code)
        }
        #expect(mismatches.isEmpty, "first mismatches: \(mismatches.prefix(10))")
    }

    @Test("every 16-bit code survives the round trip through the enum")
    func roundTripEverywhere() {
        var mismatches: [Int] = []
        for code in 0...65535 where WebSocketCloseCode(code: UInt16(code)).code != UInt16(code) {
            mismatches.append(code)
        }
        #expect(mismatches.isEmpty, "first mismatches: \(mismatches.prefix(10))")
    }

    static let named: [(UInt16, WebSocketCloseCode, String)] = [
        (1000, .normalClosure, "Normal Closure"),
        (1001, .goingAway, "Going Away"),
        (1002, .protocolError, "Protocol Error"),
        (1003, .unsupportedData, "Unsupported Data"),
        (1004, .reserved1004, "Reserved"),
        (1005, .noStatusReceived, "No Status Received"),
        (1006, .abnormalClosure, "Abnormal Closure"),
        (1007, .invalidFramePayloadData, "Invalid Frame Payload Data"),
        (1008, .policyViolation, "Policy Violation"),
        (1009, .messageTooBig, "Message Too Big"),
        (1010, .mandatoryExtension, "Mandatory Extension"),
        (1011, .internalError, "Internal Error"),
        (1012, .serviceRestart, "Service Restart"),
        (1013, .tryAgainLater, "Try Again Later"),
        (1014, .badGateway, "Bad Gateway"),
        (1015, .tlsHandshake, "TLS Handshake"),
    ]

    @Test("the codes the RFC and IANA name have their case and name")
    func namedCodes() {
        for (code, value, name) in Self.named {
            #expect(WebSocketCloseCode(code: code) == value)
            #expect(value.code == code)
            #expect(value.name == name)
            #expect(value.description == "\(code) \(name)")
        }
    }

    @Test("codes nobody named are kept as .unknown", arguments: [0 as UInt16, 999, 1016, 2999, 3000, 4000, 4999, 5000, 65535])
    func unknownCodes(code: UInt16) {
        #expect(WebSocketCloseCode(code: code) == .unknown(code))
    }

    @Test("the application codes of the house (DESIGN.md) say what they mean in wsctl serve, as private use", arguments: [
        (4000 as UInt16, "Unknown Error"), (4001, "Authentication Required"), (4002, "Authentication Failed"),
        (4003, "Origin Not Allowed"), (4004, "Rate Limit Exceeded"), (4005, "Message Too Large"),
    ])
    func applicationNames(code: UInt16, words: String) {
        #expect(WebSocketCloseCode(code: code).name == "Private use (4000-4999; in wsctl serve: \(words))")
    }

    @Test("unnamed codes are described by their range", arguments: [
        (0 as UInt16, "0-999"), (999, "0-999"), (1016, "1016-2999"), (2999, "1016-2999"),
        (3000, "3000-3999"), (3999, "3000-3999"), (4006, "4000-4999"), (4999, "4000-4999"),
        (5000, "5000"), (65535, "5000"),
    ])
    func rangeNames(code: UInt16, range: String) {
        #expect(WebSocketCloseCode(code: code).name.contains(range), "\(WebSocketCloseCode(code: code).name)")
    }

    @Test("the range names say which ranges are invalid to send")
    func rangeNamesSayInvalid() {
        for code: UInt16 in [0, 999, 1016, 2999, 5000, 65535] {
            #expect(WebSocketCloseCode(code: code).name.hasPrefix("Invalid"))
        }
        for code: UInt16 in [3000, 4999] {
            #expect(!WebSocketCloseCode(code: code).name.hasPrefix("Invalid"))
        }
    }
}

@Suite("Opcodes (RFC 6455 §5.2)")
struct OpcodeTests {
    static let defined: [UInt8: String] = [0x0: "continuation", 0x1: "text", 0x2: "binary", 0x8: "close", 0x9: "ping", 0xA: "pong"]

    @Test("all 16 values exist, with control bit, reserved flag and name", arguments: 0...15)
    func everyValue(value: Int) throws {
        let op = try #require(WebSocketOpcode(rawValue: UInt8(value)))
        #expect(op.rawValue == UInt8(value))
        #expect(op.isControl == (value >= 8), "§5.5: control opcodes have the high bit set")
        #expect(op.isReserved == (Self.defined[UInt8(value)] == nil))
        #expect(op.isDataStart == (value == 1 || value == 2))
        if let name = Self.defined[UInt8(value)] {
            #expect(op.name == name)
            #expect(WebSocketOpcode(parsing: name) == op)
            #expect(WebSocketOpcode(parsing: name.uppercased()) == op)
        } else {
            let hex = String(value, radix: 16)
            #expect(op.name == (value >= 8 ? "reserved-control-0x\(hex)" : "reserved-0x\(hex)"))
        }
        #expect(op.description == op.name)
    }

    @Test("numbers 0-15 parse in decimal and hex", arguments: 0...15)
    func parseNumbers(value: Int) {
        #expect(WebSocketOpcode(parsing: String(value))?.rawValue == UInt8(value))
        #expect(WebSocketOpcode(parsing: "0x" + String(value, radix: 16))?.rawValue == UInt8(value))
        #expect(WebSocketOpcode(parsing: "0X" + String(value, radix: 16, uppercase: true))?.rawValue == UInt8(value))
    }

    @Test("the named statics carry the §5.2 values")
    func statics() {
        #expect(WebSocketOpcode.continuation.rawValue == 0x0)
        #expect(WebSocketOpcode.text.rawValue == 0x1)
        #expect(WebSocketOpcode.binary.rawValue == 0x2)
        #expect(WebSocketOpcode.close.rawValue == 0x8)
        #expect(WebSocketOpcode.ping.rawValue == 0x9)
        #expect(WebSocketOpcode.pong.rawValue == 0xA)
    }

    @Test("short names parse", arguments: [("cont", 0 as UInt8), ("continue", 0), ("bin", 2), ("Ping", 9), ("PONG", 10)])
    func shortNames(text: String, value: UInt8) {
        #expect(WebSocketOpcode(parsing: text)?.rawValue == value)
    }

    @Test("values past 4 bits and nonsense are refused",
          arguments: ["16", "0x10", "255", "256", "-1", "", "0x", "texts", "1.0", " 1"])
    func rejects(text: String) {
        #expect(WebSocketOpcode(parsing: text) == nil)
    }

    @Test("rawValue past 4 bits is refused", arguments: [16 as UInt8, 0x80, 0xFF])
    func rawValueRejects(value: UInt8) {
        #expect(WebSocketOpcode(rawValue: value) == nil)
    }
}
