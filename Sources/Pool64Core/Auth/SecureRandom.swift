import CPool64Sys
import Glibc
import NIOConcurrencyHelpers

/// Cryptographically secure random bytes from `getrandom(2)`, drawn 4 KiB at a time: a login needs a nonce and a
/// cancel key (three calls), and a system call each was measurable under connection churn. Bytes handed out are
/// never handed out again. (`UInt8.random(in:)` was a system call per byte; swift-crypto's random keys draw from the
/// same system generator eight bytes per call.)
enum SecureRandom {
    private static let pool = NIOLockedValueBox(Pool())

    private struct Pool {
        var bytes = [UInt8](repeating: 0, count: 4096)
        /// Bytes before `used` are spent.
        var used = 4096
    }

    static func bytes(_ count: Int) -> [UInt8] {
        if count > 1024 { return fresh(count) }
        return take(count) { Array($0) }
    }

    /// Runs `body` on the next `count` unspent bytes of the pool (at most 1024), then spends them.
    private static func take<R>(_ count: Int, _ body: (UnsafeRawBufferPointer) -> R) -> R {
        pool.withLockedValue { p in
            if p.used + count > p.bytes.count {
                p.bytes = fresh(p.bytes.count)
                p.used = 0
            }
            let start = p.used
            p.used += count
            return p.bytes.withUnsafeMutableBytes { all in
                let mine = UnsafeMutableRawBufferPointer(rebasing: all[start..<(start + count)])
                let r = body(UnsafeRawBufferPointer(mine))
                // Spent bytes are overwritten so they do not linger in memory.
                mine.initializeMemory(as: UInt8.self, repeating: 0)
                return r
            }
        }
    }

    /// `count` bytes straight from getrandom(2).
    private static func fresh(_ count: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: count)
        var filled = 0
        out.withUnsafeMutableBytes { buf in
            while filled < count {
                let n = cpool64_getrandom(buf.baseAddress! + filled, UInt(count - filled))
                if n > 0 {
                    filled += n
                } else if n < 0 && errno != EINTR {
                    break
                }
            }
        }
        if filled < count {
            // getrandom cannot fail on Linux ≥ 3.17 once the pool is initialised; keep the system generator as a
            // fallback rather than ever returning zeros.
            var g = SystemRandomNumberGenerator()
            for i in filled..<count { out[i] = g.next() }
        }
        return out
    }

    static func int32() -> Int32 {
        take(4) { $0.loadUnaligned(as: Int32.self) }
    }
}
