// ws-load: the load generator for `wsctl serve` benchmarks (scripts/bench-serve.sh).
//
// SwiftNIO (NIOPosix) carries the bytes; the frames are our own WebSocketCodec's: masked client
// frames with a fresh random key each, the server's frames parsed and every echo or delivery
// checked byte for byte. One event-loop thread, so that it can be pinned to one core.
//
//   ws-load echo --url ws://127.0.0.1:8080/ --connections 16 --window 8 --size 32 --duration 5
//   ws-load broadcast --url ws://127.0.0.1:8080/ --receivers 1000 --duration 5
//   ws-load idle --url ws://127.0.0.1:8080/ --connections 10000
//
// `ws-load --help` for all flags. Output: `key value` lines on stdout.

import Dispatch
import Foundation
import NIOCore
import NIOPosix

func main() -> Int32 {
    let options = Options.parse(CommandLine.arguments)
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    let loop = group.next()
    let finished = loop.makePromise(of: Run.Result.self)
    let runBox: NIOLoopBoundBox<Run>
    do {
        runBox = try loop.submit {
            let run = Run(options: options, loop: loop, finished: finished)
            run.start()
            return NIOLoopBoundBox(run, eventLoop: loop)
        }.wait()
    } catch {
        FileHandle.standardError.write(Data("ws-load: \(error)\n".utf8))
        return 1
    }

    signal(SIGINT, SIG_IGN)
    signal(SIGTERM, SIG_IGN)
    signal(SIGPIPE, SIG_IGN)
    let sources = [SIGINT, SIGTERM].map { sig in
        let s = DispatchSource.makeSignalSource(signal: sig, queue: .global())
        s.setEventHandler { loop.execute { runBox.value.stop() } }
        s.resume()
        return s
    }

    let result: Run.Result
    do {
        result = try finished.futureResult.wait()
    } catch {
        FileHandle.standardError.write(Data("ws-load: \(error)\n".utf8))
        return 1
    }
    for (key, value) in result.lines { print("\(key) \(value)") }
    fflush(nil)
    withExtendedLifetime(sources) {}
    // Idle mode may hold thousands of connections: let the kernel close them at exit rather than
    // shutting the event loop down connection by connection.
    return result.failed ? 1 : 0
}

exit(main())
