#!/usr/bin/env python3
"""Idle PostgreSQL clients for scripts/bench, standard library only.

Opens COUNT connections to HOST:PORT, authenticates each (SCRAM-SHA-256, md5 or cleartext, whatever the server
asks for), waits for the first ReadyForQuery and then holds the connections idle. Prints one line
`READY ok=N failed=M seconds=S` on stdout once every attempt has finished (plus `ERROR ...` lines for the first
few failures on stderr), then waits until stdin reaches EOF, sends Terminate on every connection and exits.

Also usable as a module: `scram_secret(password, iterations)` builds a PgBouncer/PostgreSQL-style
`SCRAM-SHA-256$iter:salt$stored:server` verifier.
"""

import argparse
import asyncio
import base64
import hashlib
import hmac
import os
import resource
import struct
import sys
import time


def _hmac(key: bytes, msg: bytes) -> bytes:
    return hmac.new(key, msg, hashlib.sha256).digest()


def scram_secret(password: str, iterations: int = 1, salt: bytes | None = None) -> str:
    salt = salt if salt is not None else os.urandom(16)
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored = hashlib.sha256(_hmac(salted, b"Client Key")).digest()
    server = _hmac(salted, b"Server Key")
    b64 = lambda b: base64.b64encode(b).decode()  # noqa: E731
    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored)}:{b64(server)}"


class ProtocolError(Exception):
    pass


async def _read_message(reader: asyncio.StreamReader) -> tuple[bytes, bytes]:
    header = await reader.readexactly(5)
    length = struct.unpack("!I", header[1:5])[0]
    body = await reader.readexactly(length - 4) if length > 4 else b""
    return header[:1], body


def _message(tag: bytes, body: bytes) -> bytes:
    return tag + struct.pack("!I", len(body) + 4) + body


def _error_text(body: bytes) -> str:
    fields = {}
    for part in body.split(b"\0"):
        if part:
            fields[chr(part[0])] = part[1:].decode(errors="replace")
    return f"{fields.get('C', '?')}: {fields.get('M', '?')}"


async def connect(host: str, port: int, user: str, password: str, database: str, query: str | None):
    """Opens one authenticated connection; returns (reader, writer) after the first ReadyForQuery."""
    reader, writer = await asyncio.open_connection(host, port)
    try:
        params = b"user\0" + user.encode() + b"\0database\0" + database.encode() + b"\0"
        params += b"application_name\0bench_idle\0\0"
        body = struct.pack("!I", 196608) + params
        writer.write(struct.pack("!I", len(body) + 4) + body)
        await writer.drain()
        nonce = base64.b64encode(os.urandom(18)).decode()
        client_first_bare = f"n=,r={nonce}"
        server_signature = None
        while True:
            tag, body = await _read_message(reader)
            if tag == b"E":
                raise ProtocolError(_error_text(body))
            if tag == b"Z":
                break
            if tag != b"R":
                continue  # ParameterStatus, BackendKeyData, NoticeResponse
            code = struct.unpack("!I", body[:4])[0]
            if code == 0:
                continue
            if code == 3:  # cleartext
                writer.write(_message(b"p", password.encode() + b"\0"))
            elif code == 5:  # md5
                salt = body[4:8]
                inner = hashlib.md5(password.encode() + user.encode()).hexdigest().encode()
                writer.write(_message(b"p", b"md5" + hashlib.md5(inner + salt).hexdigest().encode() + b"\0"))
            elif code == 10:  # SASL
                mechanisms = body[4:].split(b"\0")
                if b"SCRAM-SHA-256" not in mechanisms:
                    raise ProtocolError(f"no SCRAM-SHA-256 among {mechanisms}")
                data = ("n,," + client_first_bare).encode()
                writer.write(_message(b"p", b"SCRAM-SHA-256\0" + struct.pack("!I", len(data)) + data))
            elif code == 11:  # SASLContinue
                server_first = body[4:].decode()
                attrs = dict(kv.split("=", 1) for kv in server_first.split(","))
                if not attrs["r"].startswith(nonce):
                    raise ProtocolError("server nonce does not extend ours")
                salted = hashlib.pbkdf2_hmac("sha256", password.encode(), base64.b64decode(attrs["s"]), int(attrs["i"]))
                client_key = _hmac(salted, b"Client Key")
                stored_key = hashlib.sha256(client_key).digest()
                final_wo_proof = f"c=biws,r={attrs['r']}"
                auth_message = f"{client_first_bare},{server_first},{final_wo_proof}".encode()
                signature = _hmac(stored_key, auth_message)
                proof = bytes(a ^ b for a, b in zip(client_key, signature))
                server_signature = _hmac(_hmac(salted, b"Server Key"), auth_message)
                final = f"{final_wo_proof},p={base64.b64encode(proof).decode()}".encode()
                writer.write(_message(b"p", final))
            elif code == 12:  # SASLFinal
                got = dict(kv.split("=", 1) for kv in body[4:].decode().split(","))
                if server_signature is None or base64.b64decode(got.get("v", "")) != server_signature:
                    raise ProtocolError("bad server signature")
                continue
            else:
                raise ProtocolError(f"unsupported authentication request {code}")
            await writer.drain()
        if query:
            writer.write(_message(b"Q", query.encode() + b"\0"))
            await writer.drain()
            while True:
                tag, body = await _read_message(reader)
                if tag == b"E":
                    raise ProtocolError(_error_text(body))
                if tag == b"Z":
                    break
        return reader, writer
    except BaseException:
        writer.close()
        raise


async def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", default=os.environ.get("PGPASSWORD", ""))
    ap.add_argument("--database", required=True)
    ap.add_argument("--count", type=int, required=True)
    ap.add_argument("--concurrency", type=int, default=64, help="handshakes in flight at once")
    ap.add_argument("--query", default=None, help="run this simple query once after authenticating")
    ap.add_argument("--timeout", type=float, default=30.0, help="per-connection handshake timeout")
    args = ap.parse_args()

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = args.count + 64
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(max(want, soft), hard), hard))

    conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []
    failures: list[str] = []
    gate = asyncio.Semaphore(args.concurrency)

    async def one():
        async with gate:
            try:
                r, w = await asyncio.wait_for(
                    connect(args.host, args.port, args.user, args.password, args.database, args.query), args.timeout)
                conns.append((r, w))
            except Exception as e:  # noqa: BLE001 - every failure is reported the same way
                failures.append(f"{type(e).__name__}: {e}")

    start = time.monotonic()
    await asyncio.gather(*(one() for _ in range(args.count)))
    elapsed = time.monotonic() - start
    for f in failures[:5]:
        print(f"ERROR {f}", file=sys.stderr, flush=True)
    print(f"READY ok={len(conns)} failed={len(failures)} seconds={elapsed:.2f}", flush=True)

    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)  # hold until the parent closes our stdin

    closed_early = sum(1 for r, _ in conns if r.at_eof())
    for _, w in conns:
        try:
            w.write(_message(b"X", b""))
            w.close()
        except Exception:  # noqa: BLE001
            pass
    await asyncio.sleep(0.2)
    print(f"DONE closed_early={closed_early}", flush=True)
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
