/// Captured from PgBouncer 1.18.0 (Debian 1.18.0-1+deb12u1) over the v3 protocol: each SHOW's RowDescription
/// (column name, type OID: 25 text, 23 int4, 20 int8, 1700 numeric), and the first column of the views whose rows
/// are fixed. pool64 sends these as the prefix of its own columns (it only appends).
enum PgBouncer118 {
    static let columns: [String: [(String, UInt32)]] = [
        "POOLS": [
            ("database", 25), ("user", 25), ("cl_active", 23), ("cl_waiting", 23), ("cl_active_cancel_req", 23),
            ("cl_waiting_cancel_req", 23), ("sv_active", 23), ("sv_active_cancel", 23), ("sv_being_canceled", 23),
            ("sv_idle", 23), ("sv_used", 23), ("sv_tested", 23), ("sv_login", 23), ("maxwait", 23), ("maxwait_us", 23),
            ("pool_mode", 25),
        ],
        "STATS": [
            ("database", 25), ("total_xact_count", 1700), ("total_query_count", 1700), ("total_received", 1700),
            ("total_sent", 1700), ("total_xact_time", 1700), ("total_query_time", 1700), ("total_wait_time", 1700),
            ("avg_xact_count", 1700), ("avg_query_count", 1700), ("avg_recv", 1700), ("avg_sent", 1700),
            ("avg_xact_time", 1700), ("avg_query_time", 1700), ("avg_wait_time", 1700),
        ],
        "STATS_TOTALS": [
            ("database", 25), ("xact_count", 1700), ("query_count", 1700), ("bytes_received", 1700), ("bytes_sent",
            1700), ("xact_time", 1700), ("query_time", 1700), ("wait_time", 1700),
        ],
        "STATS_AVERAGES": [
            ("database", 25), ("xact_count", 1700), ("query_count", 1700), ("bytes_received", 1700), ("bytes_sent",
            1700), ("xact_time", 1700), ("query_time", 1700), ("wait_time", 1700),
        ],
        "TOTALS": [
            ("name", 25), ("value", 1700),
        ],
        "CLIENTS": [
            ("type", 25), ("user", 25), ("database", 25), ("state", 25), ("addr", 25), ("port", 23), ("local_addr", 25),
            ("local_port", 23), ("connect_time", 25), ("request_time", 25), ("wait", 23), ("wait_us", 23),
            ("close_needed", 23), ("ptr", 25), ("link", 25), ("remote_pid", 23), ("tls", 25), ("application_name", 25),
        ],
        "SERVERS": [
            ("type", 25), ("user", 25), ("database", 25), ("state", 25), ("addr", 25), ("port", 23), ("local_addr", 25),
            ("local_port", 23), ("connect_time", 25), ("request_time", 25), ("wait", 23), ("wait_us", 23),
            ("close_needed", 23), ("ptr", 25), ("link", 25), ("remote_pid", 23), ("tls", 25), ("application_name", 25),
        ],
        "DATABASES": [
            ("name", 25), ("host", 25), ("port", 23), ("database", 25), ("force_user", 25), ("pool_size", 23),
            ("min_pool_size", 23), ("reserve_pool", 23), ("pool_mode", 25), ("max_connections", 23),
            ("current_connections", 23), ("paused", 23), ("disabled", 23),
        ],
        "USERS": [
            ("name", 25), ("pool_mode", 25),
        ],
        "CONFIG": [
            ("key", 25), ("value", 25), ("default", 25), ("changeable", 25),
        ],
        "LISTS": [
            ("list", 25), ("items", 23),
        ],
        "DNS_HOSTS": [
            ("hostname", 25), ("ttl", 20), ("addrs", 25),
        ],
        "DNS_ZONES": [
            ("zonename", 25), ("serial", 20), ("count", 23),
        ],
        "MEM": [
            ("name", 25), ("size", 23), ("used", 23), ("free", 23), ("memtotal", 23),
        ],
        "VERSION": [
            ("version", 25),
        ],
    ]
    static let rowNames: [String: [String]] = [
        "TOTALS": [
            "total_xact_count", "total_query_count", "total_client_bytes", "total_server_bytes", "total_xact_time",
            "total_query_time", "total_wait_time", "avg_xact_count", "avg_query_count", "avg_client_bytes",
            "avg_server_bytes", "avg_xact_time", "avg_query_time", "avg_wait_time",
        ],
        "LISTS": [
            "databases", "users", "pools", "free_clients", "used_clients", "login_clients", "free_servers",
            "used_servers", "dns_names", "dns_zones", "dns_queries", "dns_pending",
        ],
        "MEM": [
            "user_cache", "db_cache", "pool_cache", "server_cache", "client_cache", "iobuf_cache",
        ],
    ]
}
