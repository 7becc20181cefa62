// codec-bench: the codec's hot paths beside their baselines, measured in the same run.
//
// Prints `name value unit` lines. Each workload runs several rounds, interleaved with its
// baselines, and the best round counts (the least disturbed by other load on a shared machine).
// Ratios are printed as their own lines so that they can be compared across machines.
//
//   swift run -c release codec-bench            # all workloads
//   swift run -c release codec-bench --quick    # fewer rounds

import Foundation
import NIOCore
import NIOEmbedded
import NIOWebSocket
import WebSocketCodec

let quick = CommandLine.arguments.contains("--quick")
let rounds = quick ? 3 : 7

@inline(never)
func blackHole<T>(_ x: T) { withExtendedLifetime(x) {} }

func nowNs() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

/// Best time in seconds over `rounds` runs of `body`.
func bestSeconds(setup: () -> Void = {}, _ body: () -> Void) -> Double {
    var bestNs = UInt64.max
    for _ in 0..<rounds {
        setup()
        let t0 = nowNs()
        body()
        bestNs = min(bestNs, nowNs() - t0)
    }
    return Double(bestNs) / 1e9
}

func report(_ name: String, _ value: Double, _ unit: String) {
    print("\(name) \(String(format: value >= 100 ? "%.1f" : "%.3f", value)) \(unit)")
    fflush(nil)
}

var rng = SystemRandomNumberGenerator()
let MiB = 1 << 20

// MARK: memcpy and unmask, 1 MiB × 256

let memcpyReps = 256
var src = [UInt8](repeating: 0, count: MiB)
for i in 0..<src.count { src[i] = UInt8(truncatingIfNeeded: i &* 31) }
var dst = [UInt8](repeating: 0, count: MiB)
let tMemcpy = bestSeconds {
    src.withUnsafeBytes { s in dst.withUnsafeMutableBytes { d in
        for _ in 0..<memcpyReps { memcpy(d.baseAddress!, s.baseAddress!, MiB); blackHole(d.baseAddress) }
    } }
}
let memcpyGBs = Double(MiB * memcpyReps) / tMemcpy / 1e9
report("memcpy_1MiB", memcpyGBs, "GB/s")

let key = WebSocketCodec.WebSocketMaskingKey(0x37, 0xfa, 0x21, 0x3d)
var buf = src
let tUnmask = bestSeconds {
    buf.withUnsafeMutableBytes { b in
        for _ in 0..<memcpyReps { WebSocketMasking.apply(key, to: b); blackHole(b.baseAddress) }
    }
}
let unmaskGBs = Double(MiB * memcpyReps) / tUnmask / 1e9
report("unmask_1MiB_wsctl", unmaskGBs, "GB/s")

let nioKey = NIOWebSocket.WebSocketMaskingKey([0x37, 0xfa, 0x21, 0x3d])!
var nioBuf = ByteBufferAllocator().buffer(bytes: src)
let nioReps = 16  // NIO's per-byte loop is slow; fewer reps keep the run short
let tUnmaskNIO = bestSeconds {
    for _ in 0..<nioReps { nioBuf.webSocketUnmask(nioKey); blackHole(nioBuf) }
}
let unmaskNIOGBs = Double(MiB * nioReps) / tUnmaskNIO / 1e9
report("unmask_1MiB_nio", unmaskNIOGBs, "GB/s")
report("unmask_ratio_vs_memcpy", unmaskGBs / memcpyGBs, "x")
report("unmask_ratio_vs_nio", unmaskGBs / unmaskNIOGBs, "x")

// MARK: parse small masked text frames in 64 KiB chunks

func maskedFrames(count: Int, payload: [UInt8], opcode: WebSocketCodec.WebSocketOpcode) -> [UInt8] {
    var out: [UInt8] = []
    out.reserveCapacity(count * (payload.count + 14))
    for i in 0..<count {
        let k = WebSocketCodec.WebSocketMaskingKey(packed: UInt32(truncatingIfNeeded: i &* 2654435761))
        try! WebSocketCodec.WebSocketFrameEncoder.encode(WebSocketCodec.WebSocketFrame(opcode: opcode, maskingKey: k, payload: payload), into: &out)
    }
    return out
}

let smallCount = quick ? 200_000 : 1_000_000
let smallPayload = Array("0123456789abcdef".utf8)
let smallStream = maskedFrames(count: smallCount, payload: smallPayload, opcode: .text)
let chunk = 64 * 1024

func parseWSCtl(_ stream: [UInt8], expect: Int, binary: Bool) -> Double {
    var work = stream
    // Unmasking is in place: every round starts from a fresh copy of the masked bytes, made
    // (and its pages touched) before the clock starts.
    return bestSeconds(setup: { stream.withUnsafeBytes { src in work.withUnsafeMutableBytes { $0.copyMemory(from: src) } } }) {
        var parser = WebSocketFrameParser(configuration: .init(direction: .clientToServer, maxBufferedFrameSize: 1 << 20))
        var assembler = WebSocketMessageAssembler()
        var messages = 0
        var bytes = 0
        work.withUnsafeMutableBytes { raw in
            var i = 0
            while i < raw.count {
                let end = min(i + chunk, raw.count)
                parser.parse(UnsafeMutableRawBufferPointer(rebasing: raw[i..<end])) { piece in
                    let v = assembler.receive(piece) { item in
                        if case .message(let m) = item { messages += 1; bytes &+= m.payload.count }
                    }
                    precondition(v.isEmpty)
                }
                i = end
            }
        }
        precondition(messages == expect)
        blackHole(bytes)
    }
}

func parseNIO(_ stream: [UInt8], expect: Int, binary: Bool, maxFrameSize: Int) -> Double {
    let chunks: [ByteBuffer] = stride(from: 0, to: stream.count, by: chunk).map {
        ByteBufferAllocator().buffer(bytes: stream[$0..<min($0 + chunk, stream.count)])
    }
    return bestSeconds {
        let channel = EmbeddedChannel(handler: ByteToMessageHandler(WebSocketFrameDecoder(maxFrameSize: maxFrameSize)))
        var messages = 0
        for c in chunks {
            try! channel.writeInbound(c)
            while let frame = try! channel.readInbound(as: NIOWebSocket.WebSocketFrame.self) {
                let data = frame.unmaskedData
                if !binary {
                    let ok = data.withUnsafeReadableBytes { String(validating: $0, as: UTF8.self) != nil }
                    precondition(ok)
                }
                messages += 1
            }
        }
        precondition(messages == expect)
        _ = try? channel.finish()
    }
}

let tSmall = parseWSCtl(smallStream, expect: smallCount, binary: false)
let tSmallNIO = parseNIO(smallStream, expect: smallCount, binary: false, maxFrameSize: 1 << 14)
let smallRate = Double(smallCount) / tSmall / 1e6
let smallRateNIO = Double(smallCount) / tSmallNIO / 1e6
report("parse_16B_text_wsctl", smallRate, "Mframes/s")
report("parse_16B_text_nio", smallRateNIO, "Mframes/s")
report("parse_16B_text_ratio_vs_nio", smallRate / smallRateNIO, "x")

// MARK: parse 64 KiB masked binary frames

let bigCount = quick ? 256 : 1024
var bigPayload = [UInt8](repeating: 0, count: 64 * 1024)
for i in 0..<bigPayload.count { bigPayload[i] = UInt8.random(in: 0...255, using: &rng) }
let bigStream = maskedFrames(count: bigCount, payload: bigPayload, opcode: .binary)
let tBig = parseWSCtl(bigStream, expect: bigCount, binary: true)
let tBigNIO = parseNIO(bigStream, expect: bigCount, binary: true, maxFrameSize: 1 << 20)
let bigGBs = Double(bigStream.count) / tBig / 1e9
let bigGBsNIO = Double(bigStream.count) / tBigNIO / 1e9
report("parse_64KiB_binary_wsctl", bigGBs, "GB/s")
report("parse_64KiB_binary_nio", bigGBsNIO, "GB/s")
report("parse_64KiB_binary_ratio_vs_nio", bigGBs / bigGBsNIO, "x")

// MARK: encode small frames

let encodeCount = smallCount
var encodeOut = [UInt8](repeating: 0, count: encodeCount * (2 + smallPayload.count))
let tEncode = bestSeconds {
    var written = 0
    smallPayload.withUnsafeBytes { p in
        encodeOut.withUnsafeMutableBytes { out in
            for _ in 0..<encodeCount {
                written &+= WebSocketCodec.WebSocketFrameEncoder.encode(opcode: WebSocketCodec.WebSocketOpcode.text, payload: p,
                                                         into: UnsafeMutableRawBufferPointer(rebasing: out[written...]))
            }
        }
    }
    precondition(written == encodeOut.count)
    blackHole(encodeOut)
}
let nioPayload = ByteBufferAllocator().buffer(bytes: smallPayload)
let tEncodeNIO = bestSeconds {
    let channel = EmbeddedChannel(handler: NIOWebSocket.WebSocketFrameEncoder())
    var bytes = 0
    for i in 0..<encodeCount {
        try! channel.writeOutbound(NIOWebSocket.WebSocketFrame(fin: true, opcode: .text, data: nioPayload))
        while let b = try! channel.readOutbound(as: ByteBuffer.self) { bytes += b.readableBytes }
        blackHole(i)
    }
    while let b = try! channel.readOutbound(as: ByteBuffer.self) { bytes += b.readableBytes }
    precondition(bytes == encodeOut.count)
    _ = try? channel.finish()
}
let encRate = Double(encodeCount) / tEncode / 1e6
let encRateNIO = Double(encodeCount) / tEncodeNIO / 1e6
report("encode_16B_wsctl", encRate, "Mframes/s")
report("encode_16B_nio", encRateNIO, "Mframes/s")
report("encode_16B_ratio_vs_nio", encRate / encRateNIO, "x")

// MARK: UTF-8 validation, 1 MiB ASCII and mixed-script

func utf8Text(mixed: Bool) -> [UInt8] {
    let pieces = mixed
        ? ["Hello, world. ", "Grüße aus Köln. ", "Привет, мир! ", "你好，世界。", "こんにちは ", "😀🎉 ", "مرحبا ", "Ελληνικά "]
        : ["The quick brown fox jumps over the lazy dog. "]
    var out: [UInt8] = []
    var i = 0
    while out.count < MiB { out += Array(pieces[i % pieces.count].utf8); i += 1 }
    // Cut back to a character boundary at or below 1 MiB.
    var end = min(out.count, MiB)
    while end > 0 && out[end] & 0xC0 == 0x80 { end -= 1 }
    return Array(out[0..<end])
}

for (label, text) in [("ascii", utf8Text(mixed: false)), ("mixed", utf8Text(mixed: true))] {
    let reps = 64
    let tOurs = bestSeconds {
        text.withUnsafeBytes { b in
            for _ in 0..<reps { precondition(WebSocketUTF8Validator.firstInvalidIndex(b) == nil) }
        }
    }
    let tStd = bestSeconds {
        text.withUnsafeBytes { b in
            for _ in 0..<reps { precondition(String(validating: b, as: UTF8.self) != nil) }
        }
    }
    let ours = Double(text.count * reps) / tOurs / 1e9
    let std = Double(text.count * reps) / tStd / 1e9
    report("utf8_1MiB_\(label)_wsctl", ours, "GB/s")
    report("utf8_1MiB_\(label)_stdlib", std, "GB/s")
    report("utf8_1MiB_\(label)_ratio_vs_stdlib", ours / std, "x")
}
