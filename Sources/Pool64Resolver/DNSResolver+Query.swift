/// The network half of `DNSResolver.lookup`: the walk over the search list's candidates,
/// nameserver rounds per candidate, TCP retry, and turning the two per-family outcomes into one
/// candidate outcome.
extension DNSResolver {
    /// Walks the candidates of `name` (normalized; `absolute` when it was given with a trailing
    /// dot) and caches the verdict under `key`.
    func search(_ name: String, absolute: Bool, key: String) -> Result<DNSAnswer, ResolverError> {
        let config = state.withLock { state in effectiveConfiguration(state.resolvConf) }
        guard !config.nameservers.isEmpty else {
            return finish(key, .failure(ResolverError(code: .noNameservers, name: name)), cacheable: false)
        }
        var walk = SearchWalk(name: name, candidates: config.searchList.candidates(for: absolute ? name + "." : name))
        while let candidate = walk.next() {
            if walk.tried.count > 1 { state.withLock { $0.counters.searchFallbacks += 1 } }
            walk.record(query(candidate, asked: name, config: config))
        }
        switch walk.verdict {
        case .answer(let answer, let cacheable):
            return finish(key, .success(answer), cacheable: cacheable)
        case .negative(let error, let ttl):
            return finish(key, .failure(error), cacheable: true, negativeTTL: max(ttl, options.minTTL))
        case .failure(let error):
            return finish(key, .failure(error), cacheable: false)
        }
    }

    /// Asks the nameservers for the AAAA and A records of one candidate `name`; `asked` is the
    /// name the caller gave, recorded in the answer.
    func query(_ name: String, asked: String, config: ResolvConf) -> CandidateOutcome {
        var servers = config.nameservers
        if config.rotate, servers.count > 1 {
            // resolv.conf(5) `rotate`: spread the load by starting each query one server on.
            let start = state.withLock { state in
                defer { state.rotation &+= 1 }
                return state.rotation % servers.count
            }
            servers = Array(servers[start...] + servers[..<start])
        }
        let types = [DNSRecordType.aaaa, DNSRecordType.a]
        var outcomes: [UInt16: DNSQueryOutcome] = [:]
        var problems: [String] = []
        var sawTimeout = false
        // resolv.conf(5): each attempt walks the nameservers in order, each with the full
        // per-attempt timeout; a family that got a definitive answer is not asked again.
        rounds: for _ in 0..<max(config.attempts, 1) {
            for server in servers {
                let pending = types.filter { outcomes[$0] == nil }
                if pending.isEmpty { break rounds }
                let deadline = POSIXSocket.monotonicNanoseconds() + UInt64(config.timeoutMilliseconds) * 1_000_000
                var results = DNSTransport.exchangeUDP(server: server, name: name, types: pending, deadline: deadline)
                var tcpRetries = 0
                for (index, type) in pending.enumerated() where results[index] == .reply(.truncated) {
                    tcpRetries += 1
                    results[index] = DNSTransport.exchangeTCP(
                        server: server, name: name, type: type, deadline: deadline)
                }
                var timeouts = 0
                var failures = 0
                for (type, result) in zip(pending, results) {
                    switch result {
                    case .reply(.serverFailure(let rcode)):
                        failures += 1
                        problems.append("\(server) rcode \(rcode)")
                    case .reply(.truncated):
                        failures += 1
                        problems.append("\(server) truncated")
                    case .reply(let outcome):
                        outcomes[type] = outcome
                    case .timeout:
                        timeouts += 1
                        problems.append("\(server) timed out")
                    case .failed(let detail):
                        failures += 1
                        problems.append(detail)
                    }
                }
                sawTimeout = sawTimeout || timeouts > 0
                state.withLock {
                    $0.counters.queries += pending.count + tcpRetries
                    $0.counters.tcpRetries += tcpRetries
                    $0.counters.timeouts += timeouts
                    $0.counters.failures += failures
                }
            }
        }
        return combine(name, asked: asked, aaaa: outcomes[DNSRecordType.aaaa], a: outcomes[DNSRecordType.a],
                       problems: problems, sawTimeout: sawTimeout)
    }

    private func combine(
        _ name: String, asked: String, aaaa: DNSQueryOutcome?, a: DNSQueryOutcome?, problems: [String],
        sawTimeout: Bool
    ) -> CandidateOutcome {
        let clamp = { (ttl: UInt32) in min(max(ttl, self.options.minTTL), self.options.maxTTL) }
        var ipv6: [IPv6Address] = []
        var ipv4: [IPv4Address] = []
        var ipv6TTL: UInt32?
        var ipv4TTL: UInt32?
        for outcome in [aaaa, a] {
            guard case .addresses(let addresses, let ttl)? = outcome else { continue }
            for address in addresses {
                switch address {
                case .v6(let address) where address.isIPv4Mapped:
                    ipv4.append(address.mappedIPv4!)
                    ipv4TTL = min(ipv4TTL ?? .max, clamp(ttl))
                case .v6(let address):
                    ipv6.append(address)
                    ipv6TTL = min(ipv6TTL ?? .max, clamp(ttl))
                case .v4(let address):
                    ipv4.append(address)
                    ipv4TTL = min(ipv4TTL ?? .max, clamp(ttl))
                }
            }
        }
        let bothDefinitive = aaaa != nil && a != nil
        if !ipv6.isEmpty || !ipv4.isEmpty {
            let answer = DNSAnswer(
                name: asked, ipv6: ipv6, ipv4: ipv4, ipv6TTL: ipv6TTL, ipv4TTL: ipv4TTL, source: .dns, fqdn: name)
            // One family answered and the other timed out: use it, but do not cache a half
            // answer, so the next dial asks again for the missing family.
            return .answer(answer, complete: bothDefinitive)
        }
        if bothDefinitive {
            var negativeTTL: UInt32 = options.negativeTTL
            var notFound = false
            for outcome in [aaaa, a] {
                switch outcome {
                case .nameNotFound(let ttl)?:
                    notFound = true
                    negativeTTL = min(negativeTTL, ttl ?? .max)
                case .noData(let ttl)?:
                    negativeTTL = min(negativeTTL, ttl ?? .max)
                case .addresses?, .serverFailure?, .truncated?, nil:
                    continue
                }
            }
            return notFound ? .nameNotFound(negativeTTL: negativeTTL) : .noData(negativeTTL: negativeTTL)
        }
        // Any silent server makes it a timeout; otherwise every server answered with an error.
        let detail = problems.suffix(3).joined(separator: "; ")
        return sawTimeout ? .timeout(detail: detail) : .serverFailure(detail: detail)
    }

    private func finish(
        _ key: String, _ result: Result<DNSAnswer, ResolverError>, cacheable: Bool, negativeTTL: UInt32 = 0
    ) -> Result<DNSAnswer, ResolverError> {
        let now = options.clock.now()
        state.withLock { state in
            switch result {
            case .success(let answer):
                if cacheable { state.cache.store(answer, key: key, now: now) }
            case .failure(let error):
                if error.code == .nameNotFound || error.code == .noData {
                    state.counters.negativeAnswers += 1
                } else {
                    state.counters.failedLookups += 1
                }
                if cacheable { state.cache.storeNegative(error, key: key, ttl: negativeTTL, now: now) }
            }
        }
        return result
    }
}
