import Pool64Stats

/// Log-linear latency histogram in microseconds (16 sub-buckets per power of two, ≤ 6% error), kept where the
/// events happen so recording is an array increment and percentiles are computed only when someone asks.
struct LatencyHistogram {
    private var buckets = [UInt64](repeating: 0, count: 64 * 16)
    private(set) var count: UInt64 = 0
    private(set) var sumMicros: UInt64 = 0

    private static func index(_ v: UInt64) -> Int {
        if v < 16 { return Int(v) }
        let exp = 63 - v.leadingZeroBitCount  // ≥ 4
        let sub = Int((v >> UInt64(exp - 4)) & 15)
        return (exp - 3) * 16 + sub
    }

    private static func lowerBound(_ i: Int) -> Double {
        if i < 16 { return Double(i) }
        let exp = i / 16 + 3
        let sub = i % 16
        return Double((UInt64(16 + sub)) << UInt64(exp - 4))
    }

    mutating func record(micros: UInt64) {
        buckets[Self.index(micros)] &+= 1
        count &+= 1
        sumMicros &+= micros
    }

    func percentile(_ p: Double) -> Double {
        guard count > 0 else { return 0 }
        let target = UInt64((Double(count) * p).rounded(.up))
        var seen: UInt64 = 0
        for (i, c) in buckets.enumerated() where c > 0 {
            seen += c
            if seen >= target { return Self.lowerBound(i) }
        }
        return 0
    }

    /// Events at or below each bound (a bucket counts as below when its lower edge is).
    func cumulative(bounds: [UInt64]) -> [UInt64] {
        var out = [UInt64](repeating: 0, count: bounds.count)
        for (i, c) in buckets.enumerated() where c > 0 {
            let low = Self.lowerBound(i)
            for (j, b) in bounds.enumerated() where low <= Double(b) { out[j] &+= c }
        }
        return out
    }

    var snapshot: LatencyPercentiles {
        LatencyPercentiles(
            count: count, p50: percentile(0.5), p95: percentile(0.95), p99: percentile(0.99), sumMicros: sumMicros,
            cumulativeBuckets: cumulative(bounds: LatencyPercentiles.bucketBoundsMicros))
    }
}
