/// Signed distance from `a` to `b` in 32-bit sequence space (RFC 1982 serial number arithmetic, as TCP uses
/// it, RFC 9293 §3.4): positive if `b` is after `a`, correct across the wrap at 2^32 as long as the two are
/// within 2^31 of each other.
@inline(__always)
func sequenceDistance(from a: UInt32, to b: UInt32) -> Int {
    Int(Int32(bitPattern: b &- a))
}
