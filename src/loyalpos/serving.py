"""Serve the API with several worker processes that share one port fairly.

uvicorn's own `--workers` hands every worker the same listening socket; a
connection goes to whichever worker accepts first, and a worker that wakes up
first takes every connection waiting in the queue. Tills keep their connections
alive, so one worker can end up serving all of them while the others idle (seen
in bench/bench_http.py: 100% of the load on one of two workers). Here, on Linux,
every worker binds its own socket with SO_REUSEPORT and the kernel spreads new
connections over them by a hash of the client's address and port. Elsewhere, or
with one worker, this is plain uvicorn.

The supervisor (this process) restarts a worker that dies, and on SIGTERM or
SIGINT asks each worker to finish its requests (uvicorn's graceful shutdown)
before it exits itself.
"""

from __future__ import annotations

import errno
import multiprocessing
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.context import SpawnProcess
from types import FrameType

import uvicorn

APP = "loyalpos.api.main:app_from_env"
BACKLOG = 2048
# A worker that dies this soon after its start, this many times in a row, is
# broken (bad settings, database unreachable): the supervisor stops.
QUICK_DEATH_SECONDS = 5.0
QUICK_DEATHS_ALLOWED = 5
SHUTDOWN_SECONDS = 30.0


@dataclass(frozen=True)
class Options:
    host: str
    port: int
    workers: int
    log_level: str = "info"
    access_log: bool = True


def serve(options: Options) -> None:
    """Run the API until SIGTERM/SIGINT."""
    if options.workers <= 1 or not hasattr(socket, "SO_REUSEPORT"):
        uvicorn.run(
            APP,
            factory=True,
            host=options.host,
            port=options.port,
            workers=options.workers,
            log_level=options.log_level,
            access_log=options.access_log,
        )
        return
    Supervisor(options).run()


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket in the port's SO_REUSEPORT group; every worker binds its own."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    return sock


def _refuse_if_served(host: str, port: int) -> None:
    """Fail at start if the port is taken, rather than workers dying one after
    another. Binding catches a program that holds it without SO_REUSEPORT; a
    second loyalpos on the same port would bind beside the first and share its
    connections silently, so a listener that answers is refused as well."""
    listening_socket(host, port).close()
    target = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    try:
        with socket.create_connection((target, port), timeout=1.0):
            pass
    except OSError:
        return
    raise OSError(errno.EADDRINUSE, f"{host}:{port} is already served by another process")


def _worker(options: Options) -> None:
    """One worker process: its own socket, one uvicorn server."""
    sock = listening_socket(options.host, options.port)
    sock.listen(BACKLOG)
    config = uvicorn.Config(
        APP,
        factory=True,
        log_level=options.log_level,
        access_log=options.access_log,
        backlog=BACKLOG,
    )
    uvicorn.Server(config).run(sockets=[sock])


class Supervisor:
    def __init__(self, options: Options) -> None:
        self.options = options
        self.context = multiprocessing.get_context("spawn")
        self.stopping = threading.Event()
        # Each worker and when it started.
        self.processes: list[tuple[SpawnProcess, float]] = []

    def run(self) -> None:
        _refuse_if_served(self.options.host, self.options.port)
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, self._on_signal)
        print(
            f"loyalpos: {self.options.workers} workers on "
            f"{self.options.host}:{self.options.port} (SO_REUSEPORT)",
            file=sys.stderr,
            flush=True,
        )
        self.processes = [self._start() for _ in range(self.options.workers)]
        quick_deaths = 0
        while not self.stopping.wait(0.5):
            for n, (proc, started) in enumerate(self.processes):
                if proc.is_alive() or self.stopping.is_set():
                    continue
                lived = time.monotonic() - started
                quick_deaths = quick_deaths + 1 if lived < QUICK_DEATH_SECONDS else 0
                print(
                    f"loyalpos: worker {proc.pid} exited ({proc.exitcode}); starting another",
                    file=sys.stderr,
                    flush=True,
                )
                if quick_deaths > QUICK_DEATHS_ALLOWED:
                    print("loyalpos: workers keep dying at start; stopping", file=sys.stderr)
                    self._stop()
                    raise SystemExit(1)
                self.processes[n] = self._start()
        self._stop()

    def _start(self) -> tuple[SpawnProcess, float]:
        proc = self.context.Process(target=_worker, args=(self.options,), daemon=False)
        proc.start()
        return proc, time.monotonic()

    def _on_signal(self, _signum: int, _frame: FrameType | None) -> None:
        self.stopping.set()

    def _stop(self) -> None:
        """Graceful: SIGTERM lets each worker finish what it is answering."""
        for proc, _ in self.processes:
            if proc.is_alive():
                proc.terminate()
        deadline = time.monotonic() + SHUTDOWN_SECONDS
        for proc, _ in self.processes:
            proc.join(max(0.0, deadline - time.monotonic()))
            if proc.is_alive():
                proc.kill()
                proc.join()
