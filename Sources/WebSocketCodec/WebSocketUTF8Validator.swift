internal import CSIMDKernels

/// An incremental UTF-8 validator for text messages and close reasons (RFC 6455 §5.6, §8.1).
///
/// The rules are RFC 3629's: no overlong forms, no surrogates (U+D800–U+DFFF), nothing above U+10FFFF,
/// so C0, C1 and F5–FF never appear. A text message arrives in fragments and a fragment in socket reads,
/// so the validator keeps the unfinished sequence between calls and fails as soon as a byte cannot
/// continue any valid sequence, even when the sequence began in an earlier call ("fail fast": Autobahn
/// 6.4.x expects the connection to be failed at the first bad byte, not at the end of the message).
///
/// How it is fast: runs of ASCII go 64 bytes per round (eight unaligned 64-bit loads OR-ed together);
/// other text goes 16 bytes per round through a SIMD check that compares each byte with the three
/// before it (loaded unaligned one, two and three bytes back), which needs no table and no shuffle.
/// A shift-based DFA, whose whole transition row for a byte is one `UInt64`, covers what the SIMD
/// check cannot: the first bytes of a call (a character begun in the previous fragment), the last
/// bytes, and the block that failed, walked byte by byte for the exact index.
public struct WebSocketUTF8Validator: Sendable {
    /// The DFA state, as the bit offset of its 6-bit field in a transition row (see `transitions`).
    @usableFromInline
    internal var state: UInt64

    @inlinable
    public init() { state = Self.accept }

    /// Feeds the next bytes of a message.
    ///
    /// Returns nil while the bytes so far can still be the start of valid UTF-8, or the index within
    /// `bytes` of the first byte that makes it invalid, even when the sequence that byte breaks began
    /// in an earlier call. After a failure the validator stays failed until `reset()`, and every later
    /// call returns 0 (also for empty input): nothing can follow the bad byte.
    @inlinable
    public mutating func validate(_ bytes: UnsafeRawBufferPointer) -> Int? {
        if state == Self.reject { return 0 }
        guard let base = bytes.baseAddress, !bytes.isEmpty else { return nil }
        let (newState, failure) = Self.transitions.withUnsafeBufferPointer { table in
            Self.run(table, base, bytes.count, state)
        }
        state = newState
        return failure
    }

    /// Feeds the next bytes of a message; see `validate(_:)` for the result.
    @inlinable
    public mutating func validate(_ bytes: [UInt8]) -> Int? {
        bytes.withUnsafeBytes { validate($0) }
    }

    /// True when no multi-byte sequence is left unfinished: call it at the end of a message, whose
    /// last frame must not cut a character in two (§8.1). False after a failure.
    @inlinable
    public var isAtCharacterBoundary: Bool { state == Self.accept }

    /// True once a byte has been rejected; stays true until `reset()`.
    @inlinable
    public var hasFailed: Bool { state == Self.reject }

    /// Starts over, for the next message.
    @inlinable
    public mutating func reset() { state = Self.accept }

    /// One-shot check of a whole message: the index of the first invalid byte, `bytes.count` if the
    /// bytes end in the middle of a sequence, or nil if they are valid UTF-8.
    @inlinable
    public static func firstInvalidIndex(_ bytes: UnsafeRawBufferPointer) -> Int? {
        var validator = WebSocketUTF8Validator()
        if let index = validator.validate(bytes) { return index }
        return validator.isAtCharacterBoundary ? nil : bytes.count
    }

    /// One-shot check of a whole message; see `firstInvalidIndex(_:)` for the result.
    @inlinable
    public static func firstInvalidIndex(_ bytes: [UInt8]) -> Int? {
        bytes.withUnsafeBytes { firstInvalidIndex($0) }
    }

    /// How many bytes of `bytes` are valid UTF-8 once a character cut off at the end (the bytes
    /// are the first of a longer text) is left out; nil when they are not valid UTF-8 before that.
    public static func validLengthBeforeCut(_ bytes: UnsafeRawBufferPointer) -> Int? {
        guard let bad = firstInvalidIndex(bytes) else { return bytes.count }
        guard bad >= bytes.count else { return nil }
        // Ends inside a sequence: cut back to its lead byte (at most 3 bytes back).
        var i = bytes.count
        while i > 0 && bytes.count - i < 3 && bytes[i - 1] & 0xC0 == 0x80 { i -= 1 }
        let start = i > 0 && bytes[i - 1] >= 0xC0 ? i - 1 : i
        return firstInvalidIndex(UnsafeRawBufferPointer(rebasing: bytes.prefix(start))) == nil ? start : nil
    }
}

// MARK: - The automaton

extension WebSocketUTF8Validator {
    // Each state is the bit offset of its field in a transition row. Reject is 0 so that a zero field,
    // which is what every byte not listed for a state gets, means "invalid"; reject then maps to itself.
    @usableFromInline static var reject: UInt64 { 0 }
    /// Between characters.
    @usableFromInline static var accept: UInt64 { 6 }
    /// One more continuation byte (80–BF) is needed.
    static var need1: UInt64 { 12 }
    /// Two more continuation bytes are needed.
    static var need2: UInt64 { 18 }
    /// Three more continuation bytes are needed (after F1–F3).
    static var need3: UInt64 { 24 }
    /// After E0: A0–BF, since 80–9F would make an overlong 3-byte form.
    static var afterE0: UInt64 { 30 }
    /// After ED: 80–9F, since A0–BF would encode a surrogate.
    static var afterED: UInt64 { 36 }
    /// After F0: 90–BF, since 80–8F would make an overlong 4-byte form.
    static var afterF0: UInt64 { 42 }
    /// After F4: 80–8F, since 90–BF would go beyond U+10FFFF.
    static var afterF4: UInt64 { 48 }

    /// The state after `byte` in `state` (RFC 3629 §4, the table of well-formed byte sequences).
    static func next(_ state: UInt64, _ byte: UInt8) -> UInt64 {
        let continuation = (0x80...0xBF).contains(byte)
        switch state {
        case accept:
            switch byte {
            case 0x00...0x7F: return accept
            case 0xC2...0xDF: return need1
            case 0xE0: return afterE0
            case 0xE1...0xEC, 0xEE...0xEF: return need2
            case 0xED: return afterED
            case 0xF0: return afterF0
            case 0xF1...0xF3: return need3
            case 0xF4: return afterF4
            default: return reject  // 80–BF stray continuation, C0–C1 and F5–FF never valid
            }
        case need1: return continuation ? accept : reject
        case need2: return continuation ? need1 : reject
        case need3: return continuation ? need2 : reject
        case afterE0: return (0xA0...0xBF).contains(byte) ? need1 : reject
        case afterED: return (0x80...0x9F).contains(byte) ? need1 : reject
        case afterF0: return (0x90...0xBF).contains(byte) ? need2 : reject
        case afterF4: return (0x80...0x8F).contains(byte) ? need2 : reject
        default: return reject
        }
    }

    /// One row per byte value: the next state for every state `s`, stored in bits `s..<s+6`.
    @usableFromInline
    static let transitions: [UInt64] = (0...255).map { byte in
        let states: [UInt64] = [accept, need1, need2, need3, afterE0, afterED, afterF0, afterF4]
        return states.reduce(0) { row, state in row | next(state, UInt8(byte)) << state }
    }

    /// Runs `count` bytes from `start`; returns the state after them and the index of the first
    /// rejected byte, if any.
    ///
    /// Three gears: bytes one at a time through the DFA until the state is between characters with
    /// three bytes of history behind it; then, with AVX2, the rest in one call (32-byte blocks), or
    /// without it 64-byte ASCII strides; then 16-byte blocks checked with SIMD comparisons
    /// (`blockCheck`), the last one ending at the last byte (it overlaps bytes already checked). A
    /// block that fails is walked again through the DFA, from the start of the character it cuts
    /// into, for the exact index.
    @inlinable
    static func run(
        _ table: UnsafeBufferPointer<UInt64>, _ base: UnsafeRawPointer, _ count: Int, _ start: UInt64
    ) -> (state: UInt64, failure: Int?) {
        var state = start
        var i = 0
        /// Every byte passed the block checks: the state after an unfinished character at the end,
        /// if any, for the next call to start from.
        @inline(__always) func stateAtEnd() -> (state: UInt64, failure: Int?) {
            let last = characterStart(base, count)
            return (walk(table, base + last, count &- last, accept).state, nil)
        }
        outer: while true {
            while state != accept || i < 3 {
                if i == count { return (state, nil) }
                state = (table[Int(base.load(fromByteOffset: i, as: UInt8.self))] &>> state) & 63
                if state == reject { return (reject, i) }
                i &+= 1
            }
            // With AVX2, everything left at once, 32 bytes at a time (ASCII blocks cheaply), the
            // last block overlapping; then only an unfinished character at the end, if any, goes
            // through the DFA. A block that fails is taken again below, for the exact index.
            if count &- i >= 32 {
                let through = validThrough(base, i, count)
                if through == count { return stateAtEnd() }
                if through > i {
                    // A character may be unfinished where the kernel stopped: the ASCII strides
                    // need one that is finished, so the block checks take it from there.
                    i = through
                } else {
                    // Without AVX2 (or with a first block that fails), ASCII 64 bytes at a time.
                    while count &- i >= 64 {
                        var any: UInt64 = 0
                        for k in stride(from: 0, to: 64, by: 8) {
                            any |= base.loadUnaligned(fromByteOffset: i &+ k, as: UInt64.self)
                        }
                        if any & 0x8080_8080_8080_8080 != 0 { break }
                        i &+= 64
                    }
                }
            }
            while count &- i >= 16 {
                let (valid, ascii) = blockCheck(base + i)
                if !valid {
                    let from = characterStart(base, i)
                    let (end, bad) = walk(table, base + from, i &+ 16 &- from, accept)
                    if end == reject { return (reject, from &+ bad) }
                    state = end
                    i &+= 16
                    continue outer
                }
                i &+= 16
                if ascii { continue outer }
            }
            // Fewer than 16 bytes left. With 19 bytes or more in all, the last 16 go through the
            // block check again, over bytes already checked (it needs only the three before its
            // block); then only an unfinished character at the end, if any, goes through the DFA,
            // for the state the next call starts from.
            if i < count && count >= 19 && blockCheck(base + (count &- 16)).valid { return stateAtEnd() }
            // Else one at a time from the last character start, for the index of the bad byte.
            i = characterStart(base, i)
            state = accept
            while i < count {
                state = (table[Int(base.load(fromByteOffset: i, as: UInt8.self))] &>> state) & 63
                if state == reject { return (reject, i) }
                i &+= 1
            }
            return (state, nil)
        }
    }

    /// `wsctl_utf8_valid_through`: `count` when every byte from `i` passes the block check, else
    /// where the checked blocks end (`i` without AVX2). Not inlinable, so that the C module stays
    /// this module's own.
    @usableFromInline
    static func validThrough(_ base: UnsafeRawPointer, _ i: Int, _ count: Int) -> Int {
        wsctl_utf8_valid_through(base.assumingMemoryBound(to: UInt8.self), i, count)
    }


    /// Checks the 16 bytes at `p` against the three bytes before them, which must exist and end
    /// consistently (every character before `p` that is complete is valid). RFC 3629 as comparisons:
    /// a byte is a continuation exactly when one of the three before it is a lead byte long enough to
    /// reach it; C0, C1 and F5–FF never occur; and the second byte after E0, ED, F0 and F4 is
    /// narrowed (overlong forms, surrogates, beyond U+10FFFF). `ascii` is true when all 16 bytes are.
    @inlinable
    @inline(__always)
    static func blockCheck(_ p: UnsafeRawPointer) -> (valid: Bool, ascii: Bool) {
        typealias V = SIMD16<UInt8>
        // Comparisons against vectors rather than scalars: the scalar overloads are not lowered to
        // single vector instructions.
        @inline(__always) func all(_ b: UInt8) -> V { V(repeating: b) }
        let cur = p.loadUnaligned(as: V.self)
        let p1 = p.loadUnaligned(fromByteOffset: -1, as: V.self)
        let p2 = p.loadUnaligned(fromByteOffset: -2, as: V.self)
        let p3 = p.loadUnaligned(fromByteOffset: -3, as: V.self)
        let isContinuation = (cur & all(0xC0)) .== all(0x80)
        let needsContinuation = (p1 .>= all(0xC0)) .| (p2 .>= all(0xE0)) .| (p3 .>= all(0xF0))
        var bad = isContinuation .^ needsContinuation
        bad .|= (cur & all(0xFE)) .== all(0xC0)
        bad .|= cur .>= all(0xF5)
        bad .|= (p1 .== all(0xE0)) .& (cur .< all(0xA0))
        bad .|= (p1 .== all(0xED)) .& (cur .> all(0x9F))
        bad .|= (p1 .== all(0xF0)) .& (cur .< all(0x90))
        bad .|= (p1 .== all(0xF4)) .& (cur .> all(0x8F))
        let flagged = unsafeBitCast(all(0).replacing(with: 0xFF, where: bad), to: SIMD2<UInt64>.self)
        let bytes = unsafeBitCast(cur, to: SIMD2<UInt64>.self)
        return (flagged[0] | flagged[1] == 0, (bytes[0] | bytes[1]) & 0x8080_8080_8080_8080 == 0)
    }

    /// Where the character that the byte at `i` falls into, or follows, begins: the last of the three
    /// bytes before `i` whose sequence reaches `i`, else `i` itself. Needs `i >= 3` and consistent bytes
    /// before `i`, as `blockCheck` leaves them.
    @inlinable
    @inline(__always)
    static func characterStart(_ base: UnsafeRawPointer, _ i: Int) -> Int {
        if base.load(fromByteOffset: i &- 1, as: UInt8.self) >= 0xC0 { return i &- 1 }
        if base.load(fromByteOffset: i &- 2, as: UInt8.self) >= 0xE0 { return i &- 2 }
        if base.load(fromByteOffset: i &- 3, as: UInt8.self) >= 0xF0 { return i &- 3 }
        return i
    }

    /// Walks `count` bytes one at a time from `start`; returns the state after them and the index of
    /// the first rejected byte, or `count` when none is rejected. The slow path, for the one block
    /// known to hold an error.
    @inlinable
    static func walk(
        _ table: UnsafeBufferPointer<UInt64>, _ base: UnsafeRawPointer, _ count: Int, _ start: UInt64
    ) -> (state: UInt64, failure: Int) {
        var s = start
        for k in 0..<count {
            s = (table[Int(base.load(fromByteOffset: k, as: UInt8.self))] &>> s) & 63
            if s == reject { return (reject, k) }
        }
        return (s, count)
    }
}
