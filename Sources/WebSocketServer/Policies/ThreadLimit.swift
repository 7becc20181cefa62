#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// How many event-loop threads a server may ask for. Each NIO event loop holds file descriptors of
/// its own (on Linux an epoll, an eventfd and a timerfd), and NIO stops the process with a fatal
/// error when it cannot create them, so the count is checked against the open-file limit first.
public enum ThreadLimit {
    /// The most `--threads` accepts.
    public static let maximum = 256
    /// File descriptors one event loop holds (epoll, eventfd, timerfd).
    public static let descriptorsPerThread = 3

    /// The process's soft open-file limit (`ulimit -n`, RLIMIT_NOFILE), or nil when it is unlimited
    /// or cannot be read.
    public static func openFileLimit() -> Int? {
        var limit = rlimit()
        #if canImport(Glibc)
        let resource = __rlimit_resource_t(RLIMIT_NOFILE.rawValue)
        let unlimited = rlim_t.max  // RLIM_INFINITY, all ones
        #else
        let resource = RLIMIT_NOFILE
        let unlimited = RLIM_INFINITY
        #endif
        guard getrlimit(resource, &limit) == 0, limit.rlim_cur != unlimited else { return nil }
        return Int(clamping: limit.rlim_cur)
    }

    /// The most threads an open-file limit allows while leaving at least half of it for
    /// connections (and everything else the process opens).
    public static func allowed(openFileLimit: Int) -> Int {
        max(0, openFileLimit / 2 / descriptorsPerThread)
    }

    /// The open-file limit `threads` threads need under the rule of `allowed(openFileLimit:)`.
    public static func openFilesNeeded(threads: Int) -> Int {
        threads * descriptorsPerThread * 2
    }

    /// Why `threads` cannot be used, or nil when it can: out of 1...`maximum`, or more than the
    /// open-file limit allows. The text names the limit, how many threads it allows and how to
    /// raise it; the caller prefixes the flag.
    public static func problem(threads: Int, openFileLimit: Int?) -> String? {
        guard (1...maximum).contains(threads) else {
            return "must be between 1 and \(maximum)"
        }
        guard let openFileLimit else { return nil }
        let allowed = allowed(openFileLimit: openFileLimit)
        guard threads > allowed else { return nil }
        let few = allowed == 0
            ? "allows no event-loop threads"
            : "allows at most \(allowed) thread\(allowed == 1 ? "" : "s")"
        return "each event-loop thread holds \(descriptorsPerThread) file descriptors, and the open-file limit "
            + "(ulimit -n) of \(openFileLimit) \(few) while keeping half of it for connections; "
            + "raise it (ulimit -n \(openFilesNeeded(threads: threads)) or more) or ask for fewer threads"
    }

    /// The default thread count (`preferred`, such as one per core) lowered to what the open-file
    /// limit allows, and at least 1.
    public static func defaultThreads(preferred: Int, openFileLimit: Int?) -> Int {
        guard let openFileLimit else { return max(1, min(preferred, maximum)) }
        return max(1, min(preferred, maximum, allowed(openFileLimit: openFileLimit)))
    }
}
