"""A client that abandons a transaction must never hand it (rows, locks) to anyone else."""

import time
import uuid

import psycopg
import pytest

from harness import WireClient, WireError, message


@pytest.mark.parametrize("how", ["terminate-socket-fin", "reset-socket-rst"])
def test_abandoned_transaction_is_rolled_back(pool64, pg, pool_mode, how):
    proxy = pool64(pool_mode, pool_size=1)
    table = f"abandon_{pool_mode}_{how.split('-')[0]}".replace("-", "_")
    marker = uuid.uuid4().hex
    with psycopg.connect(pg.app_dsn, autocommit=True) as direct:
        direct.execute(f"drop table if exists {table}")
        direct.execute(f"create table {table}(marker text)")

    a = WireClient(proxy.host, proxy.port)
    a.login()
    a.query("begin")
    a.query(f"insert into {table} values ('{marker}')")
    assert a.scalar(f"select count(*) from {table}") == "1"
    assert a.transaction_status == "T"
    if how.startswith("terminate"):
        a.close()  # FIN without a Terminate message
    else:
        a.abort_connection()  # RST

    # Client B (pool size 1, so it gets A's old server connection if it was reused).
    b = WireClient(proxy.host, proxy.port)
    b.login()
    assert b.scalar(f"select count(*) from {table} where marker = '{marker}'") == "0"
    assert b.scalar("select pg_current_xact_id_if_assigned() is null") == "t"
    assert b.transaction_status == "I"
    deadline = time.monotonic() + 5
    while True:
        try:
            b.query("begin")
            b.query(f"lock table {table} in access exclusive mode nowait")
            b.query("rollback")
            break
        except WireError as exc:  # lock still held: the old backend may still be rolling back
            assert exc.sqlstate == "55P03", exc.fields
            b.query("rollback")
            if time.monotonic() > deadline:
                raise AssertionError(f"A's lock still held after 5 s: {exc}")
            time.sleep(0.2)
    b.terminate()

    with psycopg.connect(pg.app_dsn, autocommit=True) as direct:
        assert direct.execute(f"select count(*) from {table}").fetchone()[0] == 0
        stuck = direct.execute("select count(*) from pg_stat_activity where datname = 'appdb' "
                               "and state like 'idle in transaction%'").fetchone()[0]
        assert stuck == 0
        direct.execute(f"drop table {table}")


def test_client_disconnect_mid_query_does_not_poison_pool(pool64, pool_mode):
    """A client that vanishes while its query runs: the next client gets a clean connection."""
    proxy = pool64(pool_mode, pool_size=1)
    a = WireClient(proxy.host, proxy.port)
    a.login()
    a.send(message(b"Q", b"select pg_sleep(2), 'a'\0"))
    time.sleep(0.3)
    a.abort_connection()
    b = WireClient(proxy.host, proxy.port, timeout=30)
    b.login()
    assert b.query("select 'b', 2 + 2") == [["b", "4"]]
    b.terminate()
