import Foundation
import Testing
import WebSocketCodec
import WebSocketInspect
import WebSocketSniffer

/// TCP segments that were fragmented at the IP layer (RFC 791 §3.2) are put back together and
/// dissected like any other; what cannot be completed is counted, and memory stays bounded.
@Suite struct IPFragmentTests {
    static let client = Build.client4
    static let server = Build.server4

    /// A masked text frame in one TCP segment, as an IPv4 packet (no handshake: the server's port
    /// is given as WebSocket; a SYN would make sniff wait for the upgrade).
    static func packets(text: String) -> (syn: Void, data: [UInt8]) {
        let frame = WebSocketFrameEncoder.encode(.text(text, maskingKey: WebSocketMaskingKey(1, 2, 3, 4)))
        let segment = Build.tcp(from: client, to: server, seq: 1000, flags: [.psh, .ack], payload: frame)
        return ((), Build.ipv4(from: client.address, to: server.address, payload: segment))
    }

    /// `datagram` (an IPv4 packet with a 20-byte header) cut into fragments of `size` data bytes.
    static func fragments(of datagram: [UInt8], size: Int, id: UInt16 = 0x4242) -> [[UInt8]] {
        let data = Array(datagram[20...])
        return stride(from: 0, to: data.count, by: size).map { start in
            let end = min(start + size, data.count)
            return Build.ipv4(from: client.address, to: server.address, payload: Array(data[start..<end]), id: id,
                              moreFragments: end < data.count, fragmentOffset: UInt16(start / 8))
        }
    }

    /// Texts of the messages sniff finds in `packets` (raw IPv4), and its skip counts.
    static func sniff(_ packets: [[UInt8]], port: UInt16 = server.port) -> (texts: [String], skipped: [PacketSkipReason: Int]) {
        let session = SniffSession(configuration: SniffConfiguration(webSocketPorts: [Int(port)]))
        var texts: [String] = []
        let collect: (SniffEvent) -> Void = { event in
            if case .message(_, _, _, let m, _) = event { texts.append(m.textString ?? "?") }
        }
        for (n, bytes) in packets.enumerated() {
            bytes.withUnsafeBytes { raw in
                let packet = PcapPacket(number: n + 1, seconds: 1_000 + Int64(n), nanoseconds: 0, wireLength: raw.count, data: raw)
                session.process(packet, linkType: PcapLinkType.raw, emit: collect)
            }
        }
        session.finish(emit: collect)
        return (texts, session.skipped)
    }

    @Test(arguments: [[0, 1, 2], [2, 0, 1], [1, 2, 0, 1]])  // in order, out of order, one fragment twice
    func fragmentedSegmentIsDissected(order: [Int]) {
        let text = String(repeating: "fragmented on the way ", count: 6)
        let (_, data) = Self.packets(text: text)
        let pieces = Self.fragments(of: data, size: 64)
        #expect(pieces.count == 3)
        let result = Self.sniff(order.map { pieces[$0] })
        #expect(result.texts == [text])
        // A copy of a fragment after its datagram was complete repeats it: not a datagram of its
        // own, given up and counted (as it was), but a duplicate (see
        // fragmentsRepeatedAfterTheirDatagramAreDuplicates).
        #expect(result.skipped[.ipFragment] == nil)
    }

    /// A fragment that never comes: nothing is made up, and the others are counted as skipped.
    @Test func missingFragmentIsCounted() {
        let (_, data) = Self.packets(text: String(repeating: "x", count: 150))
        let pieces = Self.fragments(of: data, size: 64)
        let result = Self.sniff([pieces[0], pieces[2]])
        #expect(result.texts.isEmpty)
        #expect(result.skipped[.ipFragment] == 2)
    }

    /// Many datagrams that never complete: at most `maxDatagrams` are held; the rest are given up
    /// and counted, and a datagram that completes afterwards is still put together.
    @Test func incompleteDatagramsAreBounded() {
        let reassembler = IPFragmentReassembler()
        let (_, data) = Self.packets(text: String(repeating: "y", count: 150))
        for id in 0..<1000 {
            let first = Self.fragments(of: data, size: 64, id: UInt16(id))[0]
            first.withUnsafeBytes { raw in
                var fragment: IPFragment? = nil
                _ = PacketDecoder.decode(linkType: PcapLinkType.ipv4, data: raw, fragment: &fragment)
                #expect(reassembler.add(fragment!, packet: raw, time: 1) == .held)
            }
        }
        #expect(reassembler.pending == IPFragmentReassembler.maxDatagrams)
        #expect(reassembler.takeDropped() == 1000 - IPFragmentReassembler.maxDatagrams)
        var whole: [UInt8]? = nil
        for piece in Self.fragments(of: data, size: 64, id: 5000) {
            piece.withUnsafeBytes { raw in
                var fragment: IPFragment? = nil
                _ = PacketDecoder.decode(linkType: PcapLinkType.ipv4, data: raw, fragment: &fragment)
                if case .whole(let w) = reassembler.add(fragment!, packet: raw, time: 2) { whole = w }
            }
        }
        #expect(whole.map { Array($0[20...]) } == Array(data[20...]))
        // Thirty seconds later the rest have expired.
        let late = Self.fragments(of: data, size: 64, id: 6000)[0]
        late.withUnsafeBytes { raw in
            var fragment: IPFragment? = nil
            _ = PacketDecoder.decode(linkType: PcapLinkType.ipv4, data: raw, fragment: &fragment)
            _ = reassembler.add(fragment!, packet: raw, time: 40)
        }
        #expect(reassembler.pending == 1)
    }

    /// Fragments whose data would fit after a 20-byte header but not after the first fragment's,
    /// which carries options: the datagram's length does not fit Total Length's 16 bits, so it is
    /// given up and counted (it used to stop the program).
    @Test func datagramTooLongForItsHeaderIsDropped() {
        let reassembler = IPFragmentReassembler()
        let data = [UInt8](repeating: 0x41, count: 65_515)
        let split = 65_472
        var first = Build.ipv4(from: Self.client.address, to: Self.server.address, payload: Array(data[..<split]), id: 77,
                               moreFragments: true, fragmentOffset: 0)
        first.insert(contentsOf: [1, 1, 1, 0], at: 20)  // NOP NOP NOP EOL
        first[0] = 0x46
        let length = first.count
        first[2] = UInt8(length >> 8)
        first[3] = UInt8(length & 0xFF)
        let second = Build.ipv4(from: Self.client.address, to: Self.server.address, payload: Array(data[split...]), id: 77,
                                moreFragments: false, fragmentOffset: UInt16(split / 8))
        var results: [IPFragmentReassembler.Outcome] = []
        for piece in [first, second] {
            piece.withUnsafeBytes { raw in
                var fragment: IPFragment? = nil
                _ = PacketDecoder.decode(linkType: PcapLinkType.ipv4, data: raw, fragment: &fragment)
                guard let fragment else {
                    Issue.record("not decoded as a fragment")
                    return
                }
                results.append(reassembler.add(fragment, packet: raw, time: 1))
            }
        }
        #expect(results == [.held, .givenUp])
        #expect(reassembler.takeDropped() == 2)
        #expect(reassembler.pending == 0)
    }

    // MARK: IPv6 (RFC 8200 §4.5)

    /// A masked text frame in one TCP segment from `client6` to `server6`, cut into IPv6 fragments
    /// of `size` bytes of the fragmentable part; with `extensions`, a Hop-by-Hop header before the
    /// Fragment header (unfragmentable) and a Destination Options header after it (fragmentable).
    static func fragments6(text: String, size: Int, id: UInt32 = 0x0102_0304, extensions: Bool) -> [[UInt8]] {
        let frame = WebSocketFrameEncoder.encode(.text(text, maskingKey: WebSocketMaskingKey(1, 2, 3, 4)))
        let segment = Build.tcp(from: Build.client6, to: Build.server6, seq: 1000, flags: [.psh, .ack], payload: frame)
        let padN: [UInt8] = [1, 4, 0, 0, 0, 0]
        let fragmentable = (extensions ? [6, 0] + padN : []) + segment
        let firstNext: UInt8 = extensions ? 60 : 6
        return stride(from: 0, to: fragmentable.count, by: size).map { start in
            let end = min(start + size, fragmentable.count)
            let field = UInt16(start / 8) << 3 | (end < fragmentable.count ? 1 : 0)
            let fragmentHeader: [UInt8] = [firstNext, 0, UInt8(field >> 8), UInt8(field & 0xFF),
                                           UInt8(id >> 24), UInt8((id >> 16) & 0xFF), UInt8((id >> 8) & 0xFF), UInt8(id & 0xFF)]
            return Build.ipv6(from: Build.client6.address, to: Build.server6.address,
                              extensions: extensions ? [(type: 0, bytes: [0, 0] + padN)] : [], finalHeader: 44,
                              payload: fragmentHeader + Array(fragmentable[start..<end]))
        }
    }

    static func sniff6(_ packets: [[UInt8]]) -> (texts: [String], skipped: [PacketSkipReason: Int]) {
        sniff(packets, port: Build.server6.port)
    }

    @Test(arguments: [([0, 1, 2, 3], false), ([3, 1, 0, 2], false), ([0, 1, 2, 3], true), ([2, 0, 3, 1, 0], true)])
    func fragmentedIPv6SegmentIsDissected(order: [Int], extensions: Bool) {
        let text = String(repeating: "fragmented over IPv6 ", count: 8)
        let pieces = Self.fragments6(text: text, size: 56, extensions: extensions)
        #expect(pieces.count == 4)
        let result = Self.sniff6(order.map { pieces[$0] })
        #expect(result.texts == [text])
        #expect(result.skipped[.ipFragment] == nil)  // the copy of fragment 0 repeats it
    }

    @Test func missingIPv6FragmentIsCounted() {
        let pieces = Self.fragments6(text: String(repeating: "z", count: 200), size: 64, extensions: true)
        let result = Self.sniff6([pieces[0], pieces[1], pieces[3]])
        #expect(result.texts.isEmpty)
        #expect(result.skipped[.ipFragment] == 3)
    }

    /// The reassembled packet is a plain IPv6 packet: the Fragment header gone, the Next Header
    /// that named it naming what came after it, the Payload Length covering the whole.
    @Test func reassembledIPv6PacketIsWhole() throws {
        let pieces = Self.fragments6(text: "whole again", size: 16, extensions: true)
        let reassembler = IPFragmentReassembler()
        var whole: [UInt8]? = nil
        for piece in pieces {
            piece.withUnsafeBytes { raw in
                var fragment: IPFragment? = nil
                #expect(PacketDecoder.decode(linkType: PcapLinkType.ipv6, data: raw, fragment: &fragment) == .skipped(.ipFragment))
                if case .whole(let w) = reassembler.add(try! #require(fragment), packet: raw, time: 1) { whole = w }
            }
        }
        let packet = try #require(whole)
        let frame = WebSocketFrameEncoder.encode(.text("whole again", maskingKey: WebSocketMaskingKey(1, 2, 3, 4)))
        let segment = Build.tcp(from: Build.client6, to: Build.server6, seq: 1000, flags: [.psh, .ack], payload: frame)
        let padN: [UInt8] = [1, 4, 0, 0, 0, 0]
        let expected = Build.ipv6(from: Build.client6.address, to: Build.server6.address,
                                  extensions: [(type: 0, bytes: [0, 0] + padN), (type: 60, bytes: [0, 0] + padN)], payload: segment)
        #expect(packet == expected)
    }

    /// With `reportsForSaving` (for -w, which holds each fragment's packet in its place until it
    /// knows the datagram's connection), each packet says which datagram it belongs to, and the
    /// one that completes it says so.
    @Test func fragmentsSayWhichDatagramTheyBelongTo() {
        for v6 in [false, true] {
            let pieces = v6 ? Self.fragments6(text: String(repeating: "w", count: 150), size: 64, extensions: false)
                            : Self.fragments(of: Self.packets(text: String(repeating: "w", count: 150)).data, size: 64)
            let order = [2, 0, 1]
            let session = SniffSession(configuration: SniffConfiguration(
                webSocketPorts: [Int(v6 ? Build.server6.port : Self.server.port)], reportsForSaving: true))
            var roles: [SniffSession.FragmentRole?] = []
            var flows: [SniffSession.PacketFlow?] = []
            for (n, i) in order.enumerated() {
                pieces[i].withUnsafeBytes { raw in
                    let packet = PcapPacket(number: n + 1, seconds: 1_000 + Int64(n), nanoseconds: 7, wireLength: raw.count, data: raw)
                    flows.append(session.process(packet, linkType: PcapLinkType.raw) { _ in })
                    roles.append(session.takeFragment())
                }
            }
            guard case .pending(let d)? = roles[0] else {
                Issue.record("v6: \(v6): \(roles)")
                continue
            }
            #expect(roles == [.pending(d), .pending(d), .completed(d)], "v6: \(v6)")
            // Only the packet that completed the datagram has a connection.
            #expect(flows[0] == nil && flows[1] == nil && flows[2]?.flow != nil, "v6: \(v6)")
            #expect(session.takeFragment() == nil && session.takeDroppedDatagrams().isEmpty)
        }
    }

    /// A fragment whose datagram never completes is given up 30 s of capture time later even when
    /// no other fragment comes (the sweep ran only when one did): -w holds every packet after
    /// it until then, so without other fragments it held them to the end of the capture.
    @Test func aStrayFragmentIsGivenUpWhileOtherTrafficGoesOn() {
        let pieces = Self.fragments(of: Self.packets(text: String(repeating: "s", count: 150)).data, size: 64)
        let session = SniffSession(configuration: SniffConfiguration(reportsForSaving: true))
        let other = Self.packets(text: "other traffic")
        var given: [[IPFragment.Datagram]] = []
        for (n, second) in [0.0, 10, 29, 31, 40].enumerated() {
            let bytes = n == 0 ? pieces[0] : other.data
            bytes.withUnsafeBytes { raw in
                let packet = PcapPacket(number: n + 1, seconds: 1_000 + Int64(second), nanoseconds: 0, wireLength: raw.count, data: raw)
                session.process(packet, linkType: PcapLinkType.raw) { _ in }
                given.append(session.takeDroppedDatagrams())
            }
        }
        #expect(given.map(\.count) == [0, 0, 0, 1, 0], "\(given)")
    }

    /// A datagram is given up 30 s after its last fragment, exactly: a fragment 30.2 s after the
    /// one before does not complete it even when a sweep at 29.8 s (run for other traffic) left it
    /// in place, so the outcome does not depend on what else the capture holds (a file saved with
    /// -w, without that other traffic, gave a gap where the original gave the message). And a
    /// packet stamped far ahead does not put the sweeps off for the packets after it.
    @Test func datagramsExpireOnTheirOwnClock() {
        let pieces = Self.fragments(of: Self.packets(text: String(repeating: "t", count: 150)).data, size: 64)
        let other = Self.packets(text: "other").data
        for withOther in [false, true] {
            let session = SniffSession(configuration: SniffConfiguration(reportsForSaving: true))
            var roles: [SniffSession.FragmentRole?] = []
            let steps: [([UInt8], Double)] = [(pieces[0], 0)] + (withOther ? [(other, 29.8)] : []) + [(pieces[1], 30.2), (pieces[2], 30.3)]
            for (n, (bytes, second)) in steps.enumerated() {
                bytes.withUnsafeBytes { raw in
                    let micros = Int64((second * 1_000_000).rounded())
                    let packet = PcapPacket(number: n + 1, seconds: 1_000 + micros / 1_000_000, nanoseconds: Int32(micros % 1_000_000) * 1_000,
                                            wireLength: raw.count, data: raw)
                    session.process(packet, linkType: PcapLinkType.raw) { _ in }
                    if bytes != other { roles.append(session.takeFragment()) }
                }
            }
            // The first piece was given up: the last two start the datagram again, still pending.
            guard case .pending(let d)? = roles[0] else {
                Issue.record("\(roles)")
                continue
            }
            #expect(roles == [.pending(d), .pending(d), .pending(d)], "with other traffic: \(withOther)")
        }
        // A datagram pending when a packet stamped 10,000 s ahead comes (the sweep then gives it
        // up), then a stray fragment and ordinary packets at the usual times.
        let session = SniffSession(configuration: SniffConfiguration(reportsForSaving: true))
        var given: [Int] = []
        let stray = Self.fragments(of: Self.packets(text: String(repeating: "u", count: 150)).data, size: 64, id: 0x5151)
        for (n, (bytes, second)) in [(pieces[0], 0.0), (other, 10_000), (stray[0], 100), (other, 110), (other, 131)].enumerated() {
            bytes.withUnsafeBytes { raw in
                let packet = PcapPacket(number: n + 1, seconds: Int64(second), nanoseconds: 0, wireLength: raw.count, data: raw)
                session.process(packet, linkType: PcapLinkType.raw) { _ in }
                given.append(session.takeDroppedDatagrams().count)
            }
        }
        #expect(given == [0, 1, 0, 0, 1], "\(given)")
    }

    /// Datagrams given up (a fragment cut by the snapshot length, one that expired, every one in
    /// progress at the end) are reported once each, with `reportsDrops` only.
    @Test func givenUpDatagramsAreReported() {
        let pieces = Self.fragments(of: Self.packets(text: String(repeating: "g", count: 150)).data, size: 64)
        for reports in [true, false] {
            let reassembler = IPFragmentReassembler(reportsDrops: reports)
            var keys: [IPFragment.Datagram] = []
            func add(_ bytes: [UInt8], time: Double, complete: Bool = true) {
                bytes.withUnsafeBytes { raw in
                    var fragment: IPFragment? = nil
                    _ = PacketDecoder.decode(linkType: PcapLinkType.ipv4, data: raw, fragment: &fragment)
                    fragment!.complete = complete
                    keys.append(fragment!.datagram)
                    _ = reassembler.add(fragment!, packet: raw, time: time)
                }
            }
            add(pieces[0], time: 1)
            #expect(reassembler.pending == 1)
            add(pieces[1], time: 1, complete: false)  // cut short: the datagram is given up
            #expect(reassembler.pending == 0)
            add(pieces[0], time: 2)  // starts it again
            add(pieces[1], time: 40)  // 38 s later: the first piece expired; this one is on its own
            reassembler.finish()
            #expect(reassembler.takeDroppedDatagrams() == (reports ? [keys[0], keys[0], keys[0]] : []))
            #expect(reassembler.takeDropped() == 4)
        }
    }

    /// A fragment seen again after its datagram was completed (the network, or a capture on
    /// several interfaces, saw it twice) is a duplicate: what duplicates alone make is neither
    /// given up and counted nor delivered again. The same identification with other bytes is a
    /// new datagram (the duplicates before it are put together with it: they may be its own),
    /// and so is the same fragment `timeout` later.
    @Test func fragmentsRepeatedAfterTheirDatagramAreDuplicates() {
        let (_, data) = Self.packets(text: String(repeating: "d", count: 150))
        let pieces = Self.fragments(of: data, size: 64, id: 42)
        let reassembler = IPFragmentReassembler(reportsDrops: true)
        func add(_ bytes: [UInt8], time: Double) -> IPFragmentReassembler.Outcome { Self.add(bytes, to: reassembler, time: time) }
        #expect(pieces.count == 3)
        #expect(add(pieces[0], time: 1) == .held)
        #expect(add(pieces[2], time: 1) == .held)
        guard case .whole = add(pieces[1], time: 1) else {
            Issue.record("not completed")
            return
        }
        for piece in pieces { #expect(add(piece, time: 2) == .duplicate) }
        #expect(reassembler.pending == 0 && reassembler.takeDropped() == 0)
        // The identification again with other bytes: a datagram of its own.
        let (_, other) = Self.packets(text: String(repeating: "e", count: 150))
        let reused = Self.fragments(of: other, size: 64, id: 42)
        #expect(add(reused[0], time: 3) == .held)
        // ...which, once complete, its own fragments repeat; the first datagram's no longer.
        #expect(add(reused[1], time: 3) == .held)
        guard case .whole = add(reused[2], time: 3) else {
            Issue.record("the reused identification's datagram not completed")
            return
        }
        #expect(add(reused[1], time: 4) == .duplicate)
        #expect(add(pieces[1], time: 4) == .held)
        reassembler.finish()
        #expect(reassembler.takeDropped() == 2, "the new datagram's two fragments, the duplicate put with it")
        // `timeout` after its completion, a fragment is a datagram's again.
        for piece in pieces { _ = add(piece, time: 10) }
        #expect(add(pieces[0], time: 10 + IPFragmentReassembler.timeout) == .held)
        reassembler.finish()
        #expect(reassembler.takeDropped() == 1)
    }

    /// The identification used again, for a datagram whose later fragments carry the same bytes
    /// as the one before (the same text sent again; only the first fragment, with the TCP
    /// header, differs), arriving last first: those fragments look like duplicates until the
    /// first one comes, and the new datagram is still put together from them. (They were taken
    /// for duplicates and lost: the message was a gap.) And a copy stamped a little before its
    /// datagram was completed (captured on two interfaces) is a duplicate too.
    @Test func aReusedIdentificationWhoseFragmentsLookLikeDuplicates() {
        let (_, first) = Self.packets(text: String(repeating: "h", count: 150))
        var second = first
        second[20 + 4] ^= 0x01  // the TCP sequence number: in the first fragment only
        let old = Self.fragments(of: first, size: 64, id: 7), new = Self.fragments(of: second, size: 64, id: 7)
        #expect(old.count == 3 && old[1] == new[1] && old[2] == new[2] && old[0] != new[0])
        let reassembler = IPFragmentReassembler(reportsDrops: true)
        func add(_ bytes: [UInt8], time: Double) -> IPFragmentReassembler.Outcome { Self.add(bytes, to: reassembler, time: time) }
        for piece in old.dropLast() { _ = add(piece, time: 1) }
        guard case .whole(let was) = add(old[2], time: 1) else {
            Issue.record("the first datagram")
            return
        }
        #expect(add(old[1], time: 0.999) == .duplicate, "stamped a millisecond before")
        #expect(reassembler.takeForgottenDatagrams().isEmpty)
        #expect(add(new[2], time: 5) == .duplicate)
        #expect(add(new[1], time: 5) == .duplicate)
        guard case .whole(let whole) = add(new[0], time: 5) else {
            Issue.record("the second datagram")
            return
        }
        #expect(Array(whole[20...]) == Array(second[20...]) && Array(was[20...]) == Array(first[20...]))
        // The first datagram, let go when the second began, is said to be forgotten (-w follows).
        #expect(reassembler.takeForgottenDatagrams() == [Self.key(new[0])])
        #expect(reassembler.takeDropped() == 0)
    }

    /// The IPv4 fragment `bytes` added to `reassembler`.
    static func add(_ bytes: [UInt8], to reassembler: IPFragmentReassembler, time: Double) -> IPFragmentReassembler.Outcome {
        bytes.withUnsafeBytes { raw in
            var fragment: IPFragment? = nil
            _ = PacketDecoder.decode(linkType: PcapLinkType.ipv4, data: raw, fragment: &fragment)
            return reassembler.add(fragment!, packet: raw, time: time)
        }
    }

    static func key(_ bytes: [UInt8]) -> IPFragment.Datagram {
        bytes.withUnsafeBytes { raw in
            var fragment: IPFragment? = nil
            _ = PacketDecoder.decode(linkType: PcapLinkType.ipv4, data: raw, fragment: &fragment)
            return fragment!.datagram
        }
    }

    /// Completed datagrams kept for their duplicates are bounded in count and bytes.
    @Test func recentDatagramsAreBounded() {
        let reassembler = IPFragmentReassembler(reportsDrops: true)
        let (_, data) = Self.packets(text: String(repeating: "b", count: 150))
        let count = IPFragmentReassembler.maxDatagrams + 10
        for id in 0..<count {
            for piece in Self.fragments(of: data, size: 64, id: UInt16(id)) { _ = Self.add(piece, to: reassembler, time: 1) }
        }
        // The first ten were let go: their fragments start datagrams again; the last ones repeat.
        // (Each one let go is said to be, for -w, which follows what this remembers.)
        #expect(reassembler.takeForgottenDatagrams() == (0..<10).map { Self.key(Self.fragments(of: data, size: 64, id: UInt16($0))[0]) })
        for (id, expected) in [(0, IPFragmentReassembler.Outcome.held), (9, .held), (10, .duplicate), (count - 1, .duplicate)] {
            #expect(Self.add(Self.fragments(of: data, size: 64, id: UInt16(id))[0], to: reassembler, time: 2) == expected, "id \(id)")
        }
    }
}

/// Every fixture capture through a session with little memory for messages: what its connections
/// take is all given back by the end of the capture.
@Suite struct SessionMemoryBudgetTests {
    @Test(arguments: [0, 2_000, 64 << 10])
    func everyFixtureGivesBackWhatItTakes(limit: Int) throws {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("Fixtures/captures")
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".pcap") }.sorted()
        #expect(names.count >= 17)
        var used = 0
        for name in names {
            let budget = DissectionMemoryBudget(limit: limit)
            var dissector = WebSocketDissectorConfiguration()
            dissector.messageMemory = budget
            dissector.assembler.retainedBufferCapacity = 64 << 10
            dissector.parser.retainedCarryCapacity = 64 << 10
            let session = SniffSession(configuration: SniffConfiguration(dissector: dissector, webSocketPorts: [8765, 28081]))
            let source = try PcapSource(offlinePath: directory.appendingPathComponent(name).path)
            var messages = 0
            reading: while true {
                let result: PcapReadResult
                do { result = try source.read() } catch { break reading }  // truncated.pcap: what came before it counts
                switch result {
                case .packet(let p): session.process(p, linkType: source.linkType) { if case .message = $0 { messages += 1 } }
                case .timeout, .interrupted: continue
                case .endOfCapture: break reading
                }
            }
            session.finish { if case .message = $0 { messages += 1 } }
            #expect(messages > 0 || name.hasPrefix("refused"), "\(name)")
            #expect(budget.held == 0, "\(name), limit \(limit): \(budget.held) bytes still held")
            used += budget.peak
        }
        if limit > 0 { #expect(used > 0, "some fixture took room in the budget") }
    }
}
