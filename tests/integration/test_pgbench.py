"""pgbench through the proxy in simple, extended and prepared protocol modes."""

import os
import re
import subprocess

import pytest

from harness import pgbouncer_xfail
from harness import APP_DB, APP_PASSWORD, APP_USER, pg_tool


def run_pgbench(proxy, *args: str, timeout: float = 120) -> tuple[subprocess.CompletedProcess, dict]:
    cmd = [pg_tool("pgbench"), "-n", "-h", proxy.host, "-p", str(proxy.port), "-U", APP_USER, *args, APP_DB]
    proc = subprocess.run(cmd, env={**os.environ, "PGPASSWORD": APP_PASSWORD}, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL)
    print("$", " ".join(cmd))
    print(proc.stdout[-3000:])
    print(proc.stderr[-3000:])
    result = {}
    m = re.search(r"number of transactions actually processed: (\d+)(?:/(\d+))?", proc.stdout)
    if m:
        result["processed"] = int(m.group(1))
        result["expected"] = int(m.group(2)) if m.group(2) else None
    m = re.search(r"number of failed transactions: (\d+)", proc.stdout)
    if m:
        result["failed"] = int(m.group(1))
    m = re.search(r"tps = ([\d.]+)", proc.stdout)
    if m:
        result["tps"] = float(m.group(1))
    return proc, result


def assert_clean_run(proc, result, expected_total=None):
    assert proc.returncode == 0, f"pgbench exited {proc.returncode}:\n{proc.stderr[-2000:]}"
    assert "processed" in result, proc.stdout
    assert result["processed"] > 0
    if expected_total is not None:
        assert result["processed"] == expected_total
    if result.get("expected") is not None:
        assert result["processed"] == result["expected"]
    assert result.get("failed", 0) == 0
    assert "error" not in proc.stderr.lower(), proc.stderr[-2000:]


@pytest.mark.parametrize("protocol", ["simple", "extended", "prepared"])
def test_pgbench_protocols(proxy, pool_mode, protocol, request):
    if protocol == "prepared":
        pgbouncer_xfail(request, "protocol-level prepared statements are not supported in transaction mode",
                        strict=False)
    proc, result = run_pgbench(proxy, "-M", protocol, "-c", "8", "-j", "2", "-T", "4")
    assert_clean_run(proc, result)


def test_pgbench_fixed_transaction_count(proxy, pool_mode):
    proc, result = run_pgbench(proxy, "-M", "extended", "-S", "-c", "4", "-j", "2", "-t", "200")
    assert_clean_run(proc, result, expected_total=800)


def test_pgbench_prepared_two_scripts_small_pool(pool64, request, tmp_path):
    """Eight pgbench clients with two prepared scripts over a pool of 2: every Bind is likely to
    land on a server connection where the client never prepared its statement."""
    pgbouncer_xfail(request, "protocol-level prepared statements are not supported in transaction mode")
    proxy = pool64("transaction", pool_size=2, query_wait_timeout=30)
    a = tmp_path / "a.sql"
    a.write_text("\\set aid random(1, 100000)\n"
                 "SELECT abalance FROM pgbench_accounts WHERE aid = :aid;\n"
                 "SELECT :aid::int * 2 AS doubled;\n")
    b = tmp_path / "b.sql"
    b.write_text("\\set bid random(1, 1)\n\\set delta random(-100, 100)\n"
                 "BEGIN;\n"
                 "UPDATE pgbench_branches SET bbalance = bbalance + :delta WHERE bid = :bid;\n"
                 "SELECT bbalance FROM pgbench_branches WHERE bid = :bid;\n"
                 "END;\n")
    proc, result = run_pgbench(proxy, "-M", "prepared", "-c", "8", "-j", "2", "-t", "150",
                               "-f", f"{a}@1", "-f", f"{b}@1")
    assert_clean_run(proc, result, expected_total=1200)
