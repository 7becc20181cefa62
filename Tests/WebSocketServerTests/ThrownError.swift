/// The error `body` throws, or nil when it returns.
///
/// Tests check it with `#expect(thrown is SomeError)` (or `thrown == nil`) instead of writing
/// `#expect(throws: SomeError.self) { … }`: with Swift 6.3.1 a closure inside an `#expect` or
/// `#require` argument can get the same symbol as a later closure of the same type in the enclosing
/// closure, which then silently runs the macro's closure body instead of its own. So no closure
/// goes inside those macros in these tests; values are computed into a `let` first.
func thrownError<R>(_ body: () throws -> R) -> (any Error)? {
    do {
        _ = try body()
        return nil
    } catch {
        return error
    }
}
