// swift-tools-version:6.0
// pool64: a PostgreSQL connection-pool proxy. Targets are layered so that arrows point toward pure code:
//   pool64 (executable) → Pool64Admin, Pool64Core → Pool64Wire, Pool64Resolver, Pool64Stats, CLibPQ
import PackageDescription

// Release builds of pool64's own modules drop the dynamic exclusivity checks: they were a third of the relay's
// instructions per transaction under callgrind (docs/PERFORMANCE.md). Set here, not only in scripts/build-release, so a
// plain `swift build -c release` gets the same relay. Debug builds and the tests keep the checks.
let releaseSettings: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked"], .when(configuration: .release))]

let package = Package(
    name: "pool64",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "pool64", targets: ["pool64"])
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl.git", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-metrics.git", from: "2.13.0"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-crypto.git", "3.12.3"..<"5.0.0"),
    ],
    targets: [
        // libpq, found through pkg-config; used only by the server-connection dialer.
        .systemLibrary(name: "CLibPQ", pkgConfig: "libpq", providers: [.apt(["libpq-dev"])]),
        // Pure value types shared by the core (which fills them) and the admin server (which renders them).
        .target(name: "Pool64Stats", swiftSettings: releaseSettings),
        // PostgreSQL v3 frontend decoding / backend encoding. No I/O beyond NIOCore's ByteBuffer.
        .target(name: "Pool64Wire", dependencies: [.product(name: "NIOCore", package: "swift-nio")], swiftSettings: releaseSettings),
        // IPv6-first resolution: DNS stub, NAT64 synthesis (RFC 6052/7050), address policy, Happy Eyeballs; IP
        // address types and the listen-address syntax both listeners share.
        .target(name: "Pool64Resolver", swiftSettings: releaseSettings),
        // Listener, client sessions, pools, libpq dialer and the relay.
        .target(
            name: "Pool64Core",
            dependencies: [
                "CLibPQ", "CPool64Sys", "Pool64Wire", "Pool64Resolver", "Pool64Stats", "Pool64ServerTLS",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Crypto", package: "swift-crypto"),
            ],
            swiftSettings: releaseSettings
        ),
        // HTTP admin listener: /healthz /readyz /stats /metrics.
        .target(
            name: "Pool64Admin",
            dependencies: [
                "Pool64Stats", "Pool64Resolver",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: releaseSettings
        ),
        // Zero-downtime restart on one host: a new process takes the listening sockets over a Unix socket, and
        // CancelRequests for the old process's clients are forwarded to it.
        .target(
            name: "Pool64Handover",
            dependencies: ["CPool64Sys", "Pool64Wire", .product(name: "Logging", package: "swift-log")],
            swiftSettings: releaseSettings
        ),
        // systemd's notify protocol (READY/RELOADING/STOPPING/STATUS/WATCHDOG over NOTIFY_SOCKET) and the heartbeat
        // that pings the watchdog only when the relay loop answers. No libsystemd: the protocol is one datagram.
        .target(
            name: "Pool64Systemd",
            dependencies: [
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: releaseSettings
        ),
        // The PgBouncer-compatible admin console (database pgbouncer): command parser, SHOW views, engine. Pure:
        // the executable connects it to Pool64Core.
        .target(
            name: "Pool64Console",
            dependencies: [
                "Pool64Stats", "Pool64Wire", .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: releaseSettings
        ),
        .executableTarget(
            name: "pool64",
            dependencies: [
                "Pool64Core", "Pool64Admin", "Pool64Resolver", "Pool64Handover", "Pool64Console", "Pool64Systemd",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Metrics", package: "swift-metrics"),
                .product(name: "Prometheus", package: "swift-prometheus"),
            ],
            swiftSettings: releaseSettings
        ),
        .testTarget(name: "Pool64WireTests", dependencies: ["Pool64Wire"]),
        .testTarget(name: "Pool64CoreTests", dependencies: ["Pool64Core", "Pool64Resolver", "CPool64Sys"]),
        .testTarget(name: "Pool64ResolverTests", dependencies: ["Pool64Resolver"]),
        .testTarget(name: "Pool64ConsoleTests", dependencies: ["Pool64Console", "Pool64Stats"]),
        .testTarget(name: "Pool64HandoverTests", dependencies: ["Pool64Handover", "Pool64Wire", "CPool64Sys"]),
        .testTarget(name: "Pool64AdminTests", dependencies: ["Pool64Admin", "Pool64Resolver"]),
        .testTarget(
            name: "Pool64SystemdTests",
            dependencies: [
                "Pool64Systemd", .product(name: "NIOConcurrencyHelpers", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ]),
        // epoll, accept4 and listening sockets for the relay loop (Pool64Core/IO), without packed structs in Swift.
        .target(name: "CPool64Sys"),
        .target(name: "CPool64TLS", dependencies: ["CLibPQ"], linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto")]),
        .target(name: "Pool64ServerTLS", dependencies: ["CPool64TLS", "CLibPQ", .product(name: "NIOCore", package: "swift-nio")], swiftSettings: releaseSettings),
        .testTarget(name: "Pool64ServerTLSTests", dependencies: ["Pool64ServerTLS", "CLibPQ", .product(name: "NIOPosix", package: "swift-nio")]),
    ]
)
