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
        /// Gaps in the stream (bytes a packet dump does not hold), and the bytes they cover.
        var gaps = 0
        var gapBytes = 0
    }

    /// `missing` bytes of the stream lie before `bytes[at]` but are not in the input: a packet dump
    /// with packets left out (not captured, or not pasted), as `PacketDumpStreams` finds.
    struct Gap: Equatable {
        var at: Int
        var missing: Int
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
        /// A gap in the input follows it or cuts it short (see `Decode.passOverHTTP(_:gaps:)`):
        /// not truncated input, and frames are looked for after the gap.
        var cutByGap = false
    }

    /// Dissects `bytes` as one stream. Returns the counts; violations and truncation are also
    /// printed. `heads`: HTTP heads passed over before `bytes`, shown first. `gaps`: where bytes
    /// are missing, each shown with a line and stepped over with the dissector's `skipViews` (a
    /// frame the gap fell inside keeps its boundary; otherwise frames are looked for again after
    /// it, and a resync line says where they start). `startOffset`: the stream offset of
    /// `bytes[0]` when it is not 0 (then `gaps` begins with one at 0, whose line says where it
    /// lies in the stream); frame offsets count from there.
    @discardableResult
    func dissect(_ bytes: [UInt8], label: String? = nil, heads: [HTTPHeadNote] = [], gaps: [Gap] = [], startOffset: Int = 0) -> Summary {
        var dissector = WebSocketStreamDissector(configuration: configuration, direction: direction)
        var summary = Summary()
        let extra: (inout OutputBuffer) -> Void = { w in if let label { w.jsonString("block", label) } }
        /// One JSON line of `kind` (with the block's label), its other keys written by `keys`.
        func jsonLine(_ kind: String, _ keys: (inout OutputBuffer) -> Void) {
            var out = OutputBuffer(capacity: 256)
            out.beginJSONObject()
            out.jsonString("kind", kind)
            extra(&out)
            keys(&out)
            out.endJSONLine()
            Output.line(out.makeLine())
        }
        let echo = json ? JSONPayloadEcho() : nil
        if let label, !json { Output.line(style.dim("── \(label)")) }
        for h in heads {
            if json {
                jsonLine("http_head") { out in
                    out.jsonString("start_line", h.startLine)
                    out.jsonInt("offset", h.offset)
                    out.jsonInt("length", h.length)
                    out.jsonBool("ended", h.ended)
                    out.jsonBool("frames_follow", h.framesFollow)
                    out.jsonBool("cut_by_gap", h.cutByGap)
                }
            } else {
                let what = h.cutByGap ? "a gap in the dump follows or cuts it: frames are looked for after the gap"
                    : !h.ended ? "the input ends inside it"
                    : h.framesFollow ? "frames are read from after it" : "nothing after it is read as frames"
                Output.line(style.dim("HTTP passed over (\(h.length) bytes at \(h.offset)): \(TerminalText.safe(h.startLine)); \(what)"))
            }
        }
        func show(_ event: DissectionEventView) {
            switch event {
            case .resync(let r):
                if json {
                    jsonLine("resync") { out in
                        out.jsonInt("gap_end", r.gapEnd)
                        out.jsonInt("offset", r.offset)
                        out.jsonInt("skipped_bytes", r.skipped)
                    }
                } else {
                    Output.line(style.yellow(DissectionRenderer.resyncText(r)))
                }
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
        // A message the input ends inside (no end of it came) is shown incomplete by
        // `finishViews`: where it began, for the truncation error.
        var unfinishedMessage: Int? = nil
        var finishing = false
        func showAtEnd(_ event: DissectionEventView) {
            if finishing, case .message(let lent) = event, lent.pointee.incomplete, unfinishedMessage == nil {
                unfinishedMessage = lent.pointee.offset
            }
            show(event)
        }
        bytes.withUnsafeBytes { raw in
            var at = 0
            var before = startOffset
            for gap in gaps where dissector.failure == nil {
                let upTo = min(max(gap.at, at), raw.count)
                if upTo > at { dissector.feedViews(UnsafeRawBufferPointer(rebasing: raw[at..<upTo]), show) }
                at = upTo
                guard dissector.failure == nil else { break }
                let offset = dissector.bytesFed + before
                summary.gaps += 1
                summary.gapBytes += gap.missing
                if json {
                    jsonLine("gap") { out in
                        out.jsonInt("offset", offset)
                        out.jsonInt("missing_bytes", gap.missing)
                    }
                } else {
                    Output.line(style.yellow("gap: \(gap.missing) bytes missing from the dump at byte \(offset)"))
                }
                dissector.skipViews(before + gap.missing, show)
                before = 0
            }
            if dissector.failure == nil && before > 0 { dissector.skipViews(before, show) }
            if dissector.failure == nil && at < raw.count { dissector.feedViews(UnsafeRawBufferPointer(rebasing: raw[at...]), show) }
        }
        // Input that ends inside a frame: the frame is shown as far as it came, marked
        // incomplete, with what its header already broke (a control frame over 125 bytes, a
        // reserved opcode, a frame over the limit), and so is the message it was part of; then
        // the error says how much is missing. A fragmented message the input ends inside is
        // shown incomplete too, and is truncated input as well. (And frames held after a gap
        // while their start was looked for come out.)
        let pending = dissector.failure == nil ? dissector.pendingFrame : nil
        if dissector.failure == nil {
            finishing = true
            dissector.finishViews(showAtEnd)
        }
        // A stream that ends in a gap was not cut short by the input: what is unfinished at its
        // end is what the gap took (its line, and the summary, say so).
        let endsInGap = gaps.last.map { $0.at >= bytes.count } ?? false
        summary.violations = dissector.violationCount
        if let failure = dissector.failure {
            let end = startOffset + bytes.count + gaps.reduce(0) { $0 + $1.missing }
            let msg = "parsing stopped: \(failure.message); the \(end - failure.offset + 2) bytes from offset \(failure.offset - 2) cannot be framed"
            report(rule: "unparseable", message: msg, offset: failure.offset, closeCode: 1002, extra: extra)
        } else if let cut = heads.last, !cut.ended, !cut.cutByGap {
            summary.truncated = true
            report(rule: "truncated", message: "input ends inside the HTTP message at byte \(cut.offset) (its head or body: \(cut.length) bytes of it present)",
                   offset: cut.offset, closeCode: nil, extra: extra)
        } else if !endsInGap, let pending {
            summary.truncated = true
            let msg = "input ends inside the frame at byte \(pending.offset): \(pending.received) bytes of it present, \(pending.missing) more needed"
            report(rule: "truncated", message: msg, offset: pending.offset, closeCode: nil, extra: extra)
        } else if !endsInGap, let begun = unfinishedMessage {
            summary.truncated = true
            let msg = "input ends inside a fragmented message begun at byte \(begun): its last frame (FIN) never came"
            report(rule: "truncated", message: msg, offset: begun, closeCode: nil, extra: extra)
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
