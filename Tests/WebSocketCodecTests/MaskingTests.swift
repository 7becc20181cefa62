import Testing
@testable import WebSocketCodec

@Suite("Masking (RFC 6455 §5.3)")
struct MaskingTests {
    @Test("the §5.7 key 37fa213d masks Hello to 7f9f4d5158, and back")
    func rfcExample() {
        let key = WebSocketMaskingKey(0x37, 0xFA, 0x21, 0x3D)
        var bytes = Array("Hello".utf8)
        let phase = WebSocketMasking.apply(key, to: &bytes)
        #expect(Wire.hex(bytes) == "7f9f4d5158")
        #expect(phase == 1)
        WebSocketMasking.apply(key, to: &bytes)
        #expect(bytes == Array("Hello".utf8))
    }

    @Test("the fast path equals the scalar one and §5.3 for every length 0...300 and phase 0...3",
          arguments: 0...3)
    func fastEqualsScalar(phase: Int) {
        var rng = CodecTestRNG(seed: 0xA5A5 &+ UInt64(phase))
        var wrong: [String] = []
        for length in 0...300 {
            for _ in 0..<3 {
                let keyBytes = rng.key()
                let key = Wire.key(keyBytes)
                let original = rng.bytes(length)
                let expected = Wire.mask(original, key: keyBytes, phase: phase)

                var fast = original
                let fastPhase = fast.withUnsafeMutableBytes { WebSocketMasking.apply(key, to: $0, phase: phase) }
                var scalar = original
                let scalarPhase = scalar.withUnsafeMutableBytes { WebSocketMasking.applyScalar(key, to: $0, phase: phase) }

                if fast != expected { wrong.append("fast: length \(length), key \(Wire.hex(keyBytes)): \(byteDifference(fast, expected)!)") }
                if scalar != expected { wrong.append("scalar: length \(length): \(byteDifference(scalar, expected)!)") }
                if fastPhase != (phase + length) % 4 { wrong.append("fast: length \(length) returned phase \(fastPhase)") }
                if scalarPhase != (phase + length) % 4 { wrong.append("scalar: length \(length) returned phase \(scalarPhase)") }
            }
        }
        #expect(wrong.isEmpty, "\(wrong.count) failures, first: \(wrong.prefix(3))")
    }

    @Test("the fast path is right at unaligned starts and touches nothing outside its slice",
          arguments: 1...15)
    func unalignedStarts(start: Int) {
        var rng = CodecTestRNG(seed: 0xBEEF &+ UInt64(start))
        let guardBytes = 16
        var wrong: [String] = []
        for length in 0...300 {
            let phase = length % 4
            let keyBytes = rng.key()
            let key = Wire.key(keyBytes)
            let original = rng.bytes(start + length + guardBytes)
            var buffer = original
            let returned = buffer.withUnsafeMutableBytes { raw in
                WebSocketMasking.apply(key, to: UnsafeMutableRawBufferPointer(rebasing: raw[start..<(start + length)]), phase: phase)
            }
            let expectedSlice = Wire.mask(Array(original[start..<(start + length)]), key: keyBytes, phase: phase)
            if let d = byteDifference(Array(buffer[start..<(start + length)]), expectedSlice) { wrong.append("length \(length): \(d)") }
            if buffer[..<start] != original[..<start] { wrong.append("length \(length): bytes before the slice changed") }
            if buffer[(start + length)...] != original[(start + length)...] { wrong.append("length \(length): bytes after the slice changed") }
            if returned != (phase + length) % 4 { wrong.append("length \(length): returned phase \(returned)") }
        }
        #expect(wrong.isEmpty, "start \(start): \(wrong.count) failures, first: \(wrong.prefix(3))")
    }

    @Test("the returned phase lets a payload masked in random pieces equal one masked whole",
          arguments: [1 as UInt64, 2, 3, 4, 5, 6, 7, 8])
    func piecewiseEqualsWhole(seed: UInt64) {
        var rng = CodecTestRNG(seed: seed)
        for _ in 0..<40 {
            let length = rng.int(0...5000)
            let keyBytes = rng.key()
            let key = Wire.key(keyBytes)
            let original = rng.bytes(length)

            var whole = original
            WebSocketMasking.apply(key, to: &whole)
            #expect(byteDifference(whole, Wire.mask(original, key: keyBytes)) == nil)

            var pieces = original
            var phase = 0
            var start = 0
            pieces.withUnsafeMutableBytes { raw in
                while start < length {
                    let end = min(length, start + rng.int(1...(rng.bool() ? 7 : 200)))
                    phase = WebSocketMasking.apply(key, to: UnsafeMutableRawBufferPointer(rebasing: raw[start..<end]), phase: phase)
                    start = end
                }
            }
            #expect(byteDifference(pieces, whole) == nil, "length \(length)")
            #expect(phase == length % 4)
        }
    }

    @Test("apply(from:to:) masks into the destination and leaves the source untouched")
    func fromTo() {
        var rng = CodecTestRNG(seed: 99)
        for length in [0, 1, 3, 4, 7, 8, 63, 64, 65, 130, 1000] {
            for phase in 0...3 {
                let keyBytes = rng.key()
                let key = Wire.key(keyBytes)
                let source = rng.bytes(length)
                let sourceCopy = source
                var destination = [UInt8](repeating: 0xEE, count: length + 5)
                let returned = source.withUnsafeBytes { src in
                    destination.withUnsafeMutableBytes { dst in
                        WebSocketMasking.apply(key, from: src, to: dst, phase: phase)
                    }
                }
                #expect(source == sourceCopy)
                #expect(Array(destination[..<length]) == Wire.mask(source, key: keyBytes, phase: phase))
                #expect(Array(destination[length...]) == [UInt8](repeating: 0xEE, count: 5), "bytes past the source length changed")
                #expect(returned == (phase + length) % 4)
            }
        }
    }

    @Test("masking twice restores the bytes")
    func involution() {
        var rng = CodecTestRNG(seed: 5)
        for length in [0, 1, 5, 64, 100, 4096, 4099] {
            let key = WebSocketMaskingKey.random(using: &rng)
            let original = rng.bytes(length)
            var bytes = original
            WebSocketMasking.apply(key, to: &bytes, phase: 3)
            if length > 8 { #expect(bytes != original) }
            WebSocketMasking.apply(key, to: &bytes, phase: 3)
            #expect(bytes == original)
        }
    }

    @Test("a zero key changes nothing; an all-ones key inverts")
    func trivialKeys() {
        let original = Wire.pattern(300)
        var zero = original
        WebSocketMasking.apply(WebSocketMaskingKey(packed: 0), to: &zero)
        #expect(zero == original)
        var ones = original
        WebSocketMasking.apply(WebSocketMaskingKey(packed: .max), to: &ones, phase: 2)
        let inverted = original.map { ~$0 }
        #expect(ones == inverted)
    }

    // MARK: Keys

    @Test("keys keep their bytes in wire order")
    func keyBytes() {
        let key = WebSocketMaskingKey(0x37, 0xFA, 0x21, 0x3D)
        #expect(key.bytes == [0x37, 0xFA, 0x21, 0x3D])
        let subscripted = (0..<4).map { key[$0] }
        #expect(subscripted == [0x37, 0xFA, 0x21, 0x3D])
        #expect(key[4] == 0x37)
        #expect(key.hex == "37fa213d")
        #expect(key.description == "37fa213d")
        let fromBytes = ([0x37, 0xFA, 0x21, 0x3D, 0x99] as [UInt8]).withUnsafeBytes { WebSocketMaskingKey(bytes: $0) }
        #expect(fromBytes == key)
    }

    @Test("keys parse from hex in the forms tools print",
          arguments: ["37fa213d", "0x37fa213d", "37 fa 21 3d", "37:FA:21:3D", "37FA213D"])
    func keyFromHex(text: String) {
        #expect(WebSocketMaskingKey(hex: text)?.bytes == [0x37, 0xFA, 0x21, 0x3D])
    }

    @Test("malformed hex keys are refused", arguments: ["", "37fa21", "037fa213d", "37fa213d00", "37fa213g", "0x", "0x0x37fa213d"])
    func keyFromBadHex(text: String) {
        #expect(WebSocketMaskingKey(hex: text) == nil)
    }

    @Test("random keys come from the injected generator")
    func randomKeys() {
        var a = CodecTestRNG(seed: 1234)
        var b = CodecTestRNG(seed: 1234)
        let keysA = (0..<8).map { _ in WebSocketMaskingKey.random(using: &a) }
        let keysB = (0..<8).map { _ in WebSocketMaskingKey.random(using: &b) }
        #expect(keysA == keysB)
        #expect(Set(keysA).count > 1)
    }
}
