"""`loyalpos worker`: the background worker that turns outbox events into their
handlers' work and signed webhook deliveries."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated, Any

import typer

from loyalpos.cli.common import print_json, service_context
from loyalpos.cli.errors import guarded

if TYPE_CHECKING:  # annotations only: the command line starts without it
    from loyalpos.service.events.worker import WorkerStats


@guarded
def worker(
    once: Annotated[
        bool, typer.Option("--once", help="work until nothing is due, then exit")
    ] = False,
    poll: Annotated[
        float, typer.Option("--poll", min=0.05, help="seconds between idle polls")
    ] = 1.0,
) -> None:
    """Run the background worker: outbox events → handlers and signed webhooks."""
    from loyalpos.service.events.worker import run_worker

    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    ctx = service_context()
    stop = threading.Event()
    try:
        with stopping_on_signals(stop):
            if not once:
                typer.echo(f"loyalpos worker polling every {poll}s (Ctrl-C to stop)", err=True)
            stats = run_worker(ctx, once=once, poll_seconds=poll, stop=stop)
    finally:
        ctx.engine.dispose()
    print_json(stats_json(stats))


@contextmanager
def stopping_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM / Ctrl-C set `stop`, so the worker finishes the current pass and
    then stops (no half-recorded sends); the previous handlers are put back after.
    Python lets only the main thread install handlers: elsewhere none are."""
    previous: dict[signal.Signals, Any] = {}

    def _stop(_signum: int, _frame: Any) -> None:
        stop.set()

    if threading.current_thread() is threading.main_thread():
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous[sig] = signal.signal(sig, _stop)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def stats_json(stats: WorkerStats) -> dict[str, int]:
    """What the worker did, as printed when it stops."""
    return {
        "events": stats.events,
        "deliveries_created": stats.deliveries_created,
        "delivered": stats.delivered,
        "retrying": stats.retrying,
        "dead": stats.dead,
        "errors": stats.errors,
    }
