import Foundation
import Testing

@Suite("wsctl accept and key")
struct AcceptKeyTests {
    @Test func rfcExample() throws {
        // RFC 6455 §1.3: the sample nonce and its accept value.
        let r = try CLI.run(["accept", "dGhlIHNhbXBsZSBub25jZQ=="])
        #expect(r.status == 0)
        #expect(r.stdout == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\n")
        #expect(r.stderr.isEmpty)
    }

    @Test func checkMatches() throws {
        let r = try CLI.run(["accept", "dGhlIHNhbXBsZSBub25jZQ==", "--check", "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="])
        #expect(r.status == 0)
    }

    @Test func checkMismatchExits1() throws {
        let r = try CLI.run(["accept", "dGhlIHNhbXBsZSBub25jZQ==", "--check", "AAAAAAAAAAAAAAAAAAAAAAAAAAA="])
        #expect(r.status == 1)
        #expect(r.stderr.contains("mismatch"))
        #expect(r.stderr.contains("s3pPLMBiTxaQ9kYGzzhZRbK+xOo="))
    }

    @Test func invalidKeyWarns() throws {
        let r = try CLI.run(["accept", "not-a-key"])
        #expect(r.status == 0)
        #expect(r.stderr.contains("not a valid Sec-WebSocket-Key"))
    }

    @Test func missingKeyIsUsageError() throws {
        let r = try CLI.run(["accept"])
        #expect(r.status == 2)
    }

    @Test func keyIsBase64Of16RandomBytes() throws {
        let r = try CLI.run(["key", "--count", "50"])
        #expect(r.status == 0)
        let keys = r.stdout.split(separator: "\n").map(String.init)
        #expect(keys.count == 50)
        for k in keys {
            let data = try #require(Data(base64Encoded: k))
            #expect(data.count == 16)
        }
        #expect(Set(keys).count == 50)
    }

    @Test func keyWithAcceptAgreesWithAccept() throws {
        let r = try CLI.run(["key", "--accept"])
        let parts = r.stdout.trimmingCharacters(in: .whitespacesAndNewlines).split(separator: " ").map(String.init)
        #expect(parts.count == 2)
        let check = try CLI.run(["accept", parts[0], "--check", parts[1]])
        #expect(check.status == 0)
    }
}
