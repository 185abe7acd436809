import CPool64Sys
import Glibc

/// Cryptographically secure random bytes from one `getrandom(2)` call. `UInt8.random(in:)` asks the system
/// generator per byte, which was a system call per nonce byte on every login (connection churn, issue 6).
enum SecureRandom {
    // Not swift-crypto's random keys: they draw from the same system generator eight bytes per call.
    static func bytes(_ count: Int) -> [UInt8] {
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
        let b = bytes(4)
        return Int32(bitPattern: UInt32(b[0]) | UInt32(b[1]) << 8 | UInt32(b[2]) << 16 | UInt32(b[3]) << 24)
    }
}
