internal import CPcap
#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Packets from a capture file (pcap or pcapng, or stdin) or from a live interface, through libpcap.
///
/// Read with `next()` (waits on a live capture; nil at the end or after `breakLoop()`), or with `read()`,
/// which also reports a live capture's timeouts so a loop can check a deadline:
///
/// ```swift
/// let source = try PcapSource(liveInterface: "lo")
/// try source.setFilter("tcp port 8080")
/// loop: while true {
///     switch try source.read() {
///     case .packet(let packet): handle(packet)
///     case .timeout: if deadlinePassed { break loop }
///     case .interrupted, .endOfCapture: break loop
///     }
/// }
/// ```
///
/// Not thread-safe except for `loopBreaker`. A read error (a truncated or corrupt file, an interface gone
/// down) is thrown with the number of the packet that failed. In a damaged capture file (a regular file,
/// or standard input read through a `PipeSpool`) the source then looks for the next readable record
/// (`CaptureResync`): if it finds one the error says where (`PcapError.resumedAt`) and the next read goes
/// on from there; otherwise the source is at its end.
public final class PcapSource {
    private let handle: PcapHandle
    /// For offline files the filter runs here rather than in libpcap, so packet numbers count every packet.
    private var offlineFilter: UnsafeMutablePointer<bpf_program>?
    private var packetsRead = 0
    private var finished = false
    /// For a capture file that is a regular file: finds the next record after damage.
    private var resync: CaptureResync?
    /// Where a record starts, taken about every `checkpointInterval` records. Where a failed read
    /// started is found by following the records from here (`CaptureResync.walk`), without asking
    /// the stream its position for every packet: glibc's ftello is an lseek system call, and one
    /// per packet cost a third of the reading time.
    private var checkpoint = CaptureResync.Checkpoint(offset: -1, records: 0) {
        // A pipe's window holds what a search from the checkpoint reads.
        didSet { spool?.keepFrom = min(checkpoint.offset, checkpoint.lastSound) }
    }
    /// Standard input that is not a regular file, read through a window that can be searched.
    private var spool: PipeSpool?
    /// `resync?.checkpointInterval`, kept here: it is looked at for every packet, and binding the
    /// resync there would copy it (and retain a pipe's spool) each time.
    private var checkpointInterval = Int.max
    /// Numbers of the records the offline filter kept back since `checkpoint` (they were not
    /// returned): records read out of step after it that were returned are told apart by them.
    private var filteredSinceCheckpoint: [Int] = []
    /// The position before the record being read, while looking for a sound one to make a checkpoint.
    private var candidate: CaptureResync.Checkpoint?
    /// Searches never start before the previous failure's place, so no stretch is read a third
    /// time: however the damage falls, reading a file takes at most about twice its length.
    private var searchFloor: Int64 = -1
    /// The first and last packets' capture times in seconds, which bound a plausible record's.
    private var firstSeconds: Int64?
    private var lastSeconds: Int64?
    /// 1 when libpcap reports nanoseconds, 1000 when microseconds.
    private let nanosecondsPerTick: Int64
    /// For a live capture read in non-blocking mode: how long to wait for a packet before `.timeout`.
    private let pollTimeoutMs: Int32?
    /// A regular pcap file: its sound records read without libpcap (see `DirectPcapRecords`).
    private let direct: DirectPcapRecords?
    /// Whether this file's sound records are read without libpcap.
    var readsRecordsDirectly: Bool { direct != nil }

    /// True for a live interface, false for a file.
    public let isLive: Bool
    /// The link-layer header type (a DLT_ value), for `PacketDecoder.decode(linkType:data:)`: the
    /// first interface's, in a pcapng file whose interfaces differ (see `packetLinkType`).
    public let linkType: Int32
    /// The link-layer header type of the packet `read()` returned last: `linkType`, except in a
    /// pcapng file whose interfaces have different link types (see `linkTypes`).
    public private(set) var packetLinkType: Int32
    /// A pcapng capture: read by `PcapngReader`, each packet with its interface's link type (libpcap
    /// refuses interfaces of different link types together).
    private var pcapng: PcapngReader?
    /// For `pcapng`: the filter, compiled for each link type.
    private var filters: [Int32: UnsafeMutablePointer<bpf_program>] = [:]
    /// A pcapng capture (file or pipe), whose packets may come with several link types.
    public var isPcapng: Bool { pcapng != nil }
    /// For `pcapng`: link types the filter does not compile for, whose packets are passed over.
    private var passedOver: Set<Int32> = []
    /// For `pcapng`: the filter as given, compiled again for a link type first seen in a later
    /// interface (a pipe's capture is not scanned ahead).
    private var filterSpec: (expression: String, fallback: String?, passOver: Bool)?
    /// Link types of interfaces described after the reading started that the filter, as given (not
    /// the default), does not compile for: their packets are passed over, and the caller says so.
    public private(set) var linkTypesRefusedByFilter: [Int32] = []
    /// Every link type of the capture's interfaces.
    public var linkTypes: [Int32] { pcapng?.linkTypes ?? [linkType] }
    /// The largest number of bytes captured per packet.
    public let snapshotLength: Int
    /// A warning libpcap gave when activating a live capture (for example that promiscuous mode is not
    /// supported), for the caller to show; nil if none.
    public let activationWarning: String?
    /// Stops reads from another thread or a signal handler.
    public let loopBreaker: PcapLoopBreaker

    /// The stdio buffer libpcap reads a capture file through.
    static let fileBufferSize = 1 << 20

    /// Opens a pcap or pcapng file; `"-"` reads standard input.
    ///
    /// - Throws: `PcapError` of kind `.openFile` if the file cannot be opened or its header is not a capture
    ///   file header.
    public convenience init(offlinePath path: String) throws {
        try self.init(offlinePath: path, readsRecordsDirectly: true)
    }

    /// `readsRecordsDirectly: false` leaves every record of a regular pcap file to libpcap (for
    /// tests that hold `DirectPcapRecords` to what libpcap reads).
    init(offlinePath path: String, readsRecordsDirectly: Bool) throws {
        var errors = [CChar](repeating: 0, count: errorBufferSize)
        let precision = UInt32(PCAP_TSTAMP_PRECISION_NANO)
        var pointer: OpaquePointer?
        var buffer: UnsafeMutableRawPointer? = nil
        var spool: PipeSpool? = nil
        // A stream libpcap reads: standard input, or a pipe by name.
        var stream: UnsafeMutablePointer<FILE>? = nil
        if path == "-" {
            // A duplicate of fd 0, so that closing the capture does not close the process's stdin.
            let descriptor = dup(0)
            var info = stat()
            if descriptor >= 0 && fstat(descriptor, &info) == 0 && (info.st_mode & S_IFMT) != S_IFREG {
                // A pipe (or terminal, or socket): through a window a damaged capture can be searched in.
                spool = PipeSpool(descriptor: descriptor)
                stream = spool?.open()
            } else {
                stream = descriptor >= 0 ? fdopen(descriptor, "rb") : nil
                if stream == nil && descriptor >= 0 { close(descriptor) }
            }
            guard let file = stream else { throw PcapError(kind: .openFile, message: "cannot read standard input") }
            if spool == nil, let reader = PcapngReader(path: "/proc/self/fd/\(descriptor)") {
                // A regular pcapng file on standard input (see PcapngReader).
                fclose(file)
                stream = nil
                pcapng = reader
            }
        } else if let named = Self.openNamedPipe(path) {
            // A FIFO or device by name (`-r /dev/stdin`, `-r <(zcat capture.pcap.gz)`): as standard input.
            spool = named
            stream = named.open()
        } else if let reader = PcapngReader(path: path) {
            pcapng = reader
        } else {
            // libpcap reads a file with fread: through a 1 MiB stdio buffer that is about a hundred
            // read(2) calls for a 100 MB capture instead of 25,000 with the default 4 KiB.
            // (glibc ignores the size unless it is given the buffer, which must outlive the FILE.)
            if let file = fopen(path, "rb") {
                buffer = UnsafeMutableRawPointer.allocate(byteCount: Self.fileBufferSize, alignment: 16)
                setvbuf(file, buffer?.assumingMemoryBound(to: CChar.self), _IOFBF, Self.fileBufferSize)
                pointer = pcap_fopen_offline_with_tstamp_precision(file, precision, &errors)
                if pointer == nil {
                    fclose(file)
                    buffer?.deallocate()
                    buffer = nil
                }
            }
            // Not openable or not a capture: libpcap opens it by name, to say why in its own words.
            if pointer == nil { pointer = pcap_open_offline_with_tstamp_precision(path, precision, &errors) }
        }
        if let file = stream {
            if let spool, let types = PcapngReader.linkTypes(inPipe: spool), !types.isEmpty {
                // pcapng on a pipe: interfaces libpcap would refuse together may come at any point
                // (dumpcap on several at once, or `cat a.pcapng b.pcapng`), so wsctl's reader reads it.
                pcapng = PcapngReader(pipe: file, linkTypes: types)
            } else {
                pointer = pcap_fopen_offline_with_tstamp_precision(file, precision, &errors)
                if pointer == nil { fclose(file) }
            }
        }
        // Read by wsctl's reader: libpcap only compiles filters, for a handle of the first link type.
        if let pcapng { pointer = pcap_open_dead_with_tstamp_precision(pcapng.linkTypes[0], 262_144, precision) }
        guard let pointer else {
            let name = path == "-" ? "standard input" : path
            let reason = errorBufferString(errors)
            // libpcap names the file itself when it cannot open it: said once, not twice.
            throw PcapError(kind: .openFile, message: reason.hasPrefix("\(name): ") ? reason : "\(name): \(reason)")
        }
        handle = PcapHandle(pointer)
        handle.fileBuffer = buffer
        isLive = false
        linkType = pcap_datalink(pointer)
        packetLinkType = linkType
        snapshotLength = Int(pcap_snapshot(pointer))
        activationWarning = nil
        pollTimeoutMs = nil
        direct = readsRecordsDirectly && spool == nil && buffer != nil ? pcap_file(pointer).flatMap { DirectPcapRecords(file: $0, pcap: pointer) } : nil
        nanosecondsPerTick = pcap_get_tstamp_precision(pointer) == Int32(PCAP_TSTAMP_PRECISION_NANO) ? 1 : 1000
        loopBreaker = PcapLoopBreaker(handle: handle)
        self.spool = spool
        if let file = pcap_file(pointer), let resync = spool.map({ CaptureResync(pipe: $0) }) ?? CaptureResync(file: file) {
            self.resync = resync
            checkpointInterval = resync.checkpointInterval
            checkpoint = CaptureResync.Checkpoint(offset: Int64(ftello(file)), records: 0)
        } else if let pcapng, let found = spool != nil ? CaptureResync(pipe: spool!) : pcapng.makeResync() {
            resync = found
        } else if pcapng == nil {
            spool?.keepFrom = .max  // nothing is searched: nothing need be held
        }
        // (A pipe read by PcapngReader: the spool keeps its current block, see readPcapng.)
    }

    /// A spool over `path` if it names a FIFO, a character device or a socket (which cannot be
    /// moved in); nil for anything else, or if it cannot be opened (libpcap then says why).
    private static func openNamedPipe(_ path: String) -> PipeSpool? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        let type = info.st_mode & S_IFMT
        guard type == S_IFIFO || type == S_IFCHR || type == S_IFSOCK else { return nil }
        let descriptor = open(path, O_RDONLY)
        return descriptor >= 0 ? PipeSpool(descriptor: descriptor) : nil
    }

    /// True when the capture comes through a pipe (standard input, a FIFO): it may still be being
    /// written, and reading it can wait.
    public var readsAPipe: Bool { spool != nil }

    /// For a capture read from a pipe: `body` runs (on the reading thread) whenever a read is about
    /// to wait for the writer, so that what was read so far can be shown first.
    public func whenInputWaits(_ body: @escaping () -> Void) {
        spool?.beforeWaiting = body
    }

    /// Opens a live capture.
    ///
    /// - Parameters:
    ///   - liveInterface: the interface name; nil captures on all interfaces (Linux's `any`, whose link type
    ///     is Linux cooked capture).
    ///   - snaplen: bytes kept per packet. 262,144 (tcpdump's default) keeps whole packets, even offloaded
    ///     ones; smaller values turn the cut bytes into reassembly gaps.
    ///   - promiscuous: also capture traffic not addressed to this host (ignored for `any`).
    ///   - bufferSize: the kernel capture buffer in bytes. 16 MiB absorbs bursts of large WebSocket messages
    ///     that tcpdump's 2 MiB default drops.
    ///   - timeoutMs: how long `read()` waits before returning `.timeout`, so a loop can check `--duration`
    ///     or flush output. 100 ms keeps output, Ctrl-C and deadlines prompt (a line waits at most
    ///     that long once the traffic pauses) at ten wake-ups a second.
    ///   - immediate: deliver each packet as it arrives rather than when a buffer block fills, which is what
    ///     someone watching traffic while debugging wants.
    /// - Throws: `PcapError` of kind `.permissionDenied` (with the remedy in its description),
    ///   `.noSuchDevice` (listing the interfaces there are), `.interfaceDown` or `.openInterface`.
    public init(
        liveInterface: String?, snaplen: Int = 262_144, promiscuous: Bool = true, bufferSize: Int = 16 << 20,
        timeoutMs: Int = 100, immediate: Bool = true
    ) throws {
        let name = liveInterface ?? "any"
        var errors = [CChar](repeating: 0, count: errorBufferSize)
        guard let pointer = pcap_create(name, &errors) else {
            let message = errorBufferString(errors)
            throw PcapError(
                kind: PcapError.looksLikePermissionProblem(message) ? .permissionDenied : .openInterface,
                message: "\(name): \(message)")
        }
        let handle = PcapHandle(pointer)
        pcap_set_snaplen(pointer, Int32(clamping: snaplen))
        if name != "any" { pcap_set_promisc(pointer, promiscuous ? 1 : 0) }
        pcap_set_timeout(pointer, Int32(clamping: max(timeoutMs, 1)))
        pcap_set_buffer_size(pointer, Int32(clamping: bufferSize))
        pcap_set_immediate_mode(pointer, immediate ? 1 : 0)
        _ = pcap_set_tstamp_precision(pointer, Int32(PCAP_TSTAMP_PRECISION_NANO))
        let status = pcap_activate(pointer)
        if status < 0 {
            throw Self.activationError(status: status, interface: name, detail: handle.lastError)
        }
        // libpcap's own timeout does not make a read return on Linux when no packet comes (immediate mode
        // uses TPACKET_V2, whose wait loops on it), so reads are non-blocking and the waiting is done here:
        // poll on the capture descriptor and on a pipe that breakLoop writes to.
        var nonblockErrors = [CChar](repeating: 0, count: errorBufferSize)
        if pcap_get_selectable_fd(pointer) >= 0, handle.makeWakePipe(), pcap_setnonblock(pointer, 1, &nonblockErrors) == 0 {
            pollTimeoutMs = Int32(clamping: max(timeoutMs, 1))
        } else {
            pollTimeoutMs = nil
        }
        self.handle = handle
        direct = nil
        activationWarning = status > 0 ? "\(name): \(Self.statusMessage(status, detail: handle.lastError))" : nil
        isLive = true
        linkType = pcap_datalink(pointer)
        packetLinkType = linkType
        snapshotLength = Int(pcap_snapshot(pointer))
        nanosecondsPerTick = pcap_get_tstamp_precision(pointer) == Int32(PCAP_TSTAMP_PRECISION_NANO) ? 1 : 1000
        loopBreaker = PcapLoopBreaker(handle: handle)
    }

    deinit {
        if let offlineFilter {
            pcap_freecode(offlineFilter)
            offlineFilter.deallocate()
        }
        for program in filters.values {
            pcap_freecode(program)
            program.deallocate()
        }
    }

    /// libpcap's name of `linkType`, such as `EN10MB` or `LINUX_SLL2`, or `DLT <n>` if it has none.
    public var linkTypeName: String {
        guard let name = pcap_datalink_val_to_name(linkType) else { return "DLT \(linkType)" }
        return String(cString: name)
    }

    /// Keeps only packets matching a BPF expression (tcpdump syntax, such as `tcp port 8080`).
    ///
    /// On a live capture the kernel applies it; on a file it is applied while reading, and packet numbers
    /// still count the packets it rejects.
    /// - Throws: `PcapError` of kind `.filter` with libpcap's explanation.
    ///
    /// With a `fallback`, a link type the expression does not compile for (`vlan` on raw IP) gets
    /// the fallback instead: in a pcapng file whose interfaces differ, decided for each link type.
    /// With `passOver`, in such a file, the packets of a link type neither compiles for (USB,
    /// NFLOG: nothing sniff decodes) are passed over rather than the file refused.
    public func setFilter(_ expression: String, fallback: String?, passOver: Bool = false) throws {
        if let pcapng {
            // One program per link type, each compiled for it (a dead handle of that type).
            var compiled: [Int32: UnsafeMutablePointer<bpf_program>] = [:]
            var skipped: Set<Int32> = []
            for type in pcapng.linkTypes {
                switch Self.compile(expression, fallback: fallback, for: type) {
                case .success(let program):
                    compiled[type] = program
                case .failure(let error):
                    if passOver {
                        skipped.insert(type)
                        continue
                    }
                    for p in compiled.values { pcap_freecode(p); p.deallocate() }
                    throw error
                }
            }
            for p in filters.values { pcap_freecode(p); p.deallocate() }
            filters = compiled
            passedOver = skipped
            filterSpec = (expression, fallback, passOver)
            return
        }
        do { try setFilter(expression) } catch where fallback != nil { try setFilter(fallback!) }
    }

    /// `expression`, else `fallback`, compiled for link type `type` (a dead handle of that type).
    private static func compile(_ expression: String, fallback: String?, for type: Int32) -> Result<UnsafeMutablePointer<bpf_program>, PcapError> {
        let program = UnsafeMutablePointer<bpf_program>.allocate(capacity: 1)
        program.initialize(to: bpf_program())
        let dead = PcapHandle(pcap_open_dead(type, 262_144))
        var ok = pcap_compile(dead.pointer, program, expression, 1, PCAP_NETMASK_UNKNOWN) == 0
        var error = dead.lastError
        if !ok, let fallback {
            ok = pcap_compile(dead.pointer, program, fallback, 1, PCAP_NETMASK_UNKNOWN) == 0
            if !ok { error = dead.lastError }
        }
        guard ok else {
            program.deallocate()
            return .failure(PcapError(kind: .filter, message: "filter \"\(fallback ?? expression)\" (link type \(name(of: type))): \(error)"))
        }
        return .success(program)
    }

    /// For `pcapng`: the filter compiled for a link type first met in an interface described after
    /// the reading started; nil, the link type passed over from now on, if it does not compile for it.
    private func compileLate(for type: Int32) -> UnsafeMutablePointer<bpf_program>? {
        guard let spec = filterSpec, !passedOver.contains(type) else { return nil }
        switch Self.compile(spec.expression, fallback: spec.fallback, for: type) {
        case .success(let program):
            filters[type] = program
            return program
        case .failure:
            passedOver.insert(type)
            if !spec.passOver { linkTypesRefusedByFilter.append(type) }
            return nil
        }
    }

    public func setFilter(_ expression: String) throws {
        if pcapng != nil { return try setFilter(expression, fallback: nil) }
        let program = UnsafeMutablePointer<bpf_program>.allocate(capacity: 1)
        program.initialize(to: bpf_program())
        guard pcap_compile(handle.pointer, program, expression, 1, PCAP_NETMASK_UNKNOWN) == 0 else {
            program.deallocate()
            throw PcapError(kind: .filter, message: "filter \"\(expression)\": \(handle.lastError)")
        }
        if isLive {
            defer {
                pcap_freecode(program)
                program.deallocate()
            }
            guard pcap_setfilter(handle.pointer, program) == 0 else {
                throw PcapError(kind: .filter, message: "filter \"\(expression)\": \(handle.lastError)")
            }
        } else {
            if let old = offlineFilter {
                pcap_freecode(old)
                old.deallocate()
            }
            offlineFilter = program
        }
    }

    /// The next packet; nil at the end of a file or after `breakLoop()`. Waits for a packet on a live
    /// capture, through any number of timeouts.
    ///
    /// - Throws: `PcapError` of kind `.read` with the packet number, after which the source is at its end.
    public func next() throws -> PcapPacket? {
        while true {
            switch try read() {
            case .packet(let packet): return packet
            case .timeout: continue
            case .interrupted, .endOfCapture: return nil
            }
        }
    }

    /// The next packet, or why there is none right now (see `PcapReadResult`).
    ///
    /// - Throws: `PcapError` of kind `.read` with the packet number, after which the source is at its end.
    public func read() throws -> PcapReadResult {
        if let pcapng { return try readPcapng(pcapng) }
        while !finished {
            var header = pcap_pkthdr()
            var bytes: UnsafePointer<UInt8>?
            // A live capture read without waiting never blocks, so breakLoop's wake-up is noticed here while
            // packets keep coming (checked every 64 packets: one cheap read of an empty pipe) and in
            // `waitForPackets` when they do not.
            if pollTimeoutMs != nil, packetsRead % 64 == 0, handle.takeWakeUp() { return .interrupted }
            if packetsRead &- checkpoint.records >= checkpointInterval, let file = pcap_file(handle.pointer) {
                let at = direct.map { $0.streamInStep ? Int64(ftello(file)) : $0.offset } ?? Int64(ftello(file))
                candidate = CaptureResync.Checkpoint(offset: at, records: packetsRead)
            } else if spool != nil, candidate == nil, let file = pcap_file(handle.pointer) {
                // A pipe: also after a quarter of its window, however few packet records that
                // is (pcapng's other blocks can be large), so the window reaches the checkpoint.
                // (Asking this stream its position costs no system call.)
                let at = Int64(ftello(file))
                if at - checkpoint.offset > PipeSpool.defaultMaxHeld / 4 { candidate = CaptureResync.Checkpoint(offset: at, records: packetsRead) }
            }
            let raw: RawRead
            // (Optional chaining: binding `direct` would retain it for every packet.)
            if direct?.next(&header, &bytes, unless: handle.breakRequested.load(ordering: .relaxed)) == true {
                raw = .packet
            } else if direct != nil, let file = pcap_file(handle.pointer) {
                // libpcap reads this one (damage, the end, or a break to notice), from where the
                // direct reading got to, and the direct reading goes on from where it stops.
                if direct?.streamInStep == false { _ = fseeko(file, off_t(direct!.offset), SEEK_SET) }
                raw = nextOffline(&header, &bytes)
                if raw == .interrupted { _ = handle.takeBreak() }
                if raw != .failed { direct?.follow(file) }
            } else {
                raw = isLive ? nextLive(&header, &bytes) : nextOffline(&header, &bytes)
            }
            switch raw {
            case .packet:
                packetsRead += 1
                let nanoseconds = Int64(header.ts.tv_usec) * nanosecondsPerTick
                if resync != nil {
                    let sound = CaptureResync.looksSound(capturedLength: header.caplen, wireLength: header.len, nanoseconds: nanoseconds)
                    if let c = candidate {
                        candidate = nil
                        if sound {
                            checkpoint = c
                        } else if let resync, c.records - checkpoint.records >= 2 * checkpointInterval {
                            let walked = resync.walk(from: checkpoint, records: c.records - checkpoint.records, limit: c.offset)
                            checkpoint = CaptureResync.Checkpoint(offset: c.offset, records: c.records, lastSound: walked.lastSound, sound: walked.sound)
                        }
                        if !filteredSinceCheckpoint.isEmpty { filteredSinceCheckpoint.removeAll { $0 <= checkpoint.records } }
                    }
                    if sound {
                        if firstSeconds == nil { firstSeconds = Int64(header.ts.tv_sec) }
                        lastSeconds = Int64(header.ts.tv_sec)
                    }
                }
                if let offlineFilter, pcap_offline_filter(offlineFilter, &header, bytes) == 0 {
                    if resync != nil { filteredSinceCheckpoint.append(packetsRead) }
                    continue
                }
                return .packet(
                    PcapPacket(
                        number: packetsRead, seconds: Int64(header.ts.tv_sec),
                        nanoseconds: Int32(truncatingIfNeeded: nanoseconds),
                        wireLength: Int(header.len),
                        data: UnsafeRawBufferPointer(start: bytes, count: Int(header.caplen))))
            case .timeout:
                guard let pollTimeoutMs else { return .timeout }
                switch waitForPackets(timeoutMs: pollTimeoutMs) {
                case .ready: continue
                case .woken: return .interrupted
                case .timedOut: return .timeout
                case .failed(let message):
                    finished = true
                    throw PcapError(kind: .read, message: message, packetNumber: packetsRead + 1)
                }
            case .interrupted:
                return .interrupted
            case .end:
                finished = true
            case .failed:
                let error = damaged(message: handle.lastError)
                if let file = pcap_file(handle.pointer) { direct?.follow(file) }
                throw error
            }
        }
        return .endOfCapture
    }

    /// `read()` for a pcapng file whose interfaces have different link types.
    private func readPcapng(_ reader: PcapngReader) throws -> PcapReadResult {
        while !finished {
            if handle.takeBreak() { return .interrupted }
            // A pipe: its spool keeps the block being read, which the reader moves back in (a
            // section header is read twice) and from whose start a search for the next block
            // after damage begins; what came before it may go.
            if let spool { spool.keepFrom = reader.offset }
            let packet: PcapngReader.Packet?
            do { packet = try reader.next() } catch {
                throw damaged(reader, error)
            }
            guard let packet else { break }
            packetsRead += 1
            var program = filters[packet.linkType]
            if program == nil, filterSpec != nil {
                // A link type the filter does not compile for: its packets are passed over.
                guard let late = compileLate(for: packet.linkType) else { continue }
                program = late
            }
            if let program {
                var header = pcap_pkthdr()
                header.caplen = bpf_u_int32(packet.data.count)
                header.len = bpf_u_int32(clamping: packet.wireLength)
                let bytes = packet.data.baseAddress?.assumingMemoryBound(to: UInt8.self)
                if pcap_offline_filter(program, &header, bytes) == 0 { continue }
            }
            packetLinkType = packet.linkType
            return .packet(PcapPacket(number: packetsRead, seconds: packet.seconds, nanoseconds: packet.nanoseconds,
                                      wireLength: packet.wireLength, data: packet.data))
        }
        finished = true
        return .endOfCapture
    }

    /// The error for a block `PcapngReader` could not read; moves past the damage to the next block
    /// that holds together, if there is one (the error's `resumedAt`), else ends the source. The
    /// reader checks each block's two lengths, so it is never out of step: the search starts at the
    /// failed block's end when its lengths agree, else just after its start (and never before the
    /// previous failure's place).
    private func damaged(_ reader: PcapngReader, _ failure: PcapngReader.Failure) -> PcapError {
        // A damaged block that may have been a packet takes a number; one of another kind is named
        // by the packet that comes next.
        if failure.mayBePacket { packetsRead += 1 }
        let number = failure.mayBePacket ? packetsRead : packetsRead + 1
        let message = "damaged pcapng block at byte \(failure.offset): \(failure.message)"
        guard var resync else {
            finished = true
            let what = spool != nil ? "this pipe" : "this file"
            let why = failure.endsTheFile ? "" : "; \(what) is not searched for the next block, reading stops here"
            return PcapError(kind: .read, message: message + why,
                             packetNumber: number)
        }
        defer { self.resync = resync }
        let searchFrom = max(failure.blockEnd ?? failure.offset + 1, searchFloor)
        searchFloor = failure.offset
        if let spool, searchFrom < spool.base {
            // (Blocks are at most half the spool's window: not expected.)
            finished = true
            return PcapError(kind: .read, message: message + "; standard input's bytes there are no longer held, reading stops here",
                             packetNumber: number)
        }
        resync.readSection(bigEndian: reader.sectionIsBigEndian)
        guard let found = resync.search(from: searchFrom, firstSeconds: nil, lastSeconds: nil),
              reader.resume(at: found, newSectionBigEndian: resync.foundInOtherOrder ? !reader.sectionIsBigEndian : nil)
        else {
            finished = true
            return PcapError(kind: .read, message: message, packetNumber: number,
                             damagedFrom: failure.endsTheFile ? nil : failure.offset)
        }
        return PcapError(kind: .read, message: message, packetNumber: number, damagedFrom: failure.offset, resumedAt: found)
    }

    /// libpcap's name of a link type, such as `EN10MB`, or `DLT <n>`.
    public static func name(of linkType: Int32) -> String {
        guard let name = pcap_datalink_val_to_name(linkType) else { return "DLT \(linkType)" }
        return String(cString: name)
    }

    /// The error for a read that failed; moves past the damage to the next readable record if it can
    /// (the error's `resumedAt`), else ends the source. The search starts just after where the failed
    /// read started: a record libpcap took whole but that held garbage has put the stream somewhere
    /// random, and the records it swallowed are searched again.
    private func damaged(message: String) -> PcapError {
        let recordsRead = packetsRead
        packetsRead += 1
        let number = packetsRead
        candidate = nil
        guard !isLive, let file = pcap_file(handle.pointer) else {
            finished = true
            return PcapError(kind: .read, message: message, packetNumber: number)
        }
        guard var resync else {
            finished = true
            let why = ftello(file) < 0 ? "a pipe cannot be searched for the next packet, reading stops here"
                : "this kind of file is not searched for the next packet, reading stops here"
            return PcapError(kind: .read, message: message + "; " + why, packetNumber: number)
        }
        defer { self.resync = resync }
        let position = Int64(ftello(file))
        if let spool, checkpoint.offset < spool.base {
            // Records of the largest size all the way: the window no longer reaches back.
            finished = true
            return PcapError(kind: .read, message: message + "; standard input's bytes before it are no longer held, reading stops here",
                             packetNumber: number)
        }
        // Where the failed read started, and the last sound record before it.
        let walked = resync.walk(from: checkpoint, records: recordsRead - checkpoint.records, limit: position)
        let (failedAt, lastSound) = (walked.next, walked.lastSound)
        // From just after the start of the last sound record (libpcap may have read on out of
        // step after it), unless that is far back (a file whose every record looks odd would be
        // read again from the start).
        let lookingBack = failedAt - lastSound <= CaptureResync.lookBack ? lastSound + 1 : failedAt + 1
        let searchFrom = max(lookingBack, searchFloor)
        searchFloor = failedAt
        var found = resync.search(from: searchFrom, firstSeconds: firstSeconds, lastSeconds: lastSeconds)
        // Never where the read failed: a pcapng block libpcap refuses for what it says (a packet
        // longer than its interface's snapshot length) is sound in shape, and was found again,
        // failing once more under the next packet number.
        if found == failedAt { found = resync.search(from: failedAt + 1, firstSeconds: firstSeconds, lastSeconds: lastSeconds) }
        guard let found, fseeko(file, off_t(found), SEEK_SET) == 0
        else {
            finished = true
            // Failing at the end of the file with nothing whole after the record is a file cut short.
            let cutShort = !resync.bytes.reaches(position + 1)
            return PcapError(kind: .read, message: cutShort ? message + "; the file ends inside the record at byte \(failedAt)" : message,
                             packetNumber: number, damagedFrom: cutShort ? nil : failedAt)
        }
        clearerr(file)
        // Packet numbers stay the file's own. When the record found comes before where the read
        // failed, the records libpcap read after the last sound one were out of step and took
        // numbers: the numbering goes back to that record's. The damage is that record itself
        // when the record found starts inside what it claimed, less than a record header after
        // its end, or where its length on the wire says it ends (its captured length was cut: the
        // bytes left are its own, and the numbering goes back one even when nothing was out of
        // step); else it is one packet of its own. (Records that only look odd, read in step,
        // keep their numbers: a far last sound record says nothing.)
        var damageNumber = number
        if let sound = walked.sound {
            let itself = found < sound.end || found - sound.end < Int64(resync.format.headerSize) || found == sound.wireEnd
            if found < failedAt || (found >= sound.end && itself) {
                damageNumber = sound.number + (itself ? 0 : 1)
                packetsRead = damageNumber
            }
        }
        // Records numbered past the numbering's new place were read out of step: those returned
        // (not kept back by the filter) are no packets of the file.
        let outOfStep = max(0, recordsRead - packetsRead) - filteredSinceCheckpoint.filter { $0 > packetsRead && $0 <= recordsRead }.count
        // The record found looks sound (the search checked it and the one after it).
        checkpoint = CaptureResync.Checkpoint(offset: found, records: packetsRead)
        filteredSinceCheckpoint.removeAll()
        return PcapError(kind: .read, message: message, packetNumber: damageNumber, damagedFrom: failedAt, resumedAt: found,
                         outOfStepPackets: outOfStep)
    }

    /// Same as `loopBreaker.breakLoop()`.
    public func breakLoop() {
        loopBreaker.breakLoop()
    }

    /// libpcap's packet counters for a live capture; nil for a file or if the platform has none.
    public var stats: PcapStatistics? {
        guard isLive else { return nil }
        var raw = pcap_stat()
        guard pcap_stats(handle.pointer, &raw) == 0 else { return nil }
        return PcapStatistics(
            received: UInt64(raw.ps_recv), dropped: UInt64(raw.ps_drop), droppedByInterface: UInt64(raw.ps_ifdrop))
    }

    /// The names of the interfaces libpcap can capture on, or nil if it cannot list them.
    public static func interfaceNames() -> [String]? {
        var errors = [CChar](repeating: 0, count: errorBufferSize)
        var list: UnsafeMutablePointer<pcap_if_t>?
        guard pcap_findalldevs(&list, &errors) == 0 else { return nil }
        defer { pcap_freealldevs(list) }
        var names: [String] = []
        var item = list
        while let current = item {
            names.append(String(cString: current.pointee.name))
            item = current.pointee.next
        }
        return names
    }

    // MARK: Reading

    private enum RawRead {
        case packet, timeout, interrupted, end, failed
    }

    /// A live capture reads with pcap_next_ex, whose data stays valid until the next call (libpcap copies out
    /// of the kernel ring for it).
    private func nextLive(_ header: inout pcap_pkthdr, _ bytes: inout UnsafePointer<UInt8>?) -> RawRead {
        var headerPointer: UnsafeMutablePointer<pcap_pkthdr>?
        switch pcap_next_ex(handle.pointer, &headerPointer, &bytes) {
        case 1:
            guard let headerPointer else { return .failed }
            header = headerPointer.pointee
            return .packet
        case 0: return .timeout
        case PCAP_ERROR_BREAK: return .interrupted
        default: return .failed
        }
    }

    private enum WaitResult {
        case ready, woken, timedOut
        case failed(String)
    }

    /// Waits until the capture descriptor is readable, breakLoop writes to the wake-up pipe, or the timeout
    /// passes.
    private func waitForPackets(timeoutMs: Int32) -> WaitResult {
        var timeout = timeoutMs
        // While libpcap suspects the interface went away it wants to be called again soon.
        if let required = pcap_get_required_select_timeout(handle.pointer) {
            timeout = min(timeout, Int32(clamping: required.pointee.tv_sec * 1000 + required.pointee.tv_usec / 1000))
        }
        var fds = [
            pollfd(fd: pcap_get_selectable_fd(handle.pointer), events: Int16(POLLIN), revents: 0),
            pollfd(fd: handle.wakeRead, events: Int16(POLLIN), revents: 0),
        ]
        let ready = poll(&fds, nfds_t(fds.count), timeout)
        if ready < 0 {
            return errno == EINTR ? .ready : .failed("poll on the capture failed (errno \(errno))")
        }
        if fds[1].revents != 0, handle.takeWakeUp() { return .woken }
        return ready == 0 ? .timedOut : .ready
    }

    /// A file reads with pcap_dispatch for one packet: unlike pcap_next_ex on a file, it honours
    /// pcap_breakloop, so a long file can be interrupted too. The data lives in the handle's buffer until
    /// the next read; the header is copied because libpcap passes a pointer to a local.
    private func nextOffline(_ header: inout pcap_pkthdr, _ bytes: inout UnsafePointer<UInt8>?) -> RawRead {
        var slot = DispatchSlot()
        let status = withUnsafeMutablePointer(to: &slot) { slotPointer in
            pcap_dispatch(
                handle.pointer, 1, dispatchCallback, UnsafeMutableRawPointer(slotPointer).assumingMemoryBound(to: UInt8.self))
        }
        switch status {
        case 1:
            header = slot.header
            bytes = slot.data
            return .packet
        case 0: return .end
        case PCAP_ERROR_BREAK: return .interrupted
        default: return .failed
        }
    }

    // MARK: Errors

    private static func statusMessage(_ status: Int32, detail: String) -> String {
        if !detail.isEmpty, detail != "unknown libpcap error" { return detail }
        return String(cString: pcap_statustostr(status))
    }

    /// Maps a pcap_activate failure to an error whose text tells the user what to do.
    static func activationError(status: Int32, interface: String, detail: String) -> PcapError {
        let message = "\(interface): " + statusMessage(status, detail: detail)
        switch status {
        case PCAP_ERROR_PERM_DENIED, PCAP_ERROR_PROMISC_PERM_DENIED:
            return PcapError(kind: .permissionDenied, message: message)
        case PCAP_ERROR_NO_SUCH_DEVICE:
            var text = message
            if let names = interfaceNames(), !names.isEmpty {
                text += " (interfaces: \(names.joined(separator: ", ")))"
            }
            return PcapError(kind: .noSuchDevice, message: text)
        case PCAP_ERROR_IFACE_NOT_UP:
            return PcapError(kind: .interfaceDown, message: message)
        default:
            let kind: PcapError.Kind = PcapError.looksLikePermissionProblem(detail) ? .permissionDenied : .openInterface
            return PcapError(kind: kind, message: message)
        }
    }
}

private struct DispatchSlot {
    var header = pcap_pkthdr()
    var data: UnsafePointer<UInt8>?
}

private func dispatchCallback(user: UnsafeMutablePointer<UInt8>?, header: UnsafePointer<pcap_pkthdr>?, data: UnsafePointer<UInt8>?) {
    guard let user, let header else { return }
    let slot = UnsafeMutableRawPointer(user).assumingMemoryBound(to: DispatchSlot.self)
    slot.pointee.header = header.pointee
    slot.pointee.data = data
}
