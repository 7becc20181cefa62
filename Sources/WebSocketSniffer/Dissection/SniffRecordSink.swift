import WebSocketCodec
import WebSocketInspect

/// Where a connection's frames and messages go as they are dissected, without being wrapped in a
/// `SniffEvent` first: the record is lent for the call by pointer, where the dissector built it
/// (passed as a value, it was copied once more on the way).
///
/// For the thread that dissects a file, which is the busiest of the three: wrapping each record in
/// an event, and taking it out again on the other side of the `emit` closure, copied it twice and
/// set and read the event's case in memory just written (about a twentieth of the run's cycles,
/// in `perf` samples). Every other event still goes through `emit`, in the same order: both are
/// called on the dissecting thread, one event at a time.
public protocol SniffRecordSink: AnyObject {
    func frame(connection: Int, direction: WebSocketDirection, time: Double, record: UnsafePointer<FrameRecordView>, timing: MessageTiming)
    func message(connection: Int, direction: WebSocketDirection, time: Double, record: UnsafePointer<MessageRecordView>, timing: MessageTiming)
}
