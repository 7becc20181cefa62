import ArgumentParser

/// The `wsctl` root command. Subcommands live one per file in Commands/.
public struct WSCtlCommand: ParsableCommand {
    public static let version = "0.1.0"

    public static let configuration = CommandConfiguration(
        commandName: "wsctl",
        abstract: "A WebSocket protocol toolkit: handshake keys, frame encoding and decoding, traffic dissection, a test server.",
        discussion: """
            Examples:
              wsctl accept dGhlIHNhbXBsZSBub25jZQ==
              wsctl encode --text Hello --mask | wsctl decode --direction client
              xxd dump.bin | wsctl decode --json
            """,
        version: version,
        subcommands: [Accept.self, Key.self, Encode.self, Decode.self, Sniff.self, Serve.self]
    )

    public init() {}
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

extension WSCtlCommand {
    /// Runs the command line with the exit statuses of DESIGN.md: 0 success, 1 the input broke a
    /// rule or the operation failed, 2 usage error (swift-argument-parser's own default is 64).
    public static func runMain(_ arguments: [String]? = nil) -> Never {
        // A usage error found while the command runs (a --hex that holds no hex) is shown with
        // that command's usage, not the top level's.
        var parsed: any ParsableCommand.Type = Self.self
        // `wsctl help NAME` for a command that does not exist printed the top-level help, exit 0.
        let given = arguments ?? Array(CommandLine.arguments.dropFirst())
        if given.count >= 2, given[0] == "help", !given[1].hasPrefix("-") {
            let names = configuration.subcommands.compactMap { $0.configuration.commandName } + ["help"]
            if !names.contains(given[1]) {
                Output.errorRaw("Error: no command '\(given[1])'; the commands are \(names.dropLast().joined(separator: ", "))\n"
                                + "Usage: wsctl help <subcommand>\n  See 'wsctl --help' for more information.\n")
                Glibc.exit(2)
            }
        }
        do {
            var command = try parseAsRoot(arguments)
            parsed = type(of: command)
            try command.run()
            Output.flush()
            Glibc.exit(0)
        } catch {
            Output.flush()
            if exitCode(for: error) == .validationFailure {
                if parsed != Self.self, let name = parsed.configuration.commandName {
                    Output.errorRaw("Error: \(message(for: error))\nUsage: \(usageString(for: parsed))\n"
                                    + "  See 'wsctl \(name) --help' for more information.\n")
                } else {
                    Output.errorRaw(fullMessage(for: error) + "\n")
                }
                Glibc.exit(2)
            }
            self.exit(withError: error)
        }
    }
}
