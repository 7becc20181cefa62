import WebSocketCodec
import WebSocketInspect

/// Runs a byte stream through the shared dissector and prints frames, messages and errors as
/// text or JSON Lines. Used by `decode` and `encode --describe`.
struct DissectionPrinter {
    var configuration: WebSocketDissectorConfiguration
    var direction: WebSocketDirection?
    var json: Bool
    var style = TerminalStyle(enabled: Output.colourEnabled)
    /// Show message lines in text mode even for single-frame messages.
    var allMessages = false

    struct Summary {
        var frames = 0
        var messages = 0
        var violations = 0
        var truncated = false
    }

    /// An HTTP head passed over at the start of a stream (see `Decode.passOverHTTP`).
    struct HTTPHeadNote {
        var startLine: String
        var offset: Int
        /// Bytes passed over: the head and its body (to the end of the input after a refusal).
        var length: Int
        /// Whether frames are read from right after it (the last request, or a 101 response).
        var framesFollow: Bool
        /// False when the input ends inside the head or its body.
        var ended: Bool
    }

    /// Dissects `bytes` as one stream. Returns the counts; violations and truncation are also
    /// printed. `heads`: HTTP heads passed over before `bytes`, shown first.
    @discardableResult
    func dissect(_ bytes: [UInt8], label: String? = nil, heads: [HTTPHeadNote] = []) -> Summary {
        var dissector = WebSocketStreamDissector(configuration: configuration, direction: direction)
        var summary = Summary()
        let extra: (inout OutputBuffer) -> Void = { w in if let label { w.jsonString("block", label) } }
        let echo = json ? JSONPayloadEcho() : nil
        if let label, !json { Output.line(style.dim("── \(label)")) }
        for h in heads {
            if json {
                var out = OutputBuffer(capacity: 256)
                out.beginJSONObject()
                out.jsonString("kind", "http_head")
                extra(&out)
                out.jsonString("start_line", h.startLine)
                out.jsonInt("offset", h.offset)
                out.jsonInt("length", h.length)
                out.jsonBool("ended", h.ended)
                out.jsonBool("frames_follow", h.framesFollow)
                out.endJSONLine()
                Output.line(out.makeLine())
            } else {
                let what = !h.ended ? "the input ends inside it"
                    : h.framesFollow ? "frames are read from after it" : "nothing after it is read as frames"
                Output.line(style.dim("HTTP passed over (\(h.length) bytes at \(h.offset)): \(TerminalText.safe(h.startLine)); \(what)"))
            }
        }
        func show(_ event: DissectionEventView) {
            switch event {
            case .resync:
                break  // only after a gap, which a dump does not have
            case .frame(let lent):
                let f = lent.pointee
                summary.frames += 1
                if json {
                    Output.withBuffer { DissectionRenderer.writeJSON(f, to: &$0, echo: echo, extra: extra) }
                } else {
                    Output.line(DissectionRenderer.text(f, style: style))
                }
            case .message(let lent):
                let m = lent.pointee
                summary.messages += 1
                if json {
                    Output.withBuffer { DissectionRenderer.writeJSON(m, to: &$0, echo: echo, extra: extra) }
                } else if allMessages || m.fragmentCount > 1 || m.compressed || m.envelope != nil || !m.violations.isEmpty {
                    Output.line(DissectionRenderer.text(m, style: style))
                }
            }
        }
        bytes.withUnsafeBytes { raw in dissector.feedViews(raw, show) }
        // Input that ends inside a frame: the frame is shown as far as it came, marked
        // incomplete, with what its header already broke (a control frame over 125 bytes, a
        // reserved opcode, a frame over the limit), and so is the message it was part of; then
        // the error says how much is missing.
        let pending = dissector.failure == nil ? dissector.pendingFrame : nil
        if pending != nil { dissector.finishViews(show) }
        summary.violations = dissector.violationCount
        if let failure = dissector.failure {
            let msg = "parsing stopped: \(failure.message); the \(bytes.count - failure.offset + 2) bytes from offset \(failure.offset - 2) cannot be framed"
            report(rule: "unparseable", message: msg, offset: failure.offset, closeCode: 1002, extra: extra)
        } else if let cut = heads.last, !cut.ended {
            summary.truncated = true
            report(rule: "truncated", message: "input ends inside the HTTP message at byte \(cut.offset) (its head or body: \(cut.length) bytes of it present)",
                   offset: cut.offset, closeCode: nil, extra: extra)
        } else if let pending {
            summary.truncated = true
            let msg = "input ends inside the frame at byte \(pending.offset): \(pending.received) bytes of it present, \(pending.missing) more needed"
            report(rule: "truncated", message: msg, offset: pending.offset, closeCode: nil, extra: extra)
        }
        return summary
    }

    private func report(rule: String, message: String, offset: Int, closeCode: Int?, extra: (inout OutputBuffer) -> Void) {
        if json {
            Output.line(DissectionRenderer.jsonError(rule: rule, message: message, offset: offset, closeCode: closeCode, extra: extra))
        } else {
            Output.line(style.red("error: \(rule): \(message)"))
        }
    }
}
