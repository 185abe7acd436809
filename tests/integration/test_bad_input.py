"""Bad input on the client port: each case ends in an ErrorResponse or a closed socket within a
bounded time, and the proxy keeps serving everyone else. Raw sockets, exact bytes."""

import os
import socket
import struct
import time

import pytest

from harness import (GSSENC_REQUEST_CODE, PROTOCOL_3_0, SSL_REQUEST_CODE, WireClient, error_sqlstates,
                     message, pgbouncer_xfail, psql, read_until_closed_or_message, startup_message)


def raw(proxy) -> socket.socket:
    return socket.create_connection((proxy.host, proxy.port), timeout=5)


def assert_still_serving(proxy):
    assert psql(proxy.dsn(), sql="select 'alive'").stdout.strip() == "alive"


def assert_closed_or_error(data: bytes, state: str, allowed=("08P01",)):
    """Either the proxy closed the socket (possibly after an ErrorResponse), or it sent an
    ErrorResponse with one of the allowed SQLSTATEs."""
    states = error_sqlstates(data)
    if data:
        assert data[:1] == b"E", f"expected ErrorResponse or nothing, got {data[:40]!r}"
        assert states and states[0] in allowed, f"SQLSTATEs {states}, wanted one of {allowed}"
    else:
        assert state == "closed", "no answer and the socket is still open"


@pytest.mark.parametrize("payload", [
    b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n",
    bytes(range(256)) * 4,
    b"\x00\x00\x00\x08\xde\xad\xbe\xef",  # right length, unknown request code
    b"\x00\x00\x00\x02",  # length shorter than the length field itself
], ids=["http", "binary-noise", "unknown-code", "short-length"])
def test_garbage_startup(proxy, payload, request):
    if payload == b"\x00\x00\x00\x02":
        pgbouncer_xfail(request, "waits forever on a startup length shorter than 4", modes=("transaction", "session"))
    s = raw(proxy)
    s.sendall(payload)
    state, data = read_until_closed_or_message(s, 5)
    s.close()
    assert state == "closed" or data[:1] == b"E", f"still open after 5 s, got {data[:60]!r}"
    assert_closed_or_error(data, state, allowed=("08P01", "0A000"))
    assert_still_serving(proxy)


def test_oversized_startup_length(proxy):
    s = raw(proxy)
    s.sendall(struct.pack("!ii", 0x7FFFFFFF, PROTOCOL_3_0) + b"user\0app\0")
    state, data = read_until_closed_or_message(s, 5)
    s.close()
    assert state == "closed" or data[:1] == b"E", "oversized startup packet was not rejected within 5 s"
    assert_closed_or_error(data, state)
    assert_still_serving(proxy)


def test_oversized_message_after_login(proxy):
    """A logged-in client announcing a 1.9 GB query message is stopped, not buffered."""
    c = WireClient(proxy.host, proxy.port)
    c.login()
    c.send(b"Q" + struct.pack("!i", 0x7FFFFFF0) + b"select 1")
    state, data = read_until_closed_or_message(c.sock, 10)
    c.close()
    assert state == "closed" or b"E" in data[:1], f"no reaction to an oversized message: {data[:60]!r}"
    if data:
        assert error_sqlstates(data)[:1] in (["08P01"], ["54000"]), error_sqlstates(data)
    assert_still_serving(proxy)


def test_truncated_startup_then_close(proxy):
    s = raw(proxy)
    msg = startup_message({"user": "app", "database": "appdb"})
    s.sendall(msg[: len(msg) // 2])
    s.close()
    assert_still_serving(proxy)


@pytest.mark.parametrize("version", [(2, 0), (4, 0)], ids=["v2.0", "v4.0"])
def test_unknown_protocol_version(proxy, version):
    s = raw(proxy)
    s.sendall(startup_message({"user": "app", "database": "appdb"}, version=(version[0] << 16) | version[1]))
    state, data = read_until_closed_or_message(s, 5)
    s.close()
    assert data[:1] == b"E", f"expected an ErrorResponse, got {data[:60]!r} ({state})"
    states = error_sqlstates(data)
    if version[0] == 2 and not states:
        # A v2-style error (no length word) is acceptable for a v2 client.
        assert b"protocol" in data.lower()
    else:
        assert states and states[0] in ("0A000", "08P01"), states
    assert_still_serving(proxy)


def test_silent_client_is_closed(pool64, pool_mode):
    proxy = pool64(pool_mode, client_login_timeout=2)
    s = raw(proxy)
    started = time.monotonic()
    state, data = read_until_closed_or_message(s, 15)
    s.close()
    assert state == "closed", f"silent client still connected after 15 s (login timeout 2 s): {data[:60]!r}"
    assert time.monotonic() - started < 12
    # Also a client that stops in the middle of its startup packet.
    s = raw(proxy)
    msg = startup_message({"user": "app", "database": "appdb"})
    s.sendall(msg[:10])
    state, _ = read_until_closed_or_message(s, 15)
    s.close()
    assert state == "closed"
    assert_still_serving(proxy)


def test_ssl_request_answered_n(proxy):
    s = raw(proxy)
    s.sendall(struct.pack("!ii", 8, SSL_REQUEST_CODE))
    assert s.recv(1) == b"N"
    # The connection continues in plain text.
    s.sendall(startup_message({"user": "app", "database": "appdb"}))
    tag = s.recv(1)
    s.close()
    assert tag == b"R", f"expected an authentication request after SSL refusal, got {tag!r}"
    assert_still_serving(proxy)


def test_gssenc_request_answered_n(proxy):
    s = raw(proxy)
    s.sendall(struct.pack("!ii", 8, GSSENC_REQUEST_CODE))
    state, data = read_until_closed_or_message(s, 5, single_byte=True)
    if data[:1] == b"N":
        s.sendall(startup_message({"user": "app", "database": "appdb"}))
        state2, data2 = read_until_closed_or_message(s, 5)
        assert data2[:1] == b"R", f"expected an authentication request after GSSENC refusal, got {data2[:40]!r}"
    s.close()
    assert data[:1] == b"N", f"GSSENCRequest answered {data[:40]!r} ({state})"
    assert_still_serving(proxy)


def test_psql_gssencmode_prefer_and_sslmode_prefer(proxy):
    out = psql(proxy.dsn(sslmode="prefer", gssencmode="prefer"), sql="select 'negotiated'").stdout.strip()
    assert out == "negotiated"


def test_garbage_after_login(proxy):
    c = WireClient(proxy.host, proxy.port)
    c.login()
    c.send(message(b"\x01", os.urandom(64)))  # unknown message type
    state, data = read_until_closed_or_message(c.sock, 5)
    c.close()
    assert state == "closed" or data[:1] == b"E", f"unknown message type not rejected: {data[:60]!r}"
    if data:
        assert error_sqlstates(data)[:1] == ["08P01"], error_sqlstates(data)
    assert_still_serving(proxy)
