internal import CPcap

/// Owns a `pcap_t`. Shared by a `PcapSource` and its `PcapLoopBreaker`, so the handle outlives a breaker
/// that another thread may still hold.
final class PcapHandle: @unchecked Sendable {
    let pointer: OpaquePointer

    init(_ pointer: OpaquePointer) {
        self.pointer = pointer
    }

    deinit {
        pcap_close(pointer)
    }

    /// libpcap's message for the last error on this handle.
    var lastError: String {
        guard let message = pcap_geterr(pointer) else { return "unknown libpcap error" }
        return String(cString: message)
    }
}

/// Stops a blocked or looping `PcapSource` read from another thread or from a signal handler.
///
/// It wraps `pcap_breakloop`, which libpcap documents as safe to call from a signal handler and from another
/// thread (on Linux it also wakes a read blocked in poll). The read in progress, or the next one, returns
/// `.interrupted` (`next()` returns nil); reading again after that resumes the capture.
public struct PcapLoopBreaker: Sendable {
    let handle: PcapHandle

    /// Makes the current or next read of the source return `.interrupted`.
    public func breakLoop() {
        pcap_breakloop(handle.pointer)
    }
}

/// Reads a NUL-terminated error buffer filled by libpcap.
func errorBufferString(_ buffer: [CChar]) -> String {
    buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}

/// PCAP_ERRBUF_SIZE.
let errorBufferSize = 256
