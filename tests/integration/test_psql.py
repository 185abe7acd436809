"""psql through the proxy: simple and multi-statement queries, \\copy both ways, a 10 MB value,
errors with SQLSTATE, notices, multi-row results."""

import hashlib
import os
import random
import string

from harness import psql


def test_simple_query(proxy):
    out = psql(proxy.dsn(), sql="select 1 + 1, current_user, current_database()").stdout
    assert out.strip() == "2|app|appdb"


def test_ipv6_loopback_client(proxy):
    from harness import ipv6_loopback_available
    if not ipv6_loopback_available():
        import pytest
        pytest.skip("no IPv6 loopback on this machine")
    out = psql(proxy.dsn(host="::1"), sql="select 'v6 ok'").stdout
    assert out.strip() == "v6 ok"


def test_multi_statement(proxy, pool_mode):
    table = f"multi_{pool_mode}"
    out = psql(proxy.dsn(), sql=(
        f"drop table if exists {table}; create table {table}(id int); "
        f"insert into {table} select generate_series(1, 10); select count(*), sum(id) from {table}; "
        f"drop table {table}"
    )).stdout
    # psql 15 prints the result of every statement of a multi-statement -c string.
    assert out.splitlines()[-2:] == ["10|55", "DROP TABLE"], out


def test_multi_row_result(proxy):
    out = psql(proxy.dsn(), sql="select g, repeat('x', g) from generate_series(1, 1000) g").stdout
    lines = out.splitlines()
    assert len(lines) == 1000
    assert lines[0] == "1|x"
    assert lines[-1] == "1000|" + "x" * 1000


def test_copy_from_and_to_file(proxy, pool_mode, tmp_path):
    table = f"copy_{pool_mode}"
    rng = random.Random(42)
    rows = [f"{i}\t{''.join(rng.choices(string.ascii_letters + ' ', k=rng.randint(0, 40)))}"
            for i in range(1, 100_001)]
    src = tmp_path / "in.tsv"
    src.write_text("\n".join(rows) + "\n")
    expected_md5 = hashlib.md5(",".join(r.replace("\t", ":") for r in rows).encode()).hexdigest()

    psql(proxy.dsn(), sql=f"drop table if exists {table}; create table {table}(id int primary key, val text)")
    out = psql(proxy.dsn(), "-c", f"\\copy {table} from '{src}'").stdout
    assert "COPY 100000" in out
    stats = psql(proxy.dsn(), sql=(
        f"select count(*), md5(string_agg(id::text || ':' || val, ',' order by id)) from {table}"
    )).stdout.strip()
    assert stats == f"100000|{expected_md5}"

    dst = tmp_path / "out.tsv"
    out = psql(proxy.dsn(), "-c", f"\\copy (select id, val from {table} order by id) to '{dst}'").stdout
    assert "COPY 100000" in out
    assert hashlib.md5(dst.read_bytes()).hexdigest() == hashlib.md5(src.read_bytes()).hexdigest()
    psql(proxy.dsn(), sql=f"drop table {table}")


def test_ten_megabyte_value(proxy, pool_mode, tmp_path):
    table = f"big_{pool_mode}"
    value = "".join(random.Random(7).choices(string.ascii_letters + string.digits, k=10 * 1024 * 1024))
    script = tmp_path / "big.sql"
    script.write_text(f"drop table if exists {table};\ncreate table {table}(v text);\n"
                      f"insert into {table} values ('{value}');\n")
    psql(proxy.dsn(), "-f", str(script))
    out = psql(proxy.dsn(), sql=f"select length(v), md5(v) from {table}").stdout.strip()
    assert out == f"{len(value)}|{hashlib.md5(value.encode()).hexdigest()}"
    # And the whole value back through the proxy in one DataRow.
    back = psql(proxy.dsn(), sql=f"select v from {table}").stdout
    assert back.rstrip("\n") == value
    psql(proxy.dsn(), sql=f"drop table {table}")


def test_error_sqlstate_and_session_continues(proxy):
    proc = psql(proxy.dsn(), "-v", "ON_ERROR_STOP=0", "-v", "VERBOSITY=verbose", check=False, input=(
        "\\set VERBOSITY verbose\n"
        "select 1/0;\n"
        "\\echo sqlstate=:LAST_ERROR_SQLSTATE\n"
        "select 'still alive';\n"
        "select * from no_such_table_xyz;\n"
        "\\echo sqlstate=:LAST_ERROR_SQLSTATE\n"
        "begin;\nselect 1/0;\nselect 1;\nrollback;\n"
        "select 'after rollback';\n"
    ))
    assert "22012" in proc.stderr, proc.stderr
    assert "division by zero" in proc.stderr
    assert "42P01" in proc.stderr
    assert "25P02" in proc.stderr  # in failed transaction block
    lines = proc.stdout.splitlines()
    assert "sqlstate=22012" in lines
    assert "still alive" in lines
    assert "sqlstate=42P01" in lines
    assert "after rollback" in lines


def test_notices_are_visible(proxy):
    proc = psql(proxy.dsn(), sql="do $$ begin raise notice 'hello from %', 'plpgsql'; "
                                 "raise warning 'careful'; end $$")
    assert "NOTICE:  hello from plpgsql" in proc.stderr
    assert "WARNING:  careful" in proc.stderr


def test_application_name_reaches_server(proxy):
    out = psql(proxy.dsn(application_name="p64-test-app"),
               sql="show application_name").stdout.strip()
    assert out == "p64-test-app"


def test_client_encoding_parameter(proxy):
    env_dsn = proxy.dsn(client_encoding="LATIN1")
    out = psql(env_dsn, sql="show client_encoding").stdout.strip()
    assert out == "LATIN1"
    # Another client must get the default back even on the same server connection.
    assert psql(proxy.dsn(), sql="show client_encoding").stdout.strip() == "UTF8"


def test_many_sequential_connections(proxy):
    """Connection churn: 30 short psql sessions, each sees its own backend's answer."""
    for i in range(30):
        assert psql(proxy.dsn(), sql=f"select {i} * 3").stdout.strip() == str(i * 3)
    assert os.path.exists(proxy.log_path)
