/// Reads a DEFLATE stream (RFC 1951) as it arrives, for one thing: the first back-reference that
/// reaches further back than an agreed window.
///
/// RFC 7692 §7.1.2.1 and §7.1.2.2: where `server_max_window_bits` or `client_max_window_bits` was
/// agreed, the sender must not use an LZ77 window longer than that. zlib does not tell: inflating
/// with the agreed window, it refuses a distance beyond its window only when the bytes referred to
/// are not in its output buffer, so a reference within one message's output goes through. This
/// check decodes the block headers and Huffman codes itself (it produces no output, it only counts
/// it) and compares every distance with the window.
///
/// It is fed each message's compressed bytes in order, in pieces of any size, then
/// `endMessage()`, which adds the tail RFC 7692 §7.2.2 appends (`00 00 ff ff`). Anything that is
/// not valid DEFLATE stops the check for the rest of the message without a verdict: zlib reports
/// that. Only the first breach of a message is kept.
struct DeflateWindowCheck {
    /// The longest distance allowed: 2^windowBits bytes.
    let window: Int

    /// Bytes not read yet, from the start of the item being read (an item is read whole or not at
    /// all: a block header with its code tables, or one literal, or one length with its distance).
    private var pending: [UInt8] = []
    /// Where in `pending`, in bits, the next item starts.
    private var bit = 0
    private var state = State.blockHeader
    /// The block being read has BFINAL set: after it the stream is over.
    private var lastBlock = false
    private var literals = Self.fixedLiterals
    private var distances = Self.fixedDistances
    /// `literals` and `distances` are the fixed codes (assigned again only after a dynamic block).
    private var codesAreFixed = true
    /// Bytes the message inflates to so far.
    private(set) var inflated = 0
    /// Bytes of the message taken out of `pending` (read before the item it starts with).
    private var dropped = 0
    /// The first distance beyond the window in this message, how many bytes the message had
    /// inflated to before the copy it starts, and the compressed byte where its code starts.
    private(set) var breach: Breach?

    typealias Breach = (distance: Int, at: Int, offset: Int)

    private enum State {
        case blockHeader
        case stored(remaining: Int)
        case codes
        /// The final block ended, the stream is not DEFLATE, or a breach was found.
        case over
    }

    init(windowBits: Int) {
        window = 1 << windowBits
    }

    /// The most bytes an item takes: a dynamic block's header with its code tables is at most
    /// 14 + 19 × 3 + 316 × 14 bits (570 bytes); a literal, or a length with its distance, 6 bytes.
    static let longestItem = 1024

    /// Reads the next compressed bytes of the message.
    mutating func feed(_ bytes: UnsafeRawBufferPointer) {
        guard !bytes.isEmpty else { return }
        if case .over = state { return }
        guard !pending.isEmpty else { return readInPlace(bytes, at: bit) }
        // An item the last bytes ended inside: completed from the first of these (at most one
        // item's worth is copied), then the rest is read where it lies.
        let held = pending.count
        let head = min(bytes.count, Self.longestItem)
        pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[..<head]))
        var at = 0
        pending.withUnsafeBytes { buffer in
            var reader = BitReader(buffer, at: bit)
            read(&reader)
            at = reader.at
        }
        if case .over = state { return }
        let used = at >> 3
        if used >= held && head < bytes.count {
            pending.removeAll(keepingCapacity: true)
            dropped += held
            readInPlace(bytes, at: at - held << 3)
            return
        }
        // (All of the bytes were taken, or the item is still not complete: only when it is not
        // DEFLATE, and then never more than `longestItem` past where it began.)
        if head < bytes.count { pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[head...])) }
        pending.removeFirst(used)
        bit = at - used << 3
        dropped += used
    }

    /// Reads `bytes` from bit `at` where they lie; only an item they end inside is kept in
    /// `pending` for the next call.
    private mutating func readInPlace(_ bytes: UnsafeRawBufferPointer, at: Int) {
        var reader = BitReader(bytes, at: at)
        read(&reader)
        let used = reader.at >> 3
        if case .over = state {} else if used < bytes.count {
            pending.append(contentsOf: UnsafeRawBufferPointer(rebasing: bytes[used...]))
        }
        bit = reader.at - used << 3
        dropped += used
    }

    /// Ends the message: reads the appended tail, returns the breach if there was one (and how
    /// many bytes the message inflated to, as far as it was read), and starts over for the next
    /// message, which begins on a byte boundary (the tail's empty stored block ends on one), with
    /// a new stream if this one ended.
    @discardableResult
    mutating func endMessage() -> (breach: Breach?, inflated: Int) {
        withUnsafeBytes(of: (UInt32(0xFFFF_0000)).littleEndian) { feed($0) }
        let found = (breach, inflated)
        pending.removeAll(keepingCapacity: pending.capacity <= 1024)
        bit = 0
        state = .blockHeader
        lastBlock = false
        inflated = 0
        dropped = 0
        breach = nil
        return found
    }

    private mutating func read(_ r: inout BitReader) {
        while true {
            let start = r.at
            switch state {
            case .over:
                return
            case .blockHeader:
                guard let header = r.take(3) else { r.at = start; return }
                lastBlock = header & 1 == 1
                switch header >> 1 {
                case 0:
                    r.at = (r.at + 7) & ~7
                    guard let length = r.take(16), let complement = r.take(16) else { r.at = start; return }
                    guard length == ~complement & 0xFFFF else { state = .over; return }
                    state = .stored(remaining: length)
                case 1:
                    if !codesAreFixed {
                        literals = Self.fixedLiterals
                        distances = Self.fixedDistances
                        codesAreFixed = true
                    }
                    state = .codes
                case 2:
                    switch readTables(&r) {
                    case .needMore: r.at = start; return
                    case .invalid: state = .over; return
                    case .read: state = .codes
                    }
                default:
                    state = .over
                    return
                }
            case .stored(let remaining):
                if remaining == 0 {
                    state = lastBlock ? .over : .blockHeader
                    continue
                }
                // A stored block's bytes start on a byte boundary.
                let count = min(remaining, r.available >> 3)
                if count == 0 { return }
                r.at += count << 3
                inflated += count
                state = .stored(remaining: remaining - count)
            case .codes:
                guard let symbol = literals.decode(&r) else { r.at = start; return }
                if symbol < 256 {
                    inflated += 1
                } else if symbol == 256 {
                    state = lastBlock ? .over : .blockHeader
                } else {
                    let index = symbol - 257
                    guard index < 29 else { state = .over; return }
                    guard let lengthExtra = r.take(Int(Self.lengthExtra[index])),
                          let distanceSymbol = distances.decode(&r) else { r.at = start; return }
                    guard distanceSymbol < 30 else { state = .over; return }
                    guard let distanceExtra = r.take(Int(Self.distanceExtra[distanceSymbol])) else { r.at = start; return }
                    let distance = Int(Self.distanceBase[distanceSymbol]) + distanceExtra
                    if distance > window {
                        breach = (distance, inflated, dropped + start >> 3)
                        state = .over
                        return
                    }
                    inflated += Int(Self.lengthBase[index]) + lengthExtra
                }
            }
        }
    }

    private enum TablesRead { case read, needMore, invalid }

    /// A dynamic block's code tables (RFC 1951 §3.2.7).
    private mutating func readTables(_ r: inout BitReader) -> TablesRead {
        guard let hlit = r.take(5), let hdist = r.take(5), let hclen = r.take(4) else { return .needMore }
        let literalCount = hlit + 257, distanceCount = hdist + 1
        guard literalCount <= 286, distanceCount <= 30 else { return .invalid }
        var codeLengthLengths = [UInt8](repeating: 0, count: 19)
        for i in 0..<(hclen + 4) {
            guard let length = r.take(3) else { return .needMore }
            codeLengthLengths[Int(Self.codeLengthOrder[i])] = UInt8(length)
        }
        guard let codeLengths = Huffman(lengths: codeLengthLengths[...]) else { return .invalid }
        var lengths: [UInt8] = []
        lengths.reserveCapacity(literalCount + distanceCount)
        while lengths.count < literalCount + distanceCount {
            guard let symbol = codeLengths.decode(&r) else { return .needMore }
            let value: UInt8, times: Int
            switch symbol {
            case 0..<16:
                value = UInt8(symbol); times = 1
            case 16:
                guard let previous = lengths.last else { return .invalid }
                guard let extra = r.take(2) else { return .needMore }
                value = previous; times = 3 + extra
            case 17:
                guard let extra = r.take(3) else { return .needMore }
                value = 0; times = 3 + extra
            case 18:
                guard let extra = r.take(7) else { return .needMore }
                value = 0; times = 11 + extra
            default:
                return .invalid
            }
            guard lengths.count + times <= literalCount + distanceCount else { return .invalid }
            lengths.append(contentsOf: repeatElement(value, count: times))
        }
        // A block without an end-of-block code could never end.
        guard lengths[256] != 0,
              let l = Huffman(lengths: lengths[0..<literalCount]),
              let d = Huffman(lengths: lengths[literalCount...]) else { return .invalid }
        literals = l
        distances = d
        codesAreFixed = false
        return .read
    }

    // MARK: Tables of RFC 1951 §3.2.5 and §3.2.6

    private static let lengthBase: [UInt16] = [
        3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258,
    ]
    private static let lengthExtra: [UInt8] = [
        0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0,
    ]
    private static let distanceBase: [UInt16] = [
        1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97, 129, 193, 257, 385, 513, 769, 1025, 1537, 2049, 3073,
        4097, 6145, 8193, 12289, 16385, 24577,
    ]
    private static let distanceExtra: [UInt8] = [
        0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6, 6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13,
    ]
    private static let codeLengthOrder: [UInt8] = [16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15]
    private static let fixedLiterals = Huffman(
        lengths: ([UInt8](repeating: 8, count: 144) + [UInt8](repeating: 9, count: 112)
            + [UInt8](repeating: 7, count: 24) + [UInt8](repeating: 8, count: 8))[...])!
    /// All 32 five-bit codes: 30 and 31 are read, and refused as distances.
    private static let fixedDistances = Huffman(lengths: [UInt8](repeating: 5, count: 32)[...])!
}

/// Bits of a byte buffer, least significant first (RFC 1951 §3.1.1).
private struct BitReader {
    let base: UnsafeRawPointer?
    let count: Int
    var at: Int

    init(_ bytes: UnsafeRawBufferPointer, at: Int) {
        base = bytes.baseAddress
        count = bytes.count
        self.at = at
    }

    var available: Int { count &<< 3 &- at }

    /// The next 57 bits or more from `at`, first bit lowest, zeros past the end.
    @inline(__always)
    func peek() -> UInt64 {
        let byte = at &>> 3
        var word: UInt64 = 0
        if count &- byte >= 8 {
            word = UInt64(littleEndian: base!.loadUnaligned(fromByteOffset: byte, as: UInt64.self))
        } else {
            var k = 0
            while byte &+ k < count {
                word |= UInt64(base!.load(fromByteOffset: byte &+ k, as: UInt8.self)) &<< UInt64(8 &* k)
                k &+= 1
            }
        }
        return word &>> UInt64(at & 7)
    }

    /// The next `count` bits (at most 16) as a number, first bit lowest; nil if there are fewer.
    @inline(__always)
    mutating func take(_ n: Int) -> Int? {
        guard available >= n else { return nil }
        let value = Int(truncatingIfNeeded: peek() & (UInt64(1) &<< UInt64(n) &- 1))
        at &+= n
        return value
    }
}

/// A canonical Huffman code (RFC 1951 §3.2.2), from the code length of each symbol.
private struct Huffman {
    /// How many codes there are of each length, 0 to 15.
    private var counts = [UInt16](repeating: 0, count: 16)
    /// The symbols in code order: by length, then by symbol.
    private var symbols: [UInt16]
    /// For every 8 bits that may come next, the symbol whose code they start with and the code's
    /// length (`symbol << 4 | length`), or 0 where the code is longer than 8 bits.
    private var lookup: [UInt16]

    /// Nil when the lengths ask for more codes than there are (over-subscribed). Fewer codes than
    /// there could be is allowed, as zlib allows it for a lone distance code: a code never
    /// assigned then fails to decode.
    init?(lengths: ArraySlice<UInt8>) {
        for length in lengths { counts[Int(length)] += 1 }
        counts[0] = 0
        var left = 1
        for length in 1...15 {
            left = left << 1 - Int(counts[length])
            if left < 0 { return nil }
        }
        var offsets = [Int](repeating: 0, count: 16)
        for length in 1..<15 { offsets[length + 1] = offsets[length] + Int(counts[length]) }
        symbols = [UInt16](repeating: 0, count: offsets[15] + Int(counts[15]))
        // The first code of each length (RFC 1951 §3.2.2, step 2).
        var next = [Int](repeating: 0, count: 16)
        var code = 0
        for length in 1...15 {
            code = (code + Int(counts[length - 1])) << 1
            next[length] = code
        }
        lookup = [UInt16](repeating: 0, count: 256)
        for (symbol, length) in lengths.enumerated() where length > 0 {
            let l = Int(length)
            symbols[offsets[l]] = UInt16(symbol)
            offsets[l] += 1
            let c = next[l]
            next[l] += 1
            guard l <= 8 else { continue }
            // The code's bits arrive first bit first: index by them reversed, and fill every
            // entry whose low bits they are.
            var i = Int(Self.reversed[c << (8 - l)])
            while i < 256 {
                lookup[i] = UInt16(symbol << 4 | l)
                i += 1 << l
            }
        }
    }

    /// Each byte's bits in the opposite order.
    private static let reversed: [UInt8] = (0..<256).map { b in
        (0..<8).reduce(UInt8(0)) { r, k in r | UInt8((b >> k) & 1) << (7 - k) }
    }

    /// The next symbol; nil if the bits run out first; `Int.max` for bits that are no code.
    @inline(__always)
    func decode(_ r: inout BitReader) -> Int? {
        let entry = Int(lookup[Int(truncatingIfNeeded: r.peek() & 255)])
        if entry != 0 {
            let length = entry & 15
            guard r.available >= length else { return nil }
            r.at &+= length
            return entry >> 4
        }
        return decodeLong(&r)
    }

    /// A code longer than 8 bits (or no code), a bit at a time.
    private func decodeLong(_ r: inout BitReader) -> Int? {
        // Codes of one length are consecutive numbers, and a shorter code's numbers come first:
        // read a bit at a time, and see whether the number so far is one of this length's.
        var code = 0, first = 0, index = 0
        for length in 1...15 {
            guard let b = r.take(1) else { return nil }
            code |= b
            let count = Int(counts[length])
            if code - first < count { return Int(symbols[index + code - first]) }
            index += count
            first = (first + count) << 1
            code <<= 1
        }
        return Int.max
    }
}
