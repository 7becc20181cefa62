/// Bytes read from a pasted hex dump, with where the dump was split.
public struct HexDump: Hashable, Sendable {
    /// Every byte of the dump, blocks one after another, `*` lines expanded.
    public var bytes: [UInt8]
    /// The layout the text was read as.
    public var format: HexDumpFormat
    /// Byte ranges of the separate pieces of the input, in order, covering `bytes` exactly: one per
    /// packet for tcpdump, one per buffer for tshark, one per blank-line-separated paragraph or
    /// literal otherwise. Always at least one, so a single dump is `[0..<bytes.count]`.
    public var blocks: [Range<Int>]
    /// For each block, the text line just above it (tcpdump's packet line, tshark's
    /// `Frame (74 bytes)` without the colon, a `client:` note), or nil.
    public var blockLabels: [String?]

    public init(bytes: [UInt8], format: HexDumpFormat, blocks: [Range<Int>], blockLabels: [String?]) {
        precondition(blocks.count == blockLabels.count, "one label (or nil) per block")
        self.bytes = bytes
        self.format = format
        self.blocks = blocks
        self.blockLabels = blockLabels
    }

    /// The bytes of block `index`.
    public func bytes(inBlock index: Int) -> ArraySlice<UInt8> {
        bytes[blocks[index]]
    }
}
