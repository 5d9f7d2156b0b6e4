"""`loyalpos serve --workers 2` as real processes, on a fresh SQLite file.

serving.py exists because uvicorn's own `--workers` let one worker take every
keep-alive connection of the tills. So the first test asks the kernel, through
/proc, which worker process holds each of 40 open connections, rather than
trusting a response or a log line. The others check what a supervisor owes its
operator: a killed worker is replaced, SIGTERM stops everything, and a port
that another program holds is an error at start, not a restart loop.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from http.client import HTTPConnection
from pathlib import Path

import httpx
import pytest

from loyalpos.serving import SHUTDOWN_SECONDS
from tests.e2e.test_server import STARTUP_TIMEOUT, free_port, loyalpos_bin, wait_healthy

pytestmark = [
    pytest.mark.slow,
    # Each test kills or stops a server and bounds how soon it recovers (a new
    # worker within 10 s, 40 connections counted within the 5 s keep-alive):
    # run alone, not beside other pytest-xdist workers' load.
    pytest.mark.serial,
    pytest.mark.skipif(
        not sys.platform.startswith("linux") or not hasattr(socket, "SO_REUSEPORT"),
        reason="SO_REUSEPORT workers and /proc are Linux only",
    ),
]

WORKERS = 2
# With a fair hash, all 40 on one of two workers has a chance of 2**-39.
CONNECTIONS = 40
# uvicorn logs this once per worker when its app is loaded (at --log-level info).
READY_LINE = "Application startup complete."
RESTART_SECONDS = 10.0
TCP_ESTABLISHED = "01"
TCP_LISTEN = "0A"


@dataclass
class Served:
    """A running `loyalpos serve --workers 2` and where its output goes."""

    proc: subprocess.Popen[bytes]
    port: int
    log_path: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_ready(self, loaded: int, timeout: float = STARTUP_TIMEOUT) -> None:
        """Until `loaded` workers (counting replaced ones) have their app loaded.

        /healthz answering proves only one worker ready; a worker still importing
        the app already listens, and connections the kernel gives it would wait.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.output().count(READY_LINE) >= loaded:
                return
            if self.proc.poll() is not None:
                pytest.fail(f"server exited ({self.proc.returncode}):\n{self.output()}")
            time.sleep(0.1)
        pytest.fail(f"{loaded} workers not ready within {timeout}s; output:\n{self.output()}")


@contextmanager
def serving(tmp_path: Path, port: int) -> Iterator[Served]:
    """`loyalpos serve --workers 2 --port PORT`, stopped (and its session killed) at the end.

    Not test_server.server(): that one does not expose the process, and these
    tests need its pid to find the workers and to signal it.
    """
    env = {k: v for k, v in os.environ.items() if not k.startswith("LOYALPOS_") and k != "PORT"}
    env.update(LOYALPOS_DATABASE_URL=f"sqlite:///{tmp_path / 'e2e.db'}", PYTHONUNBUFFERED="1")
    args = ["--workers", str(WORKERS), "--port", str(port), "--host", "127.0.0.1", "--no-demo"]
    args += ["--log-level", "info", "--no-access-log"]
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [loyalpos_bin(), "serve", *args],
            cwd=tmp_path,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield Served(proc, port, log_path)
        finally:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=SHUTDOWN_SECONDS + 5)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(timeout=5)
            # Workers that outlived their supervisor (a failed test) are in its session.
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)


# --- /proc: which process holds which connection -------------------------------


def _read(path: str) -> bytes:
    """A /proc file, or b"" when the process is gone."""
    try:
        with open(path, "rb") as f:
            return f.read()
    except (FileNotFoundError, ProcessLookupError):
        return b""


def children(pid: int) -> set[int]:
    """The pids whose parent is `pid`.

    /proc/PID/task/*/children needs CONFIG_PROC_CHILDREN, which not every kernel
    has; the parent pid in every /proc/*/stat is always there.
    """
    listed = list(Path(f"/proc/{pid}/task").glob("*/children"))
    if listed:
        return {int(p) for path in listed for p in _read(str(path)).split()}
    found = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = _read(f"/proc/{entry}/stat")
            # "pid (comm) state ppid ...": comm may hold spaces and parentheses.
            fields = stat[stat.rfind(b")") + 2 :].split()
            if len(fields) > 1 and int(fields[1]) == pid:
                found.add(int(entry))
    return found


def worker_pids(supervisor: int) -> set[int]:
    """The supervisor's live workers: spawned children, not the resource tracker.

    A dead worker not yet reaped is a zombie with an empty command line, so it
    is not counted.
    """
    return {
        pid
        for pid in children(supervisor)
        if b"--multiprocessing-fork" in _read(f"/proc/{pid}/cmdline")
    }


def alive(pid: int) -> bool:
    stat = _read(f"/proc/{pid}/stat")
    return bool(stat) and stat[stat.rfind(b")") + 2 :].split()[0] != b"Z"


def socket_inodes(pid: int) -> set[int]:
    inodes = set()
    with suppress(FileNotFoundError, ProcessLookupError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with suppress(FileNotFoundError):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(int(target[len("socket:[") : -1]))
    return inodes


def listening_sockets(port: int) -> set[int]:
    """Inodes of the sockets listening on `port`: one per SO_REUSEPORT member."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == TCP_LISTEN and int(fields[1].split(":")[1], 16) == port:
            found.add(int(fields[9]))
    return found


def server_side_connections(port: int) -> dict[int, int]:
    """Inode -> the client's port, of every ESTABLISHED socket whose local port is `port`.

    Only the server's end has `port` as its local port; the client's end has it
    as the remote one.
    """
    found: dict[int, int] = {}
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state, inode = fields[1], fields[2], fields[3], int(fields[9])
        if state == TCP_ESTABLISHED and int(local.split(":")[1], 16) == port:
            found[inode] = int(remote.split(":")[1], 16)
    return found


def holders(workers: set[int], port: int) -> dict[int, int]:
    """Client port -> the worker holding the server's end of that connection."""
    connections = server_side_connections(port)
    held: dict[int, int] = {}
    for pid in workers:
        for inode in socket_inodes(pid) & connections.keys():
            client_port = connections[inode]
            assert client_port not in held, f"two workers hold connection {client_port}"
            held[client_port] = pid
    return held


# --- the tills' side --------------------------------------------------------------


@contextmanager
def keep_alive_connections(port: int, count: int = CONNECTIONS) -> Iterator[list[int]]:
    """`count` connections, each having answered GET /healthz and kept open.

    All are connected before any request is sent, like tills starting together:
    with one shared listening socket, the first worker to wake accepts the whole
    queue. Yields the client port of each.
    """
    conns = [HTTPConnection("127.0.0.1", port, timeout=20) for _ in range(count)]
    try:
        for conn in conns:
            conn.connect()
        for conn in conns:
            conn.request("GET", "/healthz")
        for conn in conns:
            response = conn.getresponse()
            body = response.read()
            assert response.status == 200, body
            assert not response.will_close, "the server did not keep the connection"
        yield [int(conn.sock.getsockname()[1]) for conn in conns]
    finally:
        for conn in conns:
            conn.close()


def assert_connections_spread(served: Served) -> None:
    """Each worker has its own listening socket; each of 40 open connections is
    held by one of the two workers, and both hold some.

    Checked before uvicorn's 5 s keep-alive timeout closes the idle connections.
    """
    workers = worker_pids(served.proc.pid)
    assert len(workers) == WORKERS, (workers, served.output())
    # What makes the spread the kernel's: each worker listens on a socket of its
    # own (uvicorn's workers all hold the one socket, a single inode).
    listening = listening_sockets(served.port)
    own = {pid: socket_inodes(pid) & listening for pid in workers}
    assert all(len(inodes) == 1 for inodes in own.values()), own
    assert len(set().union(*own.values())) == WORKERS, own
    with keep_alive_connections(served.port) as client_ports:
        held = holders(workers, served.port)
    missing = set(client_ports) - held.keys()
    assert not missing, f"connections held by no worker: {missing} ({held})"
    per_worker = Counter(held[p] for p in client_ports)
    assert set(per_worker) == workers, f"connections per worker: {dict(per_worker)}"


# --- the tests ----------------------------------------------------------------------


def test_keep_alive_connections_spread_over_workers(tmp_path: Path) -> None:
    with serving(tmp_path, free_port()) as served:
        served.wait_ready(WORKERS)
        assert "2 workers on 127.0.0.1" in served.output()
        assert_connections_spread(served)


def test_killed_worker_is_replaced(tmp_path: Path) -> None:
    with serving(tmp_path, free_port()) as served:
        served.wait_ready(WORKERS)
        before = worker_pids(served.proc.pid)
        assert len(before) == WORKERS
        victim = min(before)
        os.kill(victim, signal.SIGKILL)
        deadline = time.monotonic() + RESTART_SECONDS
        after = before
        while time.monotonic() < deadline:
            after = worker_pids(served.proc.pid)
            if victim not in after and len(after) == WORKERS:
                break
            time.sleep(0.1)
        assert victim not in after and len(after) == WORKERS, (before, after, served.output())
        assert len(after - before) == 1
        wait_healthy(served.base, served.log_path)
        served.wait_ready(WORKERS + 1, timeout=RESTART_SECONDS)
        assert f"worker {victim} exited" in served.output()
        # The new worker is in the port's group and gets its share.
        assert_connections_spread(served)
        assert httpx.get(f"{served.base}/healthz", timeout=5).status_code == 200


def test_sigterm_stops_supervisor_and_workers(tmp_path: Path) -> None:
    with serving(tmp_path, free_port()) as served:
        served.wait_ready(WORKERS)
        workers = worker_pids(served.proc.pid)
        assert len(workers) == WORKERS
        # Idle keep-alive connections (tills) must not hold up the stop.
        with keep_alive_connections(served.port, count=10):
            served.proc.send_signal(signal.SIGTERM)
            returncode = served.proc.wait(timeout=SHUTDOWN_SECONDS + 5)
        assert returncode == 0, served.output()
        assert not [pid for pid in workers if alive(pid)]
        output = served.output()
        # Each worker went through uvicorn's graceful shutdown, not the SIGKILL fallback.
        for pid in workers:
            assert f"Finished server process [{pid}]" in output, output


def test_port_held_by_another_program_fails_at_start(tmp_path: Path) -> None:
    """A plain listening socket (no SO_REUSEPORT) on the port: exit 1, no workers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = int(holder.getsockname()[1])
        with serving(tmp_path, port) as served:
            try:
                returncode = served.proc.wait(timeout=STARTUP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pytest.fail(f"still running with the port taken; output:\n{served.output()}")
            output = served.output()
            assert returncode != 0, output
            assert "Address already in use" in output
            assert "Started server process" not in output
            assert "starting another" not in output


def test_a_second_server_on_the_same_port_is_refused(tmp_path: Path) -> None:
    """SO_REUSEPORT would let a second loyalpos bind beside the first (an old and
    a new deploy, two databases) and take half its connections: refused at start."""
    first_dir, second_dir = tmp_path / "first", tmp_path / "second"
    first_dir.mkdir()
    second_dir.mkdir()
    port = free_port()
    with serving(first_dir, port) as first:
        first.wait_ready(WORKERS)
        with serving(second_dir, port) as second:
            try:
                returncode = second.proc.wait(timeout=STARTUP_TIMEOUT)
            except subprocess.TimeoutExpired:
                pytest.fail(f"second server still running:\n{second.output()}")
            assert returncode != 0, second.output()
            assert "already served by another process" in second.output()
            assert "Started server process" not in second.output()
        assert len(listening_sockets(port)) == WORKERS
        assert httpx.get(f"{first.base}/healthz", timeout=5).status_code == 200
