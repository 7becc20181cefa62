import Foundation
import Testing
import WebSocketCompression

/// `sniff --check-window` flags a compressed message whose back-reference reaches further than the
/// window agreed (RFC 7692 §7.1.2); without it, and in `decode` with `--window-bits`, as documented.
@Suite("Sniff and decode flag references beyond the agreed window", .timeLimit(.minutes(3)))
struct SniffWindowTests {
    /// 3,000 bytes of printable ASCII in which no three in a row occur twice, then the same again,
    /// deflated with a 32 KiB window: the copy refers 3,000 bytes back.
    static let payload: [UInt8] = {
        var state: UInt64 = 5
        var seen = Set<Int>()
        var text: [UInt8] = [65, 66]
        while text.count < 3_000 {
            state = state &* 6364136223846793005 &+ 1442695040888963407
            let b = UInt8(32 + (state >> 33) % 95)
            if seen.insert(Int(text[text.count - 2]) << 16 | Int(text[text.count - 1]) << 8 | Int(b)).inserted { text.append(b) }
        }
        return PerMessageDeflateCompressor().compress(text + text)
    }()

    static func sniff(_ extra: [String]) throws -> SniffOutput {
        let ext = "Sec-WebSocket-Extensions: permessage-deflate; server_max_window_bits=10\r\n"
        var c = SyntheticConnection(request: SyntheticConnection.request(ext), response: SyntheticConnection.response(ext))
        c.send(fromClient: false, SyntheticConnection.serverFrame(opcode: 1, rsv1: true, length: payload.count, payload))
        return try SniffUpgradeTests.run(c, extra)
    }

    @Test func sniffFlagsTheBreachWhenAsked() throws {
        let checked = try Self.sniff(["--check-window"])
        let m = try #require(checked.kind("message").first)
        let errors = m["errors"].array
        #expect(errors.compactMap { $0["rule"].string } == ["window-exceeded"], "\(m)")
        #expect(errors.first?["message"].string?.contains("3000 bytes back") == true)
        #expect(m["inflated_text"].string?.count == 6_000)
        let unchecked = try Self.sniff([])
        #expect(unchecked.kind("message").first?["errors"].array.isEmpty == true)
    }

    /// The fixture captures of Python's `websockets` (zlib, keeping to the 9, 10 and 12-bit windows
    /// it agreed): reading their codes finds nothing, and the output is the same byte for byte.
    @Test(arguments: ["deflate", "concurrent", "fragmented", "gap", "reordered"])
    func realPeersKeepToTheirWindows(_ name: String) throws {
        let plain = try CLI.run(["sniff", "-r", SniffFixtures.path(name), "--json", "--stats"])
        let checked = try CLI.run(["sniff", "-r", SniffFixtures.path(name), "--json", "--stats", "--check-window"])
        #expect(plain.status == 0 && checked.status == 0)
        #expect(checked.stdout == plain.stdout && checked.stderr == plain.stderr)
        #expect(plain.stdout.contains("max_window_bits=1") || plain.stdout.contains("max_window_bits=9"))
        #expect(!checked.stdout.contains("window-exceeded"))
    }

    @Test func decodeChecksWithTheWindowGiven() throws {
        var frame: [UInt8] = [0xC1, 126, UInt8(Self.payload.count >> 8), UInt8(Self.payload.count & 0xFF)]
        frame += Self.payload
        let hex = frame.map { String(format: "%02x", $0) }.joined()
        let narrow = try CLI.run(["decode", "--window-bits", "10", "--json"], stdin: Array(hex.utf8))
        #expect(narrow.stdout.contains("\"rule\":\"window-exceeded\""), "\(narrow.stdout.prefix(400))")
        #expect(narrow.status != 0)
        let wide = try CLI.run(["decode", "--window-bits", "12", "--json"], stdin: Array(hex.utf8))
        #expect(!wide.stdout.contains("window-exceeded") && wide.status == 0, "\(wide.stderr)")
    }
}
