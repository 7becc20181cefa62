import Foundation

/// Command line of ws-load. Every workload is bounded twice: by time (`--duration`) and by count
/// (`--count` messages sent), and connecting is bounded by `--connect-timeout`.
struct Options: Sendable {
    enum Mode: String, Sendable { case echo, broadcast, idle }

    var mode: Mode = .echo
    var host = "127.0.0.1"
    var port = 8080
    var path = "/"
    /// echo and idle: connections to open.
    var connections = 16
    /// broadcast: receiving connections (plus one sender).
    var receivers = 1000
    /// Messages in flight per connection (echo) or from the sender (broadcast).
    var window = 8
    /// Payload bytes per message (at least 16: a sequence number leads each payload).
    var size = 32
    var text = false
    /// echo, broadcast: seconds of sending; idle: longest time the connections are held.
    var duration: Double = 5
    /// echo, broadcast: most messages sent.
    var count = 10_000_000
    /// Opening handshakes in progress at once.
    var concurrency = 128
    var connectTimeout: Double = 60
    /// Seconds to wait for outstanding echoes or deliveries after sending stops.
    var drainTimeout: Double = 10
    /// A process whose CPU time (utime + stime, /proc/PID/stat) is sampled at the start and end
    /// of the measured phase.
    var serverPID: Int32?

    static let usageText = """
        usage: ws-load echo      --url ws://HOST:PORT/PATH [--connections N] [--window W] [--size S] [--text]
                                 [--duration SEC] [--count N] [--server-pid PID]
               ws-load broadcast --url URL [--receivers R] [--window W] [--size S] [--duration SEC] [--count N]
                                 [--server-pid PID]
               ws-load idle      --url URL [--connections N] [--duration SEC]
        common: [--concurrency N (handshakes at once)] [--connect-timeout SEC] [--drain-timeout SEC]

        echo       N connections, each keeping W messages of S bytes in flight; every echo is checked
                   (sequence number and every byte).
        broadcast  R receivers and 1 sender (run the server with --no-echo-self); the sender keeps W
                   messages in flight, a message counting as done once every receiver has it; every
                   delivery is checked.
        idle       opens N connections, prints `ready` and holds them until SIGTERM/SIGINT or --duration.

        Output: `key value` lines on stdout. Exit 1 when a connection failed or any echo/delivery was wrong.
        """

    static func parse(_ arguments: [String]) -> Options {
        var o = Options()
        guard arguments.count >= 2 else { usage("missing mode") }
        switch arguments[1] {
        case "-h", "--help": print(usageText); exit(0)
        default:
            guard let m = Mode(rawValue: arguments[1]) else { usage("unknown mode \(arguments[1])") }
            o.mode = m
        }
        var durationGiven = false
        var urlGiven = false
        var i = 2
        func value() -> String {
            i += 1
            guard i < arguments.count else { usage("\(arguments[i - 1]) needs a value") }
            return arguments[i]
        }
        func int(_ min: Int) -> Int {
            let name = arguments[i]
            guard let v = Int(value()), v >= min else { usage("\(name) takes a whole number ≥ \(min)") }
            return v
        }
        func seconds() -> Double {
            let name = arguments[i]
            guard let v = Double(value()), v > 0 else { usage("\(name) takes seconds > 0") }
            return v
        }
        while i < arguments.count {
            switch arguments[i] {
            case "--url":
                guard o.setURL(value()) else { usage("--url takes ws://HOST:PORT/PATH") }
                urlGiven = true
            case "--connections": o.connections = int(1)
            case "--receivers": o.receivers = int(1)
            case "--window": o.window = int(1)
            case "--size": o.size = int(16)
            case "--text": o.text = true
            case "--duration": o.duration = seconds(); durationGiven = true
            case "--count": o.count = int(1)
            case "--concurrency": o.concurrency = int(1)
            case "--connect-timeout": o.connectTimeout = seconds()
            case "--drain-timeout": o.drainTimeout = seconds()
            case "--server-pid":
                guard let p = Int32(value()), p > 0 else { usage("--server-pid takes a process id") }
                o.serverPID = p
            case "-h", "--help": print(usageText); exit(0)
            default: usage("unknown argument \(arguments[i])")
            }
            i += 1
        }
        guard urlGiven else { usage("--url is required") }
        if o.mode == .idle && !durationGiven { o.duration = 600 }
        return o
    }

    /// Accepts ws://HOST:PORT/PATH (wss is not spoken: the benchmark measures the WebSocket layer).
    mutating func setURL(_ url: String) -> Bool {
        guard url.hasPrefix("ws://") else { return false }
        let rest = url.dropFirst(5)
        let slash = rest.firstIndex(of: "/") ?? rest.endIndex
        let authority = rest[..<slash]
        path = slash == rest.endIndex ? "/" : String(rest[slash...])
        let hostPart: Substring
        let portPart: Substring?
        if authority.hasPrefix("["), let close = authority.firstIndex(of: "]") {
            hostPart = authority[authority.index(after: authority.startIndex)..<close]
            let after = authority[authority.index(after: close)...]
            portPart = after.hasPrefix(":") ? after.dropFirst() : nil
        } else if let colon = authority.lastIndex(of: ":") {
            hostPart = authority[..<colon]
            portPart = authority[authority.index(after: colon)...]
        } else {
            hostPart = authority
            portPart = nil
        }
        guard !hostPart.isEmpty else { return false }
        host = String(hostPart)
        if let portPart {
            guard let p = Int(portPart), (1...65535).contains(p) else { return false }
            port = p
        } else {
            port = 80
        }
        return true
    }

    var hostHeader: String {
        let h = host.contains(":") ? "[\(host)]" : host
        return "\(h):\(port)"
    }

    static func usage(_ problem: String) -> Never {
        FileHandle.standardError.write(Data("ws-load: \(problem)\n\(usageText)\n".utf8))
        exit(2)
    }
}
