import ArgumentParser
import WebSocketCodec

extension WSCtlCommand {
    struct Accept: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "accept",
            abstract: "Compute (or check) the Sec-WebSocket-Accept value for a Sec-WebSocket-Key.",
            discussion: """
                The server proves it read the handshake by answering with base64(SHA-1(key + \
                "258EAFA5-E914-47DA-95CA-C5AB0DC85B11")) (RFC 6455 §4.2.2).

                Examples:
                  wsctl accept dGhlIHNhbXBsZSBub25jZQ==
                  wsctl accept dGhlIHNhbXBsZSBub25jZQ== --check s3pPLMBiTxaQ9kYGzzhZRbK+xOo=
                """
        )

        @Argument(help: "The Sec-WebSocket-Key the client sent.")
        var key: String

        @Option(name: .long, help: ArgumentHelp("Exit 1 unless VALUE is the right accept value.", valueName: "VALUE"))
        var check: String?

        func run() throws {
            let key = self.key.trimmingWhitespace()
            if !WebSocketHandshake.isValidKey(key) {
                Output.warning("'\(key)' is not a valid Sec-WebSocket-Key (base64 of 16 bytes, RFC 6455 §4.1); a strict server refuses it")
            }
            let accept = WebSocketHandshake.acceptValue(forKey: key)
            if let check {
                let given = check.trimmingWhitespace()
                if given == accept {
                    Output.line("ok: \(accept)")
                } else {
                    Output.line(accept)
                    Output.error("mismatch: expected Sec-WebSocket-Accept \(accept), got \(given)")
                    throw ExitCode.failure
                }
            } else {
                Output.line(accept)
            }
        }
    }

    struct Key: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "key",
            abstract: "Print a fresh random Sec-WebSocket-Key (16 random bytes, base64).",
            discussion: """
                Examples:
                  wsctl key
                  wsctl key --accept        # the key and the accept value a server must answer
                  wsctl key --count 3
                """
        )

        @Flag(name: .long, help: "Also print the matching Sec-WebSocket-Accept value.")
        var accept = false

        @Option(name: .long, parsing: .unconditional, help: "How many keys to print.")
        var count: Int = 1

        func validate() throws {
            guard count >= 1 && count <= 1_000_000 else { throw ValidationError("--count must be between 1 and 1000000") }
        }

        func run() throws {
            for _ in 0..<count {
                let key = WebSocketHandshake.randomKey()
                Output.line(accept ? "\(key) \(WebSocketHandshake.acceptValue(forKey: key))" : key)
            }
        }
    }
}

extension String {
    func trimmingWhitespace() -> String {
        var s = Substring(self)
        while let f = s.first, f.isWhitespace { s.removeFirst() }
        while let l = s.last, l.isWhitespace { s.removeLast() }
        return String(s)
    }
}
