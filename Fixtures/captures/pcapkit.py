"""Small, self-contained pcap toolkit for the wsctl sniff fixtures.

Written for this project (no scapy, no third-party code). It covers exactly what the fixture
generator needs:

* classic pcap files (24-byte global header, 16-byte record headers; either byte order,
  microsecond or nanosecond magic) — reading, with truncation detection, and writing;
* the link layers the captures use: Ethernet (with 802.1Q tags; what Linux `lo` gives, with zeroed
  MACs), Linux cooked capture v1 and v2 (what `-i any` gives), BSD NULL/loopback and raw IP;
* IPv4 / IPv6 / TCP parsing, and rebuilding a TCP packet with a new sequence number and payload
  (lengths and checksums recomputed) for the perturbed copies;
* a reference TCP reassembler (out of order, exact and overlapping retransmissions, gaps);
* a reference WebSocket dissector (RFC 6455 frames, unmasking, fragmentation, RFC 7692
  permessage-deflate with context takeover) used to check the recorded ground truth against what
  actually went over the wire.
"""

from __future__ import annotations

import hashlib
import ipaddress
import struct
import zlib
from dataclasses import dataclass, field

# --------------------------------------------------------------------------------------------
# pcap files

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D

LINKTYPE_NULL = 0
LINKTYPE_EN10MB = 1
LINKTYPE_RAW = 101
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

LINKTYPE_NAMES = {
    LINKTYPE_NULL: "NULL",
    LINKTYPE_EN10MB: "EN10MB",
    LINKTYPE_RAW: "RAW",
    12: "RAW",
    LINKTYPE_LINUX_SLL: "LINUX_SLL",
    LINKTYPE_IPV4: "IPV4",
    LINKTYPE_IPV6: "IPV6",
    LINKTYPE_LINUX_SLL2: "LINUX_SLL2",
}


@dataclass
class PcapRecord:
    ts_sec: int
    ts_frac: int  # microseconds or nanoseconds, per the file's magic
    orig_len: int
    data: bytes

    def copy(self, **changes) -> "PcapRecord":
        values = dict(ts_sec=self.ts_sec, ts_frac=self.ts_frac, orig_len=self.orig_len, data=self.data)
        values.update(changes)
        return PcapRecord(**values)


@dataclass
class PcapFile:
    linktype: int
    snaplen: int
    nanosecond: bool
    byte_order: str  # "<" or ">"
    version: tuple[int, int]
    records: list[PcapRecord]
    # Set when the file ends inside a record: (1-based number of the incomplete record, byte offset
    # where that record starts, description).
    truncated: tuple[int, int, str] | None = None

    @property
    def linktype_name(self) -> str:
        return LINKTYPE_NAMES.get(self.linktype, f"DLT_{self.linktype}")

    def timestamp(self, record: PcapRecord) -> float:
        return record.ts_sec + record.ts_frac / (1e9 if self.nanosecond else 1e6)


def read_pcap(path: str) -> PcapFile:
    with open(path, "rb") as handle:
        blob = handle.read()
    return parse_pcap(blob)


def parse_pcap(blob: bytes) -> PcapFile:
    if len(blob) < 24:
        raise ValueError("not a pcap file: shorter than the 24-byte global header")
    magic_le = struct.unpack("<I", blob[:4])[0]
    magic_be = struct.unpack(">I", blob[:4])[0]
    if magic_le in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
        order, magic = "<", magic_le
    elif magic_be in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
        order, magic = ">", magic_be
    else:
        raise ValueError(f"not a classic pcap file (magic {blob[:4].hex()})")
    major, minor, _zone, _sigfigs, snaplen, network = struct.unpack(order + "HHiIII", blob[4:24])
    pcap = PcapFile(
        linktype=network & 0x0FFFFFFF,
        snaplen=snaplen,
        nanosecond=magic == PCAP_MAGIC_NS,
        byte_order=order,
        version=(major, minor),
        records=[],
    )
    offset = 24
    number = 0
    while offset < len(blob):
        number += 1
        if offset + 16 > len(blob):
            pcap.truncated = (number, offset, f"record header cut after {len(blob) - offset} of 16 bytes")
            break
        ts_sec, ts_frac, incl_len, orig_len = struct.unpack(order + "IIII", blob[offset:offset + 16])
        if incl_len > max(snaplen, 262144) * 4:
            pcap.truncated = (number, offset, f"implausible captured length {incl_len}")
            break
        if offset + 16 + incl_len > len(blob):
            pcap.truncated = (number, offset,
                              f"record data cut after {len(blob) - offset - 16} of {incl_len} bytes")
            break
        pcap.records.append(PcapRecord(ts_sec, ts_frac, orig_len, blob[offset + 16:offset + 16 + incl_len]))
        offset += 16 + incl_len
    return pcap


def pcap_bytes(pcap: PcapFile) -> bytes:
    order = pcap.byte_order
    magic = PCAP_MAGIC_NS if pcap.nanosecond else PCAP_MAGIC_US
    out = [struct.pack(order + "IHHiIII", magic, pcap.version[0], pcap.version[1], 0, 0,
                       pcap.snaplen, pcap.linktype)]
    for record in pcap.records:
        out.append(struct.pack(order + "IIII", record.ts_sec, record.ts_frac, len(record.data),
                               max(record.orig_len, len(record.data))))
        out.append(record.data)
    return b"".join(out)


def write_pcap(path: str, pcap: PcapFile) -> None:
    with open(path, "wb") as handle:
        handle.write(pcap_bytes(pcap))


def record_offsets(pcap: PcapFile) -> list[int]:
    """Byte offset of each record header in the file pcap_bytes() would write."""
    offsets, offset = [], 24
    for record in pcap.records:
        offsets.append(offset)
        offset += 16 + len(record.data)
    return offsets


# --------------------------------------------------------------------------------------------
# link, network and transport layers

ETHERTYPE_IPV4 = 0x0800
ETHERTYPE_IPV6 = 0x86DD
ETHERTYPE_VLAN = (0x8100, 0x88A8, 0x9100)


@dataclass
class TCPPacket:
    family: int  # 4 or 6
    src: str
    dst: str
    sport: int
    dport: int
    seq: int
    ack: int
    flags: int
    window: int
    payload: bytes
    ip_offset: int  # where the IP header starts in the link-layer frame
    tcp_offset: int  # where the TCP header starts
    payload_offset: int
    link_extra: dict = field(default_factory=dict)  # e.g. cooked-capture packet type

    FIN, SYN, RST, PSH, ACK = 0x01, 0x02, 0x04, 0x08, 0x10

    @property
    def syn(self) -> bool:
        return bool(self.flags & self.SYN)

    @property
    def fin(self) -> bool:
        return bool(self.flags & self.FIN)

    @property
    def rst(self) -> bool:
        return bool(self.flags & self.RST)

    def flags_text(self) -> str:
        names = [("S", self.SYN), ("F", self.FIN), ("R", self.RST), ("P", self.PSH), (".", self.ACK)]
        return "".join(name for name, bit in names if self.flags & bit) or "none"


def network_offset(linktype: int, frame: bytes) -> tuple[int, int, dict] | None:
    """(offset of the network header, ethertype, extra) for a link-layer frame, or None."""
    extra: dict = {}
    if linktype == LINKTYPE_EN10MB:
        if len(frame) < 14:
            return None
        offset, ethertype = 14, struct.unpack("!H", frame[12:14])[0]
        while ethertype in ETHERTYPE_VLAN and len(frame) >= offset + 4:
            extra.setdefault("vlan", []).append(struct.unpack("!H", frame[offset:offset + 2])[0] & 0x0FFF)
            ethertype = struct.unpack("!H", frame[offset + 2:offset + 4])[0]
            offset += 4
        return offset, ethertype, extra
    if linktype == LINKTYPE_LINUX_SLL:
        if len(frame) < 16:
            return None
        pkttype, hatype, halen = struct.unpack("!HHH", frame[0:6])
        extra.update(pkttype=pkttype, hatype=hatype, halen=halen)
        return 16, struct.unpack("!H", frame[14:16])[0], extra
    if linktype == LINKTYPE_LINUX_SLL2:
        if len(frame) < 20:
            return None
        protocol, _reserved, ifindex, hatype, pkttype, halen = struct.unpack("!HHIHBB", frame[0:12])
        extra.update(pkttype=pkttype, hatype=hatype, halen=halen, ifindex=ifindex)
        return 20, protocol, extra
    if linktype == LINKTYPE_NULL:
        if len(frame) < 4:
            return None
        family = struct.unpack("<I", frame[:4])[0]
        if family > 0xFFFF:
            family = struct.unpack(">I", frame[:4])[0]
        if family == 2:
            return 4, ETHERTYPE_IPV4, extra
        if family in (24, 28, 30, 10):
            return 4, ETHERTYPE_IPV6, extra
        return None
    if linktype in (LINKTYPE_RAW, 12, LINKTYPE_IPV4, LINKTYPE_IPV6):
        if not frame:
            return None
        version = frame[0] >> 4
        return 0, ETHERTYPE_IPV4 if version == 4 else ETHERTYPE_IPV6, extra
    return None


def parse_tcp(linktype: int, frame: bytes) -> TCPPacket | None:
    located = network_offset(linktype, frame)
    if located is None:
        return None
    ip_off, ethertype, extra = located
    if ethertype == ETHERTYPE_IPV4:
        if len(frame) < ip_off + 20:
            return None
        vihl, _tos, total, _ident, frag, _ttl, proto = struct.unpack("!BBHHHBB", frame[ip_off:ip_off + 10])
        ihl = (vihl & 0x0F) * 4
        if proto != 6 or frag & 0x1FFF:
            return None
        src = str(ipaddress.IPv4Address(frame[ip_off + 12:ip_off + 16]))
        dst = str(ipaddress.IPv4Address(frame[ip_off + 16:ip_off + 20]))
        tcp_off = ip_off + ihl
        end = min(len(frame), ip_off + total)
        family = 4
    elif ethertype == ETHERTYPE_IPV6:
        if len(frame) < ip_off + 40:
            return None
        plen, nxt = struct.unpack("!HB", frame[ip_off + 4:ip_off + 7])
        src = str(ipaddress.IPv6Address(frame[ip_off + 8:ip_off + 24]))
        dst = str(ipaddress.IPv6Address(frame[ip_off + 24:ip_off + 40]))
        tcp_off = ip_off + 40
        # Skip the usual extension headers (hop-by-hop, routing, destination options).
        hops = 0
        while nxt in (0, 43, 60) and hops < 8 and len(frame) >= tcp_off + 2:
            nxt, hdr_len = frame[tcp_off], (frame[tcp_off + 1] + 1) * 8
            tcp_off += hdr_len
            hops += 1
        if nxt != 6:
            return None
        end = min(len(frame), ip_off + 40 + plen)
        family = 6
    else:
        return None
    if len(frame) < tcp_off + 20:
        return None
    sport, dport, seq, ack, off_flags, window = struct.unpack("!HHIIHH", frame[tcp_off:tcp_off + 16])
    doff = (off_flags >> 12) * 4
    flags = off_flags & 0x1FF
    payload_off = tcp_off + doff
    return TCPPacket(family, src, dst, sport, dport, seq, ack, flags, window,
                     bytes(frame[payload_off:end]), ip_off, tcp_off, payload_off, extra)


def _checksum(data: bytes) -> int:
    if len(data) % 2:
        data += b"\x00"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def rebuild_tcp(linktype: int, frame: bytes, seq: int, payload: bytes) -> bytes:
    """The same frame with a new TCP sequence number and payload; lengths and checksums fixed."""
    packet = parse_tcp(linktype, frame)
    if packet is None:
        raise ValueError("not a TCP packet")
    link = bytearray(frame[:packet.ip_offset])
    tcp_header = bytearray(frame[packet.tcp_offset:packet.payload_offset])
    struct.pack_into("!I", tcp_header, 4, seq & 0xFFFFFFFF)
    struct.pack_into("!H", tcp_header, 16, 0)
    if packet.family == 4:
        ip_header = bytearray(frame[packet.ip_offset:packet.tcp_offset])
        struct.pack_into("!H", ip_header, 2, len(ip_header) + len(tcp_header) + len(payload))
        struct.pack_into("!H", ip_header, 10, 0)
        struct.pack_into("!H", ip_header, 10, _checksum(bytes(ip_header)))
        pseudo = bytes(ip_header[12:20]) + struct.pack("!BBH", 0, 6, len(tcp_header) + len(payload))
    else:
        ip_header = bytearray(frame[packet.ip_offset:packet.tcp_offset])
        struct.pack_into("!H", ip_header, 4, len(ip_header) - 40 + len(tcp_header) + len(payload))
        pseudo = bytes(ip_header[8:40]) + struct.pack("!IxxxB", len(tcp_header) + len(payload), 6)
    struct.pack_into("!H", tcp_header, 16, _checksum(pseudo + bytes(tcp_header) + payload))
    return bytes(link) + bytes(ip_header) + bytes(tcp_header) + payload


def endpoint_text(ip: str, port: int) -> str:
    return f"[{ip}]:{port}" if ":" in ip else f"{ip}:{port}"


# --------------------------------------------------------------------------------------------
# TCP reassembly (reference implementation for checking fixtures)

@dataclass
class Segment:
    packet_number: int  # 1-based record number in the file
    timestamp: float
    start: int  # stream offset (0 = first byte after the SYN, or first byte seen)
    data: bytes


@dataclass
class HalfStream:
    src: tuple[str, int]
    dst: tuple[str, int]
    isn: int | None = None
    base: int | None = None
    segments: list[Segment] = field(default_factory=list)
    fin: bool = False
    rst: bool = False
    syn_packet: int | None = None
    data: bytes = b""
    gaps: list[tuple[int, int]] = field(default_factory=list)  # (offset, size)
    duplicates: int = 0  # segments entirely made of bytes already seen
    overlaps: int = 0  # segments partly made of bytes already seen
    conflicts: int = 0  # overlapping bytes that differ
    out_of_order: int = 0  # segments that start beyond the contiguous data seen so far

    def offset_of(self, seq: int) -> int:
        return (seq - self.base) & 0xFFFFFFFF


@dataclass
class Flow:
    key: tuple  # (client ip, client port, server ip, server port)
    client: HalfStream
    server: HalfStream
    first_packet: int
    packets: list[int] = field(default_factory=list)


def reassemble(pcap: PcapFile, server_ports: set[int] | None = None) -> list[Flow]:
    """Group TCP packets into flows and rebuild each direction's byte stream.

    The client is the side that sent the first SYN; without a SYN, the side whose port is not in
    `server_ports` (or, failing that, the side that sent the first packet)."""
    flows: dict[tuple, Flow] = {}
    order: list[tuple] = []
    for number, record in enumerate(pcap.records, start=1):
        packet = parse_tcp(pcap.linktype, record.data)
        if packet is None:
            continue
        a, b = (packet.src, packet.sport), (packet.dst, packet.dport)
        key = tuple(sorted([a, b]))
        if key not in flows:
            if packet.syn and packet.flags & TCPPacket.ACK:
                client, server = b, a
            elif packet.syn:
                client, server = a, b
            elif server_ports and packet.dport in server_ports:
                client, server = a, b
            elif server_ports and packet.sport in server_ports:
                client, server = b, a
            else:
                client, server = a, b
            flows[key] = Flow((client[0], client[1], server[0], server[1]),
                              HalfStream(client, server), HalfStream(server, client), number)
            order.append(key)
        flow = flows[key]
        flow.packets.append(number)
        half = flow.client if a == flow.client.src else flow.server
        if packet.syn:
            half.isn = packet.seq
            half.base = (packet.seq + 1) & 0xFFFFFFFF
            half.syn_packet = number
        elif half.base is None:
            half.base = packet.seq
        if packet.fin:
            half.fin = True
        if packet.rst:
            half.rst = True
        if packet.payload:
            seq = packet.seq + (1 if packet.syn else 0)
            half.segments.append(Segment(number, pcap.timestamp(record), half.offset_of(seq), packet.payload))
    result = []
    for key in order:
        flow = flows[key]
        for half in (flow.client, flow.server):
            _stitch(half)
        result.append(flow)
    return result


def _stitch(half: HalfStream) -> None:
    buffer = bytearray()
    filled = bytearray()  # 1 where a byte is known
    contiguous = 0
    for segment in half.segments:
        start, end = segment.start, segment.start + len(segment.data)
        if end > 1 << 31:  # before the base: ignore (can't happen in these fixtures)
            continue
        if start > contiguous:
            half.out_of_order += 1
        if end > len(buffer):
            buffer.extend(b"\x00" * (end - len(buffer)))
            filled.extend(b"\x00" * (end - len(filled)))
        already = sum(filled[start:end])
        if already == end - start:
            half.duplicates += 1
        elif already:
            half.overlaps += 1
        for i in range(start, end):
            if filled[i]:
                if buffer[i] != segment.data[i - start]:
                    half.conflicts += 1
            else:
                buffer[i] = segment.data[i - start]
                filled[i] = 1
        while contiguous < len(filled) and filled[contiguous]:
            contiguous += 1
    # Gaps.
    i = 0
    while i < len(filled):
        if not filled[i]:
            j = i
            while j < len(filled) and not filled[j]:
                j += 1
            half.gaps.append((i, j - i))
            i = j
        else:
            i += 1
    half.data = bytes(buffer)


def segment_at(half: HalfStream, offset: int) -> Segment | None:
    """The first captured segment that carries the byte at `offset`."""
    best = None
    for segment in half.segments:
        if segment.start <= offset < segment.start + len(segment.data):
            if best is None or segment.packet_number < best.packet_number:
                best = segment
    return best


# --------------------------------------------------------------------------------------------
# HTTP upgrade and WebSocket frames (reference implementation for checking fixtures)

WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OPCODE_NAMES = {0: "continuation", 1: "text", 2: "binary", 8: "close", 9: "ping", 10: "pong"}


def accept_for(key: str) -> str:
    import base64
    return base64.b64encode(hashlib.sha1((key + WS_GUID).encode()).digest()).decode()


def parse_http_head(data: bytes) -> tuple[str, dict[str, str], int] | None:
    """(start line, headers with lower-case names, length of the head) or None if incomplete."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    lines = data[:end].decode("latin-1").split("\r\n")
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        name = name.strip().lower()
        if name in headers:
            headers[name] += ", " + value.strip()
        else:
            headers[name] = value.strip()
    return lines[0], headers, end + 4


@dataclass
class Frame:
    direction: str
    offset: int  # stream offset of the first header byte
    end: int  # stream offset just past the frame
    fin: bool
    rsv1: bool
    rsv2: bool
    rsv3: bool
    opcode: int
    masked: bool
    mask: bytes | None
    payload: bytes  # unmasked


def parse_frames(data: bytes, direction: str, start: int = 0) -> tuple[list[Frame], int]:
    """Complete frames from `start`; also returns the offset where parsing stopped."""
    frames = []
    pos = start
    while pos + 2 <= len(data):
        b0, b1 = data[pos], data[pos + 1]
        length = b1 & 0x7F
        header = 2
        if length == 126:
            if pos + 4 > len(data):
                break
            length = struct.unpack("!H", data[pos + 2:pos + 4])[0]
            header = 4
        elif length == 127:
            if pos + 10 > len(data):
                break
            length = struct.unpack("!Q", data[pos + 2:pos + 10])[0]
            header = 10
        masked = bool(b1 & 0x80)
        mask = None
        if masked:
            if pos + header + 4 > len(data):
                break
            mask = data[pos + header:pos + header + 4]
            header += 4
        if pos + header + length > len(data):
            break
        raw = data[pos + header:pos + header + length]
        if mask:
            raw = _unmask(raw, mask)
        frames.append(Frame(direction, pos, pos + header + length, bool(b0 & 0x80), bool(b0 & 0x40), bool(b0 & 0x20),
                            bool(b0 & 0x10), b0 & 0x0F, masked, mask, raw))
        pos += header + length
    return frames, pos


def _unmask(data: bytes, mask: bytes) -> bytes:
    if not data:
        return b""
    key = int.from_bytes((mask * (len(data) // 4 + 1))[:len(data)], "big")
    return (int.from_bytes(data, "big") ^ key).to_bytes(len(data), "big")


def parse_extensions(header: str | None) -> list[dict]:
    """`permessage-deflate; client_max_window_bits=10, x` -> [{"name": ..., "params": {...}}]."""
    if not header:
        return []
    result = []
    for item in header.split(","):
        parts = [p.strip() for p in item.split(";") if p.strip()]
        if not parts:
            continue
        params = {}
        for param in parts[1:]:
            name, eq, value = param.partition("=")
            params[name.strip()] = value.strip().strip('"') if eq else True
        result.append({"name": parts[0], "params": params})
    return result


@dataclass
class DissectedMessage:
    direction: str
    opcode: str
    payload: bytes
    frames: int
    compressed: bool
    first_offset: int  # stream offset of the first frame's header
    end_offset: int  # stream offset just past the last frame
    complete_packet: int = 0  # record number of the packet that carried the last byte


@dataclass
class DissectedConnection:
    flow: Flow
    request: tuple[str, dict[str, str]] | None = None
    response: tuple[str, dict[str, str]] | None = None
    status: int | None = None
    messages: list[DissectedMessage] = field(default_factory=list)
    control: list[tuple[str, str, bytes, int]] = field(default_factory=list)  # (direction, opcode, payload, packet)
    closes: dict[str, tuple[int | None, str, int]] = field(default_factory=dict)  # code, reason, packet
    errors: list[str] = field(default_factory=list)
    frames: list[Frame] = field(default_factory=list)
    leftover: dict[str, int] = field(default_factory=dict)  # unparsed bytes at the end per direction


def dissect(flow: Flow, assume_websocket: bool = False, http_before_upgrade: dict | None = None) -> DissectedConnection:
    """Dissect one flow. Without a handshake in the capture, `assume_websocket` parses frames from
    the first byte of each direction (no extension known). `http_before_upgrade` (from the truth:
    `client_bytes`, `server_bytes`) says where the upgrade starts after ordinary HTTP exchanges on
    the same connection."""
    conn = DissectedConnection(flow)
    starts = {"client": 0, "server": 0}
    extensions: list[dict] = []
    if not assume_websocket:
        skip = http_before_upgrade or {"client_bytes": 0, "server_bytes": 0}
        req = parse_http_head(flow.client.data[skip["client_bytes"]:])
        resp = parse_http_head(flow.server.data[skip["server_bytes"]:])
        if req is None or resp is None:
            conn.errors.append("incomplete HTTP upgrade")
            return conn
        conn.request = (req[0], req[1])
        conn.response = (resp[0], resp[1])
        try:
            conn.status = int(resp[0].split(" ")[1])
        except (IndexError, ValueError):
            conn.errors.append(f"bad status line {resp[0]!r}")
            return conn
        if conn.status != 101:
            return conn
        starts = {"client": skip["client_bytes"] + req[2], "server": skip["server_bytes"] + resp[2]}
        extensions = parse_extensions(resp[1].get("sec-websocket-extensions"))
    deflate = next((e["params"] for e in extensions if e["name"] == "permessage-deflate"), None)
    for direction, half in (("client", flow.client), ("server", flow.server)):
        frames, stop = parse_frames(half.data, direction, starts[direction])
        conn.leftover[direction] = len(half.data) - stop
        conn.frames.extend(frames)
        no_takeover = bool(deflate and deflate.get(f"{direction}_no_context_takeover"))
        inflater = zlib.decompressobj(-15)
        pending: list[Frame] = []
        for frame in frames:
            if frame.opcode >= 8:
                if frame.opcode == 8:
                    code, reason = None, ""
                    if len(frame.payload) >= 2:
                        code = struct.unpack("!H", frame.payload[:2])[0]
                        reason = frame.payload[2:].decode("utf-8", "replace")
                    carrier = segment_at(half, frame.end - 1)
                    conn.closes.setdefault(direction, (code, reason, carrier.packet_number if carrier else 0))
                else:
                    carrier = segment_at(half, frame.end - 1)
                    conn.control.append((direction, OPCODE_NAMES.get(frame.opcode, str(frame.opcode)),
                                         frame.payload, carrier.packet_number if carrier else 0))
                continue
            if frame.opcode in (1, 2):
                if pending:
                    conn.errors.append(f"{direction}: new data frame inside a fragmented message")
                pending = [frame]
            elif frame.opcode == 0:
                if not pending:
                    conn.errors.append(f"{direction}: continuation without a message")
                    continue
                pending.append(frame)
            else:
                conn.errors.append(f"{direction}: reserved opcode {frame.opcode}")
                continue
            if not frame.fin:
                continue
            payload = b"".join(f.payload for f in pending)
            compressed = pending[0].rsv1
            if compressed:
                if deflate is None:
                    conn.errors.append(f"{direction}: RSV1 without permessage-deflate")
                else:
                    if no_takeover:
                        inflater = zlib.decompressobj(-15)
                    try:
                        payload = inflater.decompress(payload + b"\x00\x00\xff\xff")
                    except zlib.error as error:
                        conn.errors.append(f"{direction}: inflate failed: {error}")
            carrier = segment_at(half, frame.end - 1)
            conn.messages.append(DissectedMessage(direction, OPCODE_NAMES[pending[0].opcode], payload,
                                                  len(pending), compressed, pending[0].offset, frame.end,
                                                  carrier.packet_number if carrier else 0))
            pending = []
    # Global order: by the packet that completed each message (stable, so one direction's messages
    # that end in the same packet keep their stream order).
    conn.messages.sort(key=lambda m: m.complete_packet)
    conn.control.sort(key=lambda c: c[3])
    return conn


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
