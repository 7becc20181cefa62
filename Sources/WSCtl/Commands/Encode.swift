import ArgumentParser
import Foundation
import WebSocketCodec
import WebSocketCompression
import WebSocketInspect

extension WSCtlCommand {
    struct Encode: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "encode",
            abstract: "Build WebSocket frames (valid or deliberately broken) and print their bytes.",
            discussion: """
                The payload comes from --text (repeat it for several messages), --hex, --file PATH \
                (- for stdin), or stdin when it is a pipe. Without a payload, control frames are empty.

                Examples:
                  wsctl encode --text Hello                         # 81 05 48 65 6c 6c 6f
                  wsctl encode --text Hello --mask-key 37fa213d     # RFC 6455 §5.7 example
                  wsctl encode --text 'Hello world' --fragment 4 --mask
                  wsctl encode --close 1000 --reason bye --format xxd
                  wsctl encode --opcode ping --text hi
                  wsctl encode --text Hello --deflate               # RSV1, RFC 7692 §7.2.3
                  wsctl encode --opcode 3 --rsv2 --text x           # reserved opcode and bit
                  wsctl encode --hex 00ff --length-encoding 64      # non-minimal length
                  wsctl encode --text Hello --describe              # show what was built
                  wsctl encode --text Hello | wsctl decode
                """
        )

        @Option(name: .long, help: ArgumentHelp("A text payload; repeat for several messages.", valueName: "TEXT"))
        var text: [String] = []

        @Option(name: .long, help: ArgumentHelp("A payload given as hex (any format wsctl decode reads).", valueName: "HEX"))
        var hex: String?

        @Option(name: .long, help: ArgumentHelp("Read the payload from a file (- for stdin).", valueName: "PATH"))
        var file: String?

        @Option(name: .long, help: ArgumentHelp("Opcode: text, binary, continuation, close, ping, pong, or a number 0-15 (reserved ones too). Default: text for --text, else binary.", valueName: "OPCODE"))
        var opcode: String?

        @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Build a close frame with this code (any 0-65535, invalid ones too).", valueName: "CODE"))
        var close: Int?

        @Option(name: .long, help: ArgumentHelp("Close reason (with --close).", valueName: "TEXT"))
        var reason: String?

        @Flag(inversion: .prefixedNo, help: "Set FIN on the (last) frame.")
        var fin = true

        @Flag(name: .long, help: "Set RSV1.") var rsv1 = false
        @Flag(name: .long, help: "Set RSV2.") var rsv2 = false
        @Flag(name: .long, help: "Set RSV3.") var rsv3 = false

        @Flag(name: .long, help: "Mask with a random key (as a client must).")
        var mask = false

        @Option(name: .long, help: ArgumentHelp("Mask with this key (8 hex digits).", valueName: "HEX"))
        var maskKey: String?

        @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Split each message into frames of at most SIZE payload bytes.", valueName: "SIZE"))
        var fragment: Int?

        @Flag(name: .long, help: "Compress each message with permessage-deflate (RFC 7692) and set RSV1 on its first frame.")
        var deflate = false

        @Flag(name: .long, help: "With --deflate: reset the compression context between messages (no_context_takeover).")
        var noContextTakeover = false

        @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("With --deflate: LZ77 window bits, 9-15 (default: 15).", valueName: "BITS"))
        var windowBits: Int?

        @Option(name: .long, help: ArgumentHelp("Length encoding: minimal, 7, 16 or 64 (non-minimal ones are invalid on purpose).", valueName: "ENC"))
        var lengthEncoding: String = "minimal"

        @Option(name: .long, parsing: .unconditional, help: ArgumentHelp("Write this payload length in the header instead of the real one (to build truncated or overlong frames).", valueName: "N"))
        var claimLength: UInt64?

        @Option(name: .shortAndLong, help: ArgumentHelp("Output: hex, spaced, xxd, raw, base64, c, js.", valueName: "FORMAT"))
        var format: OutputFormat = .spaced

        @Flag(name: .long, help: "Print a decoded description of the frames instead of their bytes.")
        var describe = false

        @Flag(name: .long, help: "With --describe: JSON Lines, as wsctl decode --json.")
        var json = false

        enum OutputFormat: String, ExpressibleByArgument, CaseIterable {
            case hex, spaced, xxd, raw, base64, c, js
        }

        func validate() throws {
            let sources = (text.isEmpty ? 0 : 1) + (hex == nil ? 0 : 1) + (file == nil ? 0 : 1)
            if sources > 1 { throw ValidationError("give the payload one way: --text, --hex or --file") }
            if let opcode, WebSocketOpcode(parsing: opcode) == nil {
                throw ValidationError("--opcode must be a name (text, binary, continuation, close, ping, pong) or a number 0-15, got '\(opcode)'")
            }
            if let close, !(0...65535).contains(close) { throw ValidationError("--close takes a code 0-65535") }
            if close != nil && (hex != nil || file != nil || !text.isEmpty) {
                throw ValidationError("--close builds its own payload from the code and --reason")
            }
            if let maskKey, WebSocketMaskingKey(hex: maskKey) == nil {
                throw ValidationError("--mask-key takes 8 hex digits (4 bytes), got '\(maskKey)'")
            }
            if mask && maskKey != nil { throw ValidationError("use --mask (random key) or --mask-key, not both") }
            if let fragment, fragment < 1 { throw ValidationError("--fragment must be at least 1") }
            if WebSocketLengthEncoding(rawValue: lengthEncoding) == nil {
                throw ValidationError("--length-encoding takes minimal, 7, 16 or 64")
            }
            if let windowBits, !(9...15).contains(windowBits) { throw ValidationError("--window-bits takes 9-15") }
            // Options that shape what another option builds, given without it, would be dropped
            // without a word.
            if reason != nil && close == nil {
                throw ValidationError("--reason goes with --close (a close frame's payload is its code, then the reason)")
            }
            if !deflate && (windowBits != nil || noContextTakeover) {
                throw ValidationError("--\(windowBits != nil ? "window-bits" : "no-context-takeover") goes with --deflate")
            }
            if json && !describe { throw ValidationError("--json goes with --describe") }
            if claimLength != nil && fragment != nil { throw ValidationError("--claim-length applies to a single frame; leave out --fragment") }
        }

        func run() throws {
            let op: WebSocketOpcode
            var messages: [[UInt8]]
            if let close {
                op = .close
                messages = [WebSocketClosePayload.encode(code: WebSocketCloseCode(code: UInt16(close)), reason: reason ?? "")]
            } else {
                op = opcode.flatMap(WebSocketOpcode.init(parsing:)) ?? (text.isEmpty ? .binary : .text)
                messages = try payloads()
            }
            var compressor: PerMessageDeflateCompressor? = nil
            if deflate {
                compressor = PerMessageDeflateCompressor(PerMessageDeflateDirection(windowBits: windowBits ?? 15, noContextTakeover: noContextTakeover))
            }
            var out: [UInt8] = []
            let fixedKey = maskKey.flatMap(WebSocketMaskingKey.init(hex:))
            let keyFor: () -> WebSocketMaskingKey? = { fixedKey ?? (mask ? WebSocketMaskingKey.random() : nil) }
            for var payload in messages {
                if let c = compressor { payload = c.compress(payload) }
                let frames: [WebSocketFrame]
                if let size = fragment {
                    frames = WebSocketFrameEncoder.fragment(opcode: op, payload: payload, fragmentSize: size, compressed: deflate,
                                                            nextKey: (fixedKey != nil || mask) ? { keyFor()! } : nil)
                } else {
                    frames = [WebSocketFrame(opcode: op, maskingKey: keyFor(), payload: payload)]
                }
                for (i, var frame) in frames.enumerated() {
                    let last = i == frames.count - 1
                    if last { frame.fin = fin }
                    if i == 0 {
                        frame.rsv1 = frame.rsv1 || rsv1 || deflate
                        frame.rsv2 = rsv2
                        frame.rsv3 = rsv3
                    }
                    do {
                        try WebSocketFrameEncoder.encode(frame, lengthEncoding: WebSocketLengthEncoding(rawValue: lengthEncoding)!,
                                                         claimedLength: claimLength, into: &out)
                    } catch {
                        throw ValidationError("\(error)")
                    }
                }
            }
            if describe {
                var config = WebSocketDissectorConfiguration(maxPayloadShown: nil)
                config.clientMaxWindowBits = windowBits ?? 15
                config.serverMaxWindowBits = windowBits ?? 15
                config.clientNoContextTakeover = noContextTakeover
                config.serverNoContextTakeover = noContextTakeover
                let direction: WebSocketDirection? = (mask || maskKey != nil) ? .clientToServer : nil
                _ = DissectionPrinter(configuration: config, direction: direction, json: json).dissect(out)
            } else if format == .raw {
                Output.bytes(out)
            } else {
                Output.write(Self.render(out, format: format))
            }
            Output.flush()
        }

        private func payloads() throws -> [[UInt8]] {
            if !text.isEmpty { return text.map { Array($0.utf8) } }
            if let hex {
                do { return [try HexDumpReader.read(hex).bytes] } catch { throw ValidationError("--hex: \(error)") }
            }
            if let file { return [try Input.readAll(path: file)] }
            if let op = opcode.flatMap(WebSocketOpcode.init(parsing:)), op.isControl { return [[]] }
            if !Output.stdinIsTerminal { return [try Input.readAll(path: "-")] }
            return [[]]
        }

        static func render(_ bytes: [UInt8], format: OutputFormat) -> String {
            switch format {
            case .hex: return hexString(bytes) + "\n"
            case .spaced: return bytes.map { hexByte($0) }.joined(separator: " ") + "\n"
            case .raw: return String(decoding: bytes, as: UTF8.self)
            case .base64: return Data(bytes).base64EncodedString() + "\n"
            case .c:
                let body = bytes.map { "0x" + hexByte($0) }.chunked(12).map { "    " + $0.joined(separator: ", ") }.joined(separator: ",\n")
                return "const unsigned char frame[\(bytes.count)] = {\n\(body)\n};\n"
            case .js:
                return "Buffer.from([" + bytes.map { "0x" + hexByte($0) }.joined(separator: ", ") + "])\n"
            case .xxd:
                var lines: [String] = []
                for start in stride(from: 0, to: bytes.count, by: 16) {
                    let row = Array(bytes[start..<min(start + 16, bytes.count)])
                    var hex = ""
                    for (i, b) in row.enumerated() { hex += hexByte(b); if i % 2 == 1 { hex += " " } }
                    let off = String(start, radix: 16)
                    let padded = hex.padding(toLength: 40, withPad: " ", startingAt: 0)
                    let ascii = String(row.map { $0 >= 0x20 && $0 < 0x7F ? Character(UnicodeScalar($0)) : "." })
                    lines.append(String(repeating: "0", count: 8 - off.count) + off + ": " + padded + " " + ascii)
                }
                return lines.joined(separator: "\n") + (lines.isEmpty ? "" : "\n")
            }
        }
    }
}

func hexByte(_ b: UInt8) -> String { (b < 16 ? "0" : "") + String(b, radix: 16) }

extension Array {
    func chunked(_ n: Int) -> [[Element]] {
        stride(from: 0, to: count, by: n).map { Array(self[$0..<Swift.min($0 + n, count)]) }
    }
}
