import Foundation
import Testing
@testable import WSCtl

/// The pipeline copies each frame's payload into its batch, and a single-frame message that
/// follows shares that copy instead of being copied again (`SniffPipeline.sharedCopy`). The
/// dissector lends both from its own buffers, and between the two it may free the frame's
/// buffer (one grown past 64 KiB) and get the same memory back for the message's: an address
/// seen before does not mean the same bytes. These cases are built by hand, since whether
/// malloc hands the memory back cannot be arranged from a capture.
@Suite("Sniff pipeline: a message shares its frame's copy only when the bytes are the same")
struct SniffPipelineSharingTests {
    /// A buffer standing for the dissector's (`source`), the batch's copy of the frame payload
    /// it held, and the same memory filled again with other bytes, as a reused buffer would be.
    @Test func reusedMemoryWithOtherBytesIsCopied() {
        let count = 70_000
        let source = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 1)
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 1)
        defer { source.deallocate(); copy.deallocate() }
        for i in 0..<count { source[i] = UInt8(truncatingIfNeeded: i &* 7 &+ 3) }
        copy.copyMemory(from: UnsafeRawBufferPointer(source))
        let frame = (source: UnsafeRawBufferPointer(source), copy: UnsafeRawBufferPointer(copy))
        let copied = UnsafeRawPointer(copy.baseAddress!)

        // Same memory, same bytes: shared, at the same place in the copy.
        let whole = SniffPipeline.sharedCopy(of: UnsafeRawBufferPointer(source), lastFrame: frame)
        #expect(whole?.baseAddress == copied && whole?.count == count)
        let tail = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(source)[100..<count])
        let sharedTail = SniffPipeline.sharedCopy(of: tail, lastFrame: frame)
        #expect(sharedTail?.baseAddress == copied + 100 && sharedTail?.count == count - 100)

        // The memory handed out again with other bytes (a message that starts with an earlier
        // fragment, or inflated data): not shared, whatever the length.
        for i in 0..<10 { source[i] = UInt8(ascii: "0") + UInt8(i) }
        for length in [count, count - 10, 66_000, 11] {
            let data = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(source)[0..<length])
            #expect(SniffPipeline.sharedCopy(of: data, lastFrame: frame) == nil, "\(length) bytes")
        }
        // Only the last byte differs.
        for i in 0..<10 { source[i] = copy[i] }
        source[count - 1] ^= 1
        #expect(SniffPipeline.sharedCopy(of: UnsafeRawBufferPointer(source), lastFrame: frame) == nil)
        // Equal bytes ahead of the change are still shared.
        let head = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(source)[0..<(count - 1)])
        #expect(SniffPipeline.sharedCopy(of: head, lastFrame: frame)?.baseAddress == copied)
    }

    /// Data outside the frame's payload, longer than it, or with no frame before: copied.
    @Test func dataNotInsideTheFrameIsCopied() {
        let source = UnsafeMutableRawBufferPointer.allocate(byteCount: 128, alignment: 1)
        let copy = UnsafeMutableRawBufferPointer.allocate(byteCount: 64, alignment: 1)
        let other = UnsafeMutableRawBufferPointer.allocate(byteCount: 128, alignment: 1)
        defer { source.deallocate(); copy.deallocate(); other.deallocate() }
        source.initializeMemory(as: UInt8.self, repeating: 0x41)
        copy.initializeMemory(as: UInt8.self, repeating: 0x41)
        other.initializeMemory(as: UInt8.self, repeating: 0x41)
        let payload = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(source)[0..<64])
        let frame = (source: payload, copy: UnsafeRawBufferPointer(copy))
        #expect(SniffPipeline.sharedCopy(of: UnsafeRawBufferPointer(other), lastFrame: frame) == nil)
        #expect(SniffPipeline.sharedCopy(of: payload, lastFrame: nil) == nil)
        let longer = UnsafeRawBufferPointer(rebasing: UnsafeRawBufferPointer(source)[0..<65])
        #expect(SniffPipeline.sharedCopy(of: longer, lastFrame: frame) == nil)
        // An empty message shares an empty piece of the copy.
        let empty = SniffPipeline.sharedCopy(of: UnsafeRawBufferPointer(start: nil, count: 0), lastFrame: frame)
        #expect(empty?.count == 0)
    }
}
