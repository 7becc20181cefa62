/// Memory for the messages that dissectors have to collect before they can show them (fragmented,
/// compressed, or larger than one piece of the stream), shared by every dissector of a session
/// (`WebSocketDissectorConfiguration.messageMemory`). `wsctl sniff` follows thousands of
/// connections at once: each may be in the middle of a message of up to 64 MiB, so without a
/// common limit a capture could make it hold far more than the machine has.
///
/// A message is held whole while the budget has room for its bytes. Once it has none, that
/// message goes on without being held: its first bytes (what is shown of it) are kept, the rest
/// is counted, checked as UTF-8 and inflated as it comes, and let go. What needs the whole message
/// at once, recognising an envelope in its JSON, is then not done. The bytes are given back when
/// the message ends. What is counted is the room the buffers take, so a buffer that grows may take
/// the budget past its limit by its growth (until then, messages that do not fit are not held).
///
/// For one thread at a time: the session's dissecting thread.
public final class DissectionMemoryBudget: @unchecked Sendable {
    /// Bytes the dissectors may hold at once.
    public let limit: Int
    /// Bytes held now.
    ///
    /// (Unchecked at run time: `take` and `give` run for every frame held and every piece a
    /// message inflates to, and each check was a call into the runtime's access set. Nothing here
    /// passes a counter inout, or calls out while changing one.)
    @exclusivity(unchecked) public private(set) var held = 0
    /// The most held at once.
    @exclusivity(unchecked) public private(set) var peak = 0
    /// Messages that did not fit and were shown from their first bytes only.
    public private(set) var messagesNotHeldWhole = 0
    /// Compressed messages left uninflated: there was no room for their direction's inflater
    /// (its window and state, up to about 40 KiB).
    public private(set) var messagesNotInflated = 0
    /// Frames arriving in pieces whose payload was to be shown whole
    /// (`WebSocketDissectorConfiguration.maxPayloadShownWithoutRoom`) but did not fit: shown cut.
    public private(set) var framesNotHeldWhole = 0

    public init(limit: Int) {
        precondition(limit >= 0, "a memory budget cannot be negative")
        self.limit = limit
    }

    /// Takes room for `count` more bytes; false, taking nothing, when there is not that much left.
    public func take(_ count: Int) -> Bool {
        guard count <= limit - held else { return false }
        held += count
        if held > peak { peak = held }
        return true
    }

    /// Takes `count` bytes already in use (a buffer grew past what was taken for it).
    func takeInUse(_ count: Int) {
        held += count
        if held > peak { peak = held }
    }

    public func give(_ count: Int) {
        held = max(0, held - count)
    }

    /// Moves a holder's share, `charged`, to `wanted`: gives back what it no longer needs, or takes
    /// what it needs more. False, changing nothing, when there is no room for the increase.
    func adjust(_ charged: inout Int, to wanted: Int) -> Bool {
        if wanted < charged {
            give(charged - wanted)
        } else if wanted > charged {
            guard take(wanted - charged) else { return false }
        }
        charged = wanted
        return true
    }

    func noteMessageNotHeldWhole() {
        messagesNotHeldWhole += 1
    }

    func noteMessageNotInflated() {
        messagesNotInflated += 1
    }

    func noteFrameNotHeldWhole() {
        framesNotHeldWhole += 1
    }
}
