import Glibc
import Logging
import NIOCore
import NIOPosix

/// Binds listening sockets dual-stack on purpose: `[::]` with `IPV6_V6ONLY=0` set explicitly (never relying on
/// `net.ipv6.bindv6only`), falling back to `0.0.0.0` with a warning when the kernel has no IPv6 (DESIGN decision 6).
public enum Listener {
    /// Binds every address; a port in use fails with an error naming the address.
    public static func bind(
        _ addresses: [ListenAddress], group: EventLoopGroup, logger: Logger,
        childInitializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>
    ) async throws -> [Channel] {
        var channels: [Channel] = []
        do {
            for a in addresses {
                channels.append(try await bindOne(a, group: group, logger: logger, childInitializer: childInitializer))
            }
        } catch {
            for c in channels { try? await c.close() }
            throw error
        }
        return channels
    }

    static func bindOne(
        _ a: ListenAddress, group: EventLoopGroup, logger: Logger,
        childInitializer: @escaping @Sendable (Channel) -> EventLoopFuture<Void>
    ) async throws -> Channel {
        func makeBootstrap() -> ServerBootstrap {
            ServerBootstrap(group: group)
                .serverChannelOption(.backlog, value: 1024)
                .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                .childChannelOption(.socketOption(.so_keepalive), value: 1)
                .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
                .childChannelInitializer(childInitializer)
        }
        let bootstrap = makeBootstrap()
        do {
            if a.isIPv6 {
                let v6only = ChannelOptions.Types.SocketOption(level: .ipv6, name: .ipv6_v6only)
                return try await bootstrap.serverChannelOption(v6only, value: a.isWildcardIPv6 ? 0 : 1)
                    .bind(host: a.host, port: a.port).get()
            }
            return try await bootstrap.bind(host: a.host, port: a.port).get()
        } catch let e as IOError where a.isWildcardIPv6 && (e.errnoCode == EAFNOSUPPORT || e.errnoCode == EADDRNOTAVAIL) {
            logger.warning("no IPv6 on this host; listening on 0.0.0.0 instead", metadata: ["address": "\(a)"])
            return try await makeBootstrap().bind(host: "0.0.0.0", port: a.port).get()
        } catch {
            throw ListenError(address: a.description, underlying: "\(error)")
        }
    }
}

/// A listener that could not be opened.
public struct ListenError: Error, CustomStringConvertible {
    public var address: String
    public var underlying: String
    public var description: String { "cannot listen on \(address): \(underlying)" }
}
