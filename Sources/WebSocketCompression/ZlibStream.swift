internal import CZlib

/// A raw-deflate zlib stream (no zlib or gzip wrapper, as RFC 7692 §7.2 uses), owned by one compressor
/// or decompressor.
///
/// The `z_stream` lives at a fixed heap address: zlib keeps a pointer back to it in its internal state
/// and refuses to work (`Z_STREAM_ERROR`) if the structure moves, which a Swift stored property may do.
final class ZlibStream {
    enum Kind { case deflate, inflate }

    let kind: Kind
    let pointer: UnsafeMutablePointer<z_stream>

    /// - Parameter windowBits: 9–15; zlib rejects a raw deflate window of 8.
    init(deflateWindowBits windowBits: Int, level: Int, memoryLevel: Int) {
        kind = .deflate
        pointer = .allocate(capacity: 1)
        pointer.initialize(to: z_stream())
        let result = deflateInit2_(
            pointer, Int32(level), Z_DEFLATED, -Int32(windowBits), Int32(memoryLevel), Z_DEFAULT_STRATEGY,
            ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        // The arguments are checked by the callers, so only running out of memory or a zlib whose
        // version does not match its header can fail here; neither leaves anything to recover.
        guard result == Z_OK else { fatalError("deflateInit2 failed with \(result)") }
    }

    /// - Parameter windowBits: 8–15.
    init(inflateWindowBits windowBits: Int) {
        kind = .inflate
        pointer = .allocate(capacity: 1)
        pointer.initialize(to: z_stream())
        let result = inflateInit2_(pointer, -Int32(windowBits), ZLIB_VERSION, Int32(MemoryLayout<z_stream>.size))
        guard result == Z_OK else { fatalError("inflateInit2 failed with \(result)") }
    }

    deinit {
        switch kind {
        case .deflate: deflateEnd(pointer)
        case .inflate: inflateEnd(pointer)
        }
        pointer.deinitialize(count: 1)
        pointer.deallocate()
    }

    /// Clears the window and any partial state, keeping the settings.
    func reset() {
        switch kind {
        case .deflate: deflateReset(pointer)
        case .inflate: inflateReset(pointer)
        }
    }

    /// For an inflate stream that reached the end of a DEFLATE stream (a block with BFINAL set):
    /// starts a new one that still refers back to what came before, as context takeover needs
    /// (RFC 7692 §7.2.2: the sliding window is kept across messages). zlib clears the window on a
    /// reset, so it is read out first and put back as the dictionary.
    func restartKeepingWindow() {
        precondition(kind == .inflate)
        var window = [UInt8](repeating: 0, count: 1 << 15)
        var length: uInt = 0
        let got = window.withUnsafeMutableBufferPointer { inflateGetDictionary(pointer, $0.baseAddress, &length) }
        inflateReset(pointer)
        if got == Z_OK && length > 0 {
            _ = window.withUnsafeBufferPointer { inflateSetDictionary(pointer, $0.baseAddress, length) }
        }
    }

    /// zlib's description of the last error, if it gave one.
    var lastErrorMessage: String? {
        pointer.pointee.msg.map { String(cString: $0) }
    }

    /// Deflates all of `input` and flushes with `Z_SYNC_FLUSH`, so the output ends on a byte boundary
    /// with an empty stored block (`00 00 ff ff`).
    func deflateSyncFlush(_ input: UnsafeRawBufferPointer) -> [UInt8] {
        precondition(kind == .deflate)
        let stream = pointer
        // deflateBound covers a Z_FINISH of the whole input; the sync flush adds at most a few bytes.
        let output = ZlibOutput(capacity: Int(deflateBound(stream, uLong(input.count))) + 16)
        var offset = 0
        repeat {
            // avail_in is 32 bits wide: feed larger messages in slices.
            let sliceLength = min(input.count - offset, 1 << 30)
            let isLastSlice = offset + sliceLength == input.count
            stream.pointee.next_in =
                sliceLength == 0
                ? nil : UnsafeMutablePointer(mutating: input.baseAddress!.advanced(by: offset).assumingMemoryBound(to: Bytef.self))
            stream.pointee.avail_in = uInt(sliceLength)
            offset += sliceLength
            let flush = isLastSlice ? Z_SYNC_FLUSH : Z_NO_FLUSH
            while true {
                // zlib.h: with Z_SYNC_FLUSH "make sure that avail_out is greater than six".
                if output.free < 64 { output.grow(to: output.capacity * 2) }
                let space = min(output.free, 1 << 30)
                stream.pointee.next_out = output.end
                stream.pointee.avail_out = uInt(space)
                let result = deflate(stream, flush)
                output.count += space - Int(stream.pointee.avail_out)
                precondition(result == Z_OK || result == Z_BUF_ERROR, "deflate failed with \(result)")
                // Done when all input is taken and zlib did not fill the buffer (zlib.h: call again while
                // avail_out is 0 after a flush).
                if stream.pointee.avail_in == 0 && stream.pointee.avail_out != 0 { break }
            }
        } while offset < input.count
        stream.pointee.next_in = nil
        stream.pointee.next_out = nil
        return output.bytes()
    }
}

/// The output of one zlib call sequence, grown by hand so that no byte is zero-filled or copied more
/// than once on the way (the debug build of a generic `Array.append` costs more than inflating).
final class ZlibOutput {
    private(set) var base: UnsafeMutableRawPointer
    /// The bytes the current call sequence may use (``start(capacity:)``, ``grow(to:)``): what the
    /// callers' limits are counted against. The buffer itself may be larger (`allocatedBytes`), when it
    /// is reused from an earlier sequence.
    private(set) var capacity: Int
    /// The size of the buffer, which ``capacity`` may not use all of.
    private(set) var allocatedBytes: Int
    /// Bytes written so far, from the start of the buffer.
    var count = 0

    init(capacity: Int) {
        self.capacity = max(capacity, 1)
        self.allocatedBytes = self.capacity
        self.base = .allocate(byteCount: self.capacity, alignment: 1)
    }

    deinit {
        base.deallocate()
    }

    /// Empties the buffer for a new call sequence that may use `newCapacity` bytes, allocating only
    /// if the buffer is smaller than that.
    func start(capacity newCapacity: Int) {
        count = 0
        capacity = max(newCapacity, 1)
        guard capacity > allocatedBytes else { return }
        base.deallocate()
        base = .allocate(byteCount: capacity, alignment: 1)
        allocatedBytes = capacity
    }

    /// Bytes free after ``count``.
    var free: Int { capacity - count }

    /// Where the next byte goes.
    var end: UnsafeMutablePointer<Bytef> { (base + count).assumingMemoryBound(to: Bytef.self) }

    /// Grows the usable bytes to exactly `newCapacity`, keeping what was written (reallocating
    /// only past the buffer's size).
    func grow(to newCapacity: Int) {
        guard newCapacity > capacity else { return }
        capacity = newCapacity
        guard newCapacity > allocatedBytes else { return }
        let larger = UnsafeMutableRawPointer.allocate(byteCount: newCapacity, alignment: 1)
        larger.copyMemory(from: base, byteCount: count)
        base.deallocate()
        base = larger
        allocatedBytes = newCapacity
    }

    /// The written bytes as an array.
    func bytes() -> [UInt8] {
        [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
            if count > 0 { UnsafeMutableRawPointer(buffer.baseAddress!).copyMemory(from: base, byteCount: count) }
            initialized = count
        }
    }
}
