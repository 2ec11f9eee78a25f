"""A development Couchbase for pods: gocaves behind Couchbase's well-known ports.

DEVELOPMENT ONLY. gocaves (Couchbase's own protocol-level mock) listens on random ports
of every interface, and its cluster map names no host in `nodesExt`, so an SDK keeps
the host it bootstrapped from and only takes the ports from the map. This entrypoint
makes that host reachable under Couchbase's defaults, so `couchbase://couchbase` works
unchanged behind a headless Service (whose name resolves to the pod IP, on which every
port of the pod is reachable):

  1. listens on a loopback control port and starts `gocaves --control-port=N`, which
     connects back (the reverse mode hack/devinfra/src/devinfra/gocaves.py uses);
  2. asks it for a cluster and adds the bucket (COUCHBASE_BUCKET);
  3. creates the user of COUCHBASE_USERNAME/COUCHBASE_PASSWORD when it is not the mock's
     built-in administrator;
  4. forwards KV_PORT (11210) and MGMT_PORT (8091) to the mock's KV and management ports:
     clients bootstrap there and then follow the map to the mock's own ports;
  5. answers HEALTH_PORT (8099): /ready is 200 only while a KV login plus bucket
     selection through KV_PORT and a bucket read through MGMT_PORT both succeed with
     those credentials; /live is 200 while gocaves runs.

The mock keeps its data in memory: a restart starts from an empty bucket.
Only the Python standard library is used (the image is a plain Debian Python).
"""

from __future__ import annotations

import asyncio
import base64
import collections
import contextlib
import json
import os
import signal
import socket
import struct
import sys
import time
import urllib.parse
from dataclasses import dataclass

# gocaves' built-in administrator of every mock cluster (fixed in gocaves, not a secret).
MOCK_USERNAME = "Administrator"
MOCK_PASSWORD = "password"


def log(message: str) -> None:
    print(f"[couchbase-dev] {message}", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Settings:
    gocaves: str
    bucket: str
    username: str
    password: str
    bind: str
    kv_port: int
    mgmt_port: int
    health_port: int
    gocaves_log: bool
    start_timeout: float

    @classmethod
    def from_env(cls) -> Settings:
        env = os.environ
        return cls(
            gocaves=env.get("GOCAVES", "/usr/local/bin/gocaves"),
            bucket=env.get("COUCHBASE_BUCKET", "order_analytics"),
            username=env.get("COUCHBASE_USERNAME", MOCK_USERNAME),
            password=env.get("COUCHBASE_PASSWORD", MOCK_PASSWORD),
            bind=env.get("BIND_ADDRESS", "0.0.0.0"),
            kv_port=int(env.get("KV_PORT", "11210")),
            mgmt_port=int(env.get("MGMT_PORT", "8091")),
            health_port=int(env.get("HEALTH_PORT", "8099")),
            # gocaves logs every packet: off unless asked for, it would drown the pod's log.
            gocaves_log=env.get("GOCAVES_LOG", "") not in ("", "0", "false"),
            start_timeout=float(env.get("START_TIMEOUT", "60")),
        )


def port_of(address: str) -> int:
    """The port of "couchbase://127.0.0.1:P" or "http://127.0.0.1:P" (first host)."""
    netloc = urllib.parse.urlsplit(address).netloc.split(",")[0]
    return int(netloc.rsplit(":", 1)[1])


class Control:
    """gocaves' control connection: NUL-terminated JSON packets both ways."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader = reader
        self.writer = writer

    async def receive(self) -> dict[str, object]:
        raw = await self.reader.readuntil(b"\0")
        packet: dict[str, object] = json.loads(raw[:-1])
        return packet

    async def request(self, packet: dict[str, object]) -> dict[str, object]:
        self.writer.write(json.dumps(packet).encode() + b"\0")
        await self.writer.drain()
        return await self.receive()


# -- forwarding ------------------------------------------------------------------------


async def pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass


def no_delay(writer: asyncio.StreamWriter) -> None:
    # KV is request/response with small packets: Nagle would add latency to each one.
    sock = writer.get_extra_info("socket")
    if sock is not None:
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


# Open forwarded connections, cancelled at shutdown.
_connections: set[asyncio.Task[None]] = set()


async def forward(port: int, target: int, bind: str) -> asyncio.Server:
    async def handle(client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        _connections.add(task)
        try:
            try:
                mock_r, mock_w = await asyncio.open_connection("127.0.0.1", target)
            except OSError as exc:
                log(f"port {port}: cannot reach the mock's port {target}: {exc}")
                return
            no_delay(client_w)
            no_delay(mock_w)
            directions = {
                asyncio.create_task(pipe(client_r, mock_w)),
                asyncio.create_task(pipe(mock_r, client_w)),
            }
            try:
                # KV and HTTP never half-close: once one side is gone, so is the
                # connection (gocaves does not close on a half-close; waiting for it
                # would leak a connection per client).
                await asyncio.wait(directions, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for direction in directions:
                    direction.cancel()
                mock_w.close()
        finally:
            client_w.close()
            _connections.discard(task)

    return await asyncio.start_server(handle, bind, port, reuse_address=True)


# -- checks (readiness) ----------------------------------------------------------------

_HEADER = struct.Struct(">BBHBBHIIQ")  # memcached binary protocol header, 24 bytes


async def kv_request(
    reader: asyncio.StreamReader,
    writer: asyncio.StreamWriter,
    opcode: int,
    key: bytes,
    value: bytes,
) -> int:
    """One memcached binary request; returns the response's status."""
    writer.write(_HEADER.pack(0x80, opcode, len(key), 0, 0, 0, len(key) + len(value), 0, 0))
    writer.write(key + value)
    await writer.drain()
    header = await reader.readexactly(_HEADER.size)
    _magic, _op, _keylen, _extlen, _dtype, status, bodylen, _opaque, _cas = _HEADER.unpack(header)
    await reader.readexactly(bodylen)
    return int(status)


async def check_kv(settings: Settings) -> str | None:
    """Log in with SASL PLAIN and select the bucket through KV_PORT; None when it works."""
    reader, writer = await asyncio.open_connection("127.0.0.1", settings.kv_port)
    try:
        plain = b"\0" + settings.username.encode() + b"\0" + settings.password.encode()
        status = await kv_request(reader, writer, 0x21, b"PLAIN", plain)  # SASL_AUTH
        if status != 0:
            return f"KV login as {settings.username} refused (status {status:#x})"
        status = await kv_request(
            reader, writer, 0x89, settings.bucket.encode(), b""
        )  # SELECT_BUCKET
        if status != 0:
            return f"KV select bucket {settings.bucket} failed (status {status:#x})"
        return None
    finally:
        writer.close()


async def check_mgmt(settings: Settings) -> str | None:
    """Read the bucket's settings through MGMT_PORT; None when it answers 200."""
    reader, writer = await asyncio.open_connection("127.0.0.1", settings.mgmt_port)
    try:
        token = base64.b64encode(f"{settings.username}:{settings.password}".encode()).decode()
        path = "/pools/default/buckets/" + urllib.parse.quote(settings.bucket)
        request = f"GET {path} HTTP/1.0\r\nHost: localhost\r\nAuthorization: Basic {token}\r\n\r\n"
        writer.write(request.encode())
        await writer.drain()
        status_line = (await reader.readline()).decode(errors="replace").split()
        status = status_line[1] if len(status_line) > 1 else "no answer"
        return (
            None if status == "200" else f"management: bucket {settings.bucket} answered {status}"
        )
    finally:
        writer.close()


# -- the health endpoint ---------------------------------------------------------------


class Health:
    def __init__(self, settings: Settings, gocaves: asyncio.subprocess.Process) -> None:
        self.settings = settings
        self.gocaves = gocaves
        self.last_problem: str | None = "not checked yet"

    async def ready(self) -> str | None:
        if self.gocaves.returncode is not None:
            return "gocaves has exited"
        try:
            problem = await asyncio.wait_for(check_kv(self.settings), 3)
            problem = problem or await asyncio.wait_for(check_mgmt(self.settings), 3)
        except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
            problem = f"check failed: {exc!r}"
        if problem != self.last_problem:
            log(f"ready: {problem}" if problem else "ready: yes")
            self.last_problem = problem
        return problem

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            request = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
            path = request.split(b" ", 2)[1].decode(errors="replace") if b" " in request else ""
            if path == "/live":
                problem = None if self.gocaves.returncode is None else "gocaves has exited"
            elif path == "/ready":
                problem = await self.ready()
            else:
                writer.write(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                return
            body = (problem or "ok").encode() + b"\n"
            status = b"200 OK" if problem is None else b"503 Service Unavailable"
            writer.write(
                b"HTTP/1.0 " + status + b"\r\nContent-Type: text/plain\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body
            )
        except (TimeoutError, OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            pass
        finally:
            with contextlib.suppress(ConnectionError, OSError):
                await writer.drain()
            writer.close()


# -- gocaves ---------------------------------------------------------------------------


async def drain_output(
    stream: asyncio.StreamReader, tail: collections.deque[str], echo: bool
) -> None:
    """Keep reading gocaves' output (a full pipe would block it); keep the last lines."""
    while line := await stream.readline():
        text = line.decode(errors="replace").rstrip()
        tail.append(text)
        if echo:
            print(text, file=sys.stderr, flush=True)


async def create_user(settings: Settings, mgmt_target: int) -> None:
    """The Secret's user as an admin of the mock, when it is not the built-in one."""
    if (settings.username, settings.password) == (MOCK_USERNAME, MOCK_PASSWORD):
        return
    if settings.username == MOCK_USERNAME:
        # The mock cannot change its built-in user's password.
        raise RuntimeError(
            f"the user {MOCK_USERNAME} is built into gocaves with the password "
            f"'{MOCK_PASSWORD}': use that password, or another user name"
        )
    reader, writer = await asyncio.open_connection("127.0.0.1", mgmt_target)
    try:
        body = urllib.parse.urlencode({"password": settings.password, "roles": "admin"}).encode()
        token = base64.b64encode(f"{MOCK_USERNAME}:{MOCK_PASSWORD}".encode()).decode()
        path = "/settings/rbac/users/local/" + urllib.parse.quote(settings.username, safe="")
        writer.write(
            f"PUT {path} HTTP/1.0\r\nHost: localhost\r\nAuthorization: Basic {token}\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n\r\n".encode()
            + body
        )
        await writer.drain()
        status_line = (await reader.readline()).decode(errors="replace")
    finally:
        writer.close()
    if " 200 " not in status_line:
        raise RuntimeError(
            f"gocaves refused to create the user {settings.username}: {status_line.strip()}"
        )
    log(f"created the user {settings.username} (role admin)")


async def main() -> int:
    settings = Settings.from_env()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)

    connected: asyncio.Future[Control] = loop.create_future()

    async def on_control(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        if connected.done():  # only gocaves is expected here
            writer.close()
            return
        connected.set_result(Control(reader, writer))

    # Loopback only: the control port creates and destroys clusters.
    control_server = await asyncio.start_server(on_control, "127.0.0.1", 0)
    control_port = control_server.sockets[0].getsockname()[1]
    started = time.monotonic()
    gocaves = await asyncio.create_subprocess_exec(
        settings.gocaves,
        f"--control-port={control_port}",
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        # gocaves writes nothing to disk; a writable cwd anyway (the root is read-only).
        cwd=os.environ.get("TMPDIR", "/tmp"),
    )
    assert gocaves.stdout is not None
    tail: collections.deque[str] = collections.deque(maxlen=50)
    drainer = asyncio.create_task(drain_output(gocaves.stdout, tail, settings.gocaves_log))

    def gocaves_failed(what: str) -> int:
        log(f"{what}; gocaves' last lines:")
        for line in tail:
            print(f"  {line}", file=sys.stderr)
        return 1

    try:
        control = await asyncio.wait_for(connected, settings.start_timeout)
        hello = await asyncio.wait_for(control.receive(), settings.start_timeout)
        if hello.get("type") != "hello":
            return gocaves_failed(f"gocaves sent {hello!r} instead of hello")
        cluster = await asyncio.wait_for(
            control.request({"type": "createcluster", "id": "dev"}), settings.start_timeout
        )
        connstr = str(cluster.get("connstr") or "")
        mgmt_addrs = cluster.get("mgmt_addrs") or []
        if not connstr or not isinstance(mgmt_addrs, list) or not mgmt_addrs:
            return gocaves_failed(f"gocaves could not create a cluster: {cluster!r}")
        kv_target, mgmt_target = port_of(connstr), port_of(str(mgmt_addrs[0]))
        if settings.bucket != "default":  # the mock's cluster comes with `default`
            await asyncio.wait_for(
                control.request(
                    {
                        "type": "addbucket",
                        "cluster": "dev",
                        "name": settings.bucket,
                        "replicas": 0,
                        "bucket_type": "couchbase",
                    }
                ),
                settings.start_timeout,
            )
        await create_user(settings, mgmt_target)
    except (TimeoutError, asyncio.IncompleteReadError, OSError, RuntimeError) as exc:
        gocaves.kill()
        await gocaves.wait()
        if isinstance(exc, RuntimeError):  # a settings problem, not gocaves'
            log(str(exc))
            return 1
        return gocaves_failed(f"no cluster: {exc}")

    servers = [
        await forward(settings.kv_port, kv_target, settings.bind),
        await forward(settings.mgmt_port, mgmt_target, settings.bind),
    ]
    health = Health(settings, gocaves)
    servers.append(await asyncio.start_server(health.handle, settings.bind, settings.health_port))
    log(
        f"gocaves cluster up in {time.monotonic() - started:.1f} s: bucket {settings.bucket}, "
        f"KV {settings.bind}:{settings.kv_port} -> {kv_target}, "
        f"management {settings.bind}:{settings.mgmt_port} -> {mgmt_target}, "
        f"health :{settings.health_port}/ready"
    )
    await health.ready()  # logs the first verdict

    exited = asyncio.create_task(gocaves.wait())
    stopping = asyncio.create_task(stop.wait())
    await asyncio.wait({exited, stopping}, return_when=asyncio.FIRST_COMPLETED)
    for server in servers:
        server.close()
    control_server.close()
    for connection in list(_connections):
        connection.cancel()
    await asyncio.gather(*_connections, return_exceptions=True)
    if exited.done():
        await drainer
        return gocaves_failed(f"gocaves exited with {gocaves.returncode}")
    log("stopping")
    gocaves.terminate()
    try:
        await asyncio.wait_for(gocaves.wait(), 10)
    except TimeoutError:
        gocaves.kill()
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
