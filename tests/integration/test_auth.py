"""Client authentication: wrong password and unknown user fail cleanly with a SQLSTATE."""

import pytest

from harness import WireClient, WireError, pgbouncer_xfail, psql

BOTH = ("transaction", "session")
SASL_REASON = "reports a failed SCRAM exchange as 08P01 'SASL authentication failed'"


def test_wrong_password_psql(proxy, request):
    pgbouncer_xfail(request, SASL_REASON, modes=BOTH)
    proc = psql(proxy.dsn(password="not-the-password"), sql="select 1", check=False)
    assert proc.returncode == 2, (proc.returncode, proc.stderr)
    assert "password authentication failed" in proc.stderr, proc.stderr


def test_wrong_password_sqlstate(proxy, request):
    pgbouncer_xfail(request, SASL_REASON, modes=BOTH)
    client = WireClient(proxy.host, proxy.port)
    with pytest.raises(WireError) as excinfo:
        client.login(password="not-the-password")
    client.close()
    assert excinfo.value.sqlstate == "28P01"
    assert excinfo.value.fields.get("S") in ("FATAL", "ERROR")


def test_unknown_user(proxy, request):
    pgbouncer_xfail(request, SASL_REASON, modes=BOTH)
    client = WireClient(proxy.host, proxy.port)
    with pytest.raises(WireError) as excinfo:
        client.login(user="nobody_here", password="whatever")
    client.close()
    assert excinfo.value.sqlstate in ("28P01", "28000"), excinfo.value.fields


def test_proxy_still_serves_after_failed_logins(proxy):
    for _ in range(5):
        client = WireClient(proxy.host, proxy.port)
        with pytest.raises(WireError):
            client.login(password="wrong")
        client.close()
    ok = WireClient(proxy.host, proxy.port)
    ok.login()
    assert ok.scalar("select current_user") == "app"
    ok.terminate()
