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

    /// Dissects `bytes` as one stream. Returns the counts; violations and truncation are also printed.
    @discardableResult
    func dissect(_ bytes: [UInt8], label: String? = nil) -> Summary {
        var dissector = WebSocketStreamDissector(configuration: configuration, direction: direction)
        var summary = Summary()
        let extra: (inout OutputBuffer) -> Void = { w in if let label { w.jsonString("block", label) } }
        let echo = json ? JSONPayloadEcho() : nil
        if let label, !json { Output.line(style.dim("── \(label)")) }
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
