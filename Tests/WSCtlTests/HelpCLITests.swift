import Foundation
import Testing

/// `wsctl help NAME` shows a command's help, and is a usage error for a command that does not
/// exist (it printed the top-level help and exited 0).
@Suite("wsctl help")
struct HelpCLITests {
    @Test func helpForAnUnknownCommandIsAUsageError() throws {
        let r = try CLI.run(["help", "bogus"])
        #expect(r.status == 2 && r.stdout.isEmpty)
        #expect(r.stderr.contains("no command 'bogus'; the commands are accept, key, encode, decode, sniff, serve"), "\(r.stderr)")
    }

    @Test(arguments: ["accept", "key", "encode", "decode", "sniff", "serve"])
    func helpForEachCommand(_ name: String) throws {
        let r = try CLI.run(["help", name])
        #expect(r.status == 0)
        #expect(r.stdout.contains("USAGE: wsctl \(name)"), "\(r.stdout.prefix(300))")
    }

    @Test func helpAlone() throws {
        let r = try CLI.run(["help"])
        #expect(r.status == 0 && r.stdout.contains("SUBCOMMANDS:"))
    }
}
