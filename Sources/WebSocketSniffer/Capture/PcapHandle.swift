internal import CPcap
import Synchronization
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Owns a `pcap_t`, and for live captures the pipe that wakes a read waiting for packets. Shared by a
/// `PcapSource` and its `PcapLoopBreaker`, so both stay valid while a breaker that another thread holds
/// exists.
final class PcapHandle: @unchecked Sendable {
    let pointer: OpaquePointer
    /// Read end and write end of the wake-up pipe; -1 when reads are not waited for with poll.
    private(set) var wakeRead: Int32 = -1
    private(set) var wakeWrite: Int32 = -1

    init(_ pointer: OpaquePointer) {
        self.pointer = pointer
    }

    /// The stdio buffer of a capture file's FILE, freed once pcap_close has closed the file.
    var fileBuffer: UnsafeMutableRawPointer?

    /// Set by `breakLoop` for a file read without libpcap (`PcapngReader`), whose loop libpcap's
    /// break flag does not reach.
    let breakRequested = Atomic<Bool>(false)

    /// Whether `breakLoop` was called since the last call.
    func takeBreak() -> Bool { breakRequested.exchange(false, ordering: .relaxed) }

    deinit {
        pcap_close(pointer)
        fileBuffer?.deallocate()
        if wakeRead >= 0 { close(wakeRead) }
        if wakeWrite >= 0 { close(wakeWrite) }
    }

    /// Creates the wake-up pipe (non-blocking at both ends). Returns false if the system refuses.
    func makeWakePipe() -> Bool {
        var fds: [Int32] = [-1, -1]
        guard pipe(&fds) == 0 else { return false }
        for fd in fds { _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) }
        wakeRead = fds[0]
        wakeWrite = fds[1]
        return true
    }

    /// Empties the wake-up pipe; true if breakLoop had written to it.
    func takeWakeUp() -> Bool {
        var buffer = (UInt64(0), UInt64(0), UInt64(0), UInt64(0))
        var woken = false
        while withUnsafeMutableBytes(of: &buffer, { read(wakeRead, $0.baseAddress, $0.count) }) > 0 { woken = true }
        return woken
    }

    /// libpcap's message for the last error on this handle.
    var lastError: String {
        guard let message = pcap_geterr(pointer) else { return "unknown libpcap error" }
        return String(cString: message)
    }
}

/// Stops a waiting or looping `PcapSource` read from another thread or from a signal handler.
///
/// On a live capture it writes a byte to the source's wake-up pipe; on a file (or where the capture cannot
/// be polled) it calls `pcap_breakloop`. Both are safe in a signal handler and from another thread. The read
/// in progress, or the next one, returns `.interrupted` (`next()` returns nil); reading again after that
/// resumes the capture.
public struct PcapLoopBreaker: Sendable {
    let handle: PcapHandle

    /// Makes the current or next read of the source return `.interrupted`.
    public func breakLoop() {
        if handle.wakeWrite >= 0 {
            var byte: UInt8 = 1
            _ = write(handle.wakeWrite, &byte, 1)
        } else {
            handle.breakRequested.store(true, ordering: .relaxed)
            pcap_breakloop(handle.pointer)
        }
    }
}

/// Reads a NUL-terminated error buffer filled by libpcap.
func errorBufferString(_ buffer: [CChar]) -> String {
    buffer.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
}

/// PCAP_ERRBUF_SIZE.
let errorBufferSize = 256
