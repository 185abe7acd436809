import Testing

@testable import Pool64Core
import Pool64Resolver

@Suite struct ConfigurationTests {
    let url = "postgresql://app:secret@127.0.0.1:5432/appdb"

    @Test func printedConfigurationHidesSecrets() {
        var c = Configuration()
        c.databaseURL = "postgresql://app:s3cret@db.example:5432/appdb?sslmode=disable"
        c.adminToken = "tok3n"
        for text in ["\(c)", String(reflecting: c), "\([c])"] {
            #expect(!text.contains("s3cret") && !text.contains("tok3n"), "\(text)")
            #expect(text.contains("app:***@db.example:5432/appdb") && text.contains("poolMode"))
        }
        #expect(Configuration.redactingPassword("host=db user=app password=s3cret dbname=x") == "host=db user=app password=*** dbname=x")
        #expect(Configuration.redactingPassword("host=db password='a b' port=5") == "host=db password=*** port=5")
        #expect(Configuration.redactingPassword("postgres://u@h/db?password=s3cret&sslmode=require") == "postgres://u@h/db?password=***&sslmode=require")
        #expect(Configuration.redactingPassword("postgres://u:p%40ss@h/db") == "postgres://u:***@h/db")
    }

    @Test func defaults() throws {
        let c = try Configuration(settings: ["database-url": url])
        #expect(c.listen == ["[::]:6432"])
        #expect(c.adminListen == ["[::]:9090"])
        #expect(c.poolMode == .transaction)
        #expect(c.poolSize == 20)
        #expect(c.maxClientConnections == 10_000)
        #expect(c.authType == .scramSHA256)
    }

    // --help prints Configuration.defaults; they must be what an empty configuration runs with.
    @Test func documentedDefaultsAreTheDefaults() throws {
        var settings = Configuration.defaults
        settings["database-url"] = url
        let parsed = try Configuration(settings: settings)
        var expected = Configuration()
        expected.databaseURL = url
        #expect(parsed == expected)
        let keys = Set(Configuration.keys.map(\.key))
        #expect(Set(Configuration.defaults.keys).isSubset(of: keys))
        #expect(Configuration.helpText("pool-size") == "server connections per (database, user) pool (default: 20)")
        #expect(Configuration.helpText("auth-file").hasSuffix("lines"))
    }

    @Test func unknownAndInvalidSettingsNameTheKey() {
        #expect(throws: ConfigurationError(key: "pool-sise", value: "3", reason: "unknown setting")) {
            try Configuration(settings: ["database-url": url, "pool-sise": "3"])
        }
        do {
            _ = try Configuration(settings: ["database-url": url, "pool-size": "zero"])
            Issue.record("expected error")
        } catch {
            #expect(error.key == "pool-size")
        }
        do {
            _ = try Configuration(settings: ["database-url": url, "pool-mode": "statement"])
            Issue.record("expected error")
        } catch {
            #expect(error.key == "pool-mode")
        }
        #expect(throws: ConfigurationError.self) { try Configuration(settings: [:]) }
    }

    @Test func durationsAcceptUnits() throws {
        let c = try Configuration(settings: ["database-url": url, "happy-eyeballs-delay": "250ms", "query-wait-timeout": "5s"])
        #expect(c.happyEyeballsDelay == 0.25)
        #expect(c.queryWaitTimeout == 5)
    }

    @Test func precedenceFileEnvFlags() throws {
        let file = try ConfigurationLoader.parseFile("# comment\npool_size = 5\npool-mode = 'session'\nproject=a\n")
        let env = ConfigurationLoader.fromEnvironment(["POOL64_POOL_SIZE": "7", "DATABASE_URL": url, "HOME": "/root"])
        let merged = ConfigurationLoader.merge(file: file, environment: env.settings, flags: ["project": "b"])
        let c = try Configuration(settings: merged)
        #expect(c.poolSize == 7)
        #expect(c.poolMode == .session)
        #expect(c.project == "b")
        #expect(c.databaseURL == url)
    }

    // Kubernetes service links: a Service named pool64-alpha injects POOL64_ALPHA_PORT=tcp://… and friends. They are
    // reported, not fatal; a bad value of a known setting still is.
    @Test func unknownEnvironmentVariablesAreIgnoredAndNamed() throws {
        let env = ConfigurationLoader.fromEnvironment([
            "DATABASE_URL": url, "POOL64_ALPHA_PORT": "tcp://10.96.0.12:6432",
            "POOL64_ALPHA_PORT_6432_TCP_ADDR": "10.96.0.12", "POOL64_ALPHA_SERVICE_HOST": "10.96.0.12",
            "POOL64_POOL_SIZE": "9", "POOL64_CONFIG": "/etc/pool64.conf", "PATH": "/usr/bin",
        ])
        #expect(env.ignored == ["POOL64_ALPHA_PORT", "POOL64_ALPHA_PORT_6432_TCP_ADDR", "POOL64_ALPHA_SERVICE_HOST"])
        #expect(env.settings == ["pool-size": "9", "database-url": url])
        let c = try Configuration(settings: ConfigurationLoader.merge(file: [:], environment: env.settings, flags: [:]))
        #expect(c.poolSize == 9)
        let bad = ConfigurationLoader.fromEnvironment(["DATABASE_URL": url, "POOL64_POOL_SIZE": "many"])
        let error = #expect(throws: ConfigurationError.self) { try Configuration(settings: bad.settings) }
        #expect(error?.key == "pool-size")
    }

    @Test func listenAddresses() throws {
        #expect(try ListenAddress(parsing: "[::]:6432") == ListenAddress(host: "::", port: 6432))
        #expect(try ListenAddress(parsing: "127.0.0.1:6432") == ListenAddress(host: "127.0.0.1", port: 6432))
        #expect(try ListenAddress(parsing: "[fd64:1::2]:6432").host == "fd64:1::2")
        #expect(try ListenAddress(parsing: "*:1").host == "::")
        #expect(throws: ListenAddress.ParseError.self) { try ListenAddress(parsing: "::1:6432") }
        #expect(throws: ListenAddress.ParseError.self) { try ListenAddress(parsing: "[::1]:99999") }
        #expect(ListenAddress.displayPeer(ip: "::ffff:10.1.2.3", port: 5) == "10.1.2.3:5")
        #expect(ListenAddress.displayPeer(ip: "::1", port: 5) == "[::1]:5")
        #expect(ListenAddress.displayPeer(ip: "::FFFF:10.1.2.3", port: 5) == "10.1.2.3:5")
        #expect(ListenAddress.displayPeer(ip: "::ffff:a:b", port: 5) == "[::ffff:a:b]:5")
        #expect(ListenAddress.displayPeer(ip: "192.0.2.1", port: 5) == "192.0.2.1:5")
    }

    @Test func badListenAddressesFailAtConfiguration() throws {
        let bad = #expect(throws: ConfigurationError.self) {
            try Configuration(settings: ["database-url": url, "listen": "[::]:6432, db.example:6432"])
        }
        #expect(bad?.key == "listen")
        #expect(bad?.value == "db.example:6432")
        let admin = #expect(throws: ConfigurationError.self) {
            try Configuration(settings: ["database-url": url, "admin-listen": "[::1]"])
        }
        #expect(admin?.key == "admin-listen")
        #expect(try Configuration(settings: ["database-url": url, "listen": " localhost:1 ,[::1]:2"]).listen == ["localhost:1", "[::1]:2"])
    }
}

@Suite struct ConnectionStringTests {
    @Test func urlWithEverything() throws {
        let c = try ConnectionString(
            parsing: "postgresql://us%40er:p%3Ass@[2001:db8::1]:6543,db.example:5433/my%20db?sslmode=verify-full&connect_timeout=3")
        #expect(c.user == "us@er")
        #expect(c.password == "p:ss")
        #expect(c.database == "my db")
        #expect(c["sslmode"] == "verify-full")
        #expect(c.endpoints == [.init(host: "2001:db8::1", port: 6543), .init(host: "db.example", port: 5433)])
    }

    @Test func keyValueForm() throws {
        let c = try ConnectionString(parsing: "host=10.0.0.1 port=5432 user=app password='it\\'s x' dbname=d")
        #expect(c["host"] == "10.0.0.1")
        #expect(c.user == "app")
        #expect(c.password == "it's x")
        #expect(c.database == "d")
        #expect(c.endpoints == [.init(host: "10.0.0.1", port: 5432)])
    }

    @Test func defaultsAndErrors() throws {
        let c = try ConnectionString(parsing: "postgres://")
        #expect(c.endpoints == [.init(host: "localhost", port: 5432)])
        #expect(throws: ConnectionStringError.self) { try ConnectionString(parsing: "host") }
        #expect(throws: ConnectionStringError.self) { try ConnectionString(parsing: "postgresql://h:notaport/db") }
        #expect(throws: ConnectionStringError.self) { try ConnectionString(parsing: "password='open") }
    }
}

@Suite struct OpenFileLimitTests {
    @Test func wantedCoversClientsServersAndSpare() {
        #expect(OpenFileLimit.wanted(maxClients: 10_000, serverConnections: 80) == 10_208)
    }

    @Test func neverLowersAndStopsAtTheHardLimit() throws {
        // Asking for less than the current soft limit changes nothing.
        let same = try #require(OpenFileLimit.raise(toward: 0))
        #expect(same.after == same.before)
        #expect(same.after <= same.hard)
        // Asking for more than the hard limit gets the hard limit (soft limits may rise freely up to it).
        let most = try #require(OpenFileLimit.raise(toward: Int(Int32.max)))
        #expect(most.after == max(most.before, min(most.hard, OpenFileLimit.ceiling)))
        #expect(most.before >= same.after)
    }
}
