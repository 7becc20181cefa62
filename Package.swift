// swift-tools-version: 6.1
import PackageDescription

let strict: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

/// `wsctl sniff`'s own targets (not library products: a product with unsafe flags could not be
/// depended on by version). In release builds they skip the run-time exclusivity checks on class
/// properties and globals, which took about a tenth of sniff's time; debug builds, which the tests
/// run, keep every check, so an overlapping access still fails there. The few hot class properties
/// in the libraries are marked `@exclusivity(unchecked)` in the source instead.
let hot: [SwiftSetting] = strict + [
    .unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release)),
]

let package = Package(
    name: "wsctl",
    platforms: [.macOS(.v13)],
    products: [
        .library(name: "WebSocketCodec", targets: ["WebSocketCodec"]),
        .library(name: "WebSocketCompression", targets: ["WebSocketCompression"]),
        .library(name: "WebSocketInspect", targets: ["WebSocketInspect"]),
        .executable(name: "wsctl", targets: ["wsctl"]),
        .executable(name: "codec-bench", targets: ["codec-bench"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        // NIOPosix/NIOHTTP1 carry the server's bytes; NIOWebSocket is used only as the benchmark
        // baseline (codec-bench, bench-server), never by the library.
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
    ],
    targets: [
        // RFC 6455 frames, masking, validation, UTF-8, message assembly, handshake, envelope. No I/O, no NIO.
        .target(
            name: "WebSocketCodec",
            dependencies: [.product(name: "Crypto", package: "swift-crypto"), "CSIMDKernels"],
            swiftSettings: strict
        ),
        .systemLibrary(name: "CZlib", providers: [.apt(["zlib1g-dev"])]),
        // RFC 7692 permessage-deflate.
        .target(
            name: "WebSocketCompression",
            dependencies: ["WebSocketCodec", "CZlib"],
            swiftSettings: strict
        ),
        // Hex-dump reading and frame/message rendering shared by decode and sniff.
        .target(
            name: "WebSocketInspect",
            dependencies: ["WebSocketCodec", "WebSocketCompression", "CSIMDKernels"],
            swiftSettings: strict
        ),
        // Hex digits 16 bytes at a time with SSE2 (the payload hex of every JSON line), and UTF-8
        // checked 32 bytes at a time with AVX2 where the processor has it.
        .target(name: "CSIMDKernels"),
        .systemLibrary(name: "CPcap", providers: [.apt(["libpcap-dev"])]),
        // `wsctl sniff`: libpcap capture, link/IP/TCP decoding and per-flow TCP reassembly feeding the
        // codec's dissector.
        .target(
            name: "WebSocketSniffer",
            dependencies: ["WebSocketInspect", "WebSocketCodec", "WebSocketCompression", "CPcap", "CStdioCookie"],
            swiftSettings: hot
        ),
        // A stdio stream over Swift functions (glibc's fopencookie): standard input read through a
        // window that a damaged capture can be searched in, as a file is.
        .target(name: "CStdioCookie"),
        .systemLibrary(name: "CLua", pkgConfig: "lua5.4", providers: [.apt(["liblua5.4-dev"])]),
        // The C side of `serve --script`: memory cap, instruction budget, safe libraries, and the one
        // trampoline through which Lua calls the server (so Lua's longjmp never crosses Swift frames).
        .target(
            name: "CLuaSandbox",
            dependencies: ["CLua"],
            linkerSettings: [.linkedLibrary("lua5.4")]
        ),
        // `serve --exec`: starting the per-connection process (GNU pipe2, closefrom in posix_spawn).
        .target(name: "CExecSpawn"),
        // `wsctl serve`: SwiftNIO carries the bytes; frames, masking, UTF-8, deflate and the
        // handshake checks come from the codec.
        .target(
            name: "WebSocketServer",
            dependencies: [
                "WebSocketCodec", "WebSocketCompression", "CExecSpawn",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: strict
        ),
        // `serve --script`: the Lua 5.4 host behind WebSocketServer's ServerScript protocol.
        .target(
            name: "WebSocketScripting",
            dependencies: [
                "WebSocketServer", "WebSocketCodec", "CLua", "CLuaSandbox",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // The commands, as a library so tests can run them.
        .target(
            name: "WSCtl",
            dependencies: [
                "WebSocketCodec", "WebSocketCompression", "WebSocketInspect", "WebSocketServer", "WebSocketScripting", "WebSocketSniffer",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: hot
        ),
        .executableTarget(name: "wsctl", dependencies: ["WSCtl"], swiftSettings: strict),
        .executableTarget(
            name: "codec-bench",
            dependencies: [
                "WebSocketCodec",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
            ],
            swiftSettings: strict
        ),
        // `wsctl serve` benchmarks (scripts/bench-serve.sh): the NIOWebSocket echo server baseline,
        // and the load generator (NIOPosix sockets, our codec's frames).
        .executableTarget(
            name: "nio-echo-server",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOWebSocket", package: "swift-nio"),
            ],
            path: "Benchmarks/nio-echo-server",
            swiftSettings: strict
        ),
        .executableTarget(
            name: "ws-load",
            dependencies: [
                "WebSocketCodec",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Benchmarks/ws-load",
            swiftSettings: strict
        ),
        .testTarget(name: "WebSocketCodecTests", dependencies: ["WebSocketCodec"], swiftSettings: strict),
        .testTarget(name: "WebSocketCompressionTests", dependencies: ["WebSocketCompression"], swiftSettings: strict),
        .testTarget(name: "WebSocketInspectTests", dependencies: ["WebSocketInspect"], swiftSettings: strict),
        .testTarget(name: "WebSocketSnifferTests", dependencies: ["WebSocketSniffer"], swiftSettings: strict),
        .testTarget(
            name: "WebSocketServerTests",
            dependencies: ["WebSocketServer", .product(name: "NIOEmbedded", package: "swift-nio")],
            swiftSettings: strict
        ),
        .testTarget(name: "WebSocketScriptingTests", dependencies: ["WebSocketScripting"], swiftSettings: strict),
        .testTarget(name: "WSCtlTests", dependencies: ["WSCtl", "wsctl"], swiftSettings: strict),
    ]
)
