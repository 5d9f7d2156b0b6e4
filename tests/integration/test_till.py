"""run_till: the till's calls run in worker threads, at most `till_threads` at once.

The bound is the point of api/till/threads.py (unbounded threads fought over the GIL),
so the tests count how many calls run at the same moment. The count is made
deterministic: each call waits until the expected peak has been reached once, so
a correct limiter always shows exactly `till_threads`, and one that lets more
through is seen by the calls that follow while the first ones still sleep.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator

import pytest

from loyalpos.api.till.threads import run_till
from loyalpos.config import Settings
from loyalpos.db.engine import make_engine
from loyalpos.service.base.context import Context
from tests.conftest import TEST_SECRET

CALLS = 6
HOLD_SECONDS = 0.05
# Only reached if the limiter lets fewer calls run at once than it should.
PEAK_TIMEOUT = 5.0


def till_context(threads: int) -> Context:
    """A real Context; the engine never connects (run_till only reads the setting)."""
    url = "sqlite://"
    settings = Settings(env="test", database_url=url, secret_key=TEST_SECRET, till_threads=threads)
    return Context(make_engine(url), settings)


@pytest.fixture
def contexts() -> Iterator[list[Context]]:
    made: list[Context] = []
    yield made
    for ctx in made:
        ctx.engine.dispose()


class Concurrency:
    """Counts the calls running at once; each waits for `expected` to be reached once."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.running = 0
        self.peak = 0
        self.threads: set[int] = set()
        self.cond = threading.Condition()

    def call(self, n: int, *, scale: int) -> int:
        with self.cond:
            self.running += 1
            self.peak = max(self.peak, self.running)
            self.threads.add(threading.get_ident())
            self.cond.notify_all()
            self.cond.wait_for(lambda: self.peak >= self.expected, timeout=PEAK_TIMEOUT)
        time.sleep(HOLD_SECONDS)
        with self.cond:
            self.running -= 1
        return n * scale


async def run_calls(ctx: Context, counter: Concurrency) -> list[int]:
    """CALLS concurrent run_till calls on the current event loop."""
    calls = [run_till(ctx, counter.call, n, scale=10) for n in range(CALLS)]
    return list(await asyncio.gather(*calls))


@pytest.mark.parametrize("threads", [2, 3])
def test_at_most_till_threads_calls_at_once(threads: int, contexts: list[Context]) -> None:
    ctx = till_context(threads)
    contexts.append(ctx)
    counter = Concurrency(expected=threads)
    started = time.monotonic()
    results = asyncio.run(run_calls(ctx, counter))
    assert results == [n * 10 for n in range(CALLS)]  # every call, in order, kwargs passed
    assert counter.peak == threads
    assert counter.running == 0
    assert threading.get_ident() not in counter.threads  # off the event loop's thread
    # Waiting for a peak that never came would have taken PEAK_TIMEOUT.
    assert time.monotonic() - started < PEAK_TIMEOUT


def test_one_limiter_per_event_loop(contexts: list[Context]) -> None:
    """Each asyncio.run is a new loop: it gets its own limiter, sized by its ctx.

    A limiter shared across loops would be bound to the first, closed loop, and
    would keep the first size.
    """
    two, three = till_context(2), till_context(3)
    contexts += [two, three]
    for ctx, threads in [(two, 2), (two, 2), (three, 3), (two, 2)]:
        counter = Concurrency(expected=threads)
        assert asyncio.run(run_calls(ctx, counter)) == [n * 10 for n in range(CALLS)]
        assert counter.peak == threads


def test_exception_reaches_the_caller_and_frees_the_slot(contexts: list[Context]) -> None:
    """A failing service call (say, a conflict) must not keep its thread slot."""
    ctx = till_context(1)
    contexts.append(ctx)

    def fail() -> int:
        raise LookupError("no such member")

    async def main() -> list[int]:
        for _ in range(3):
            with pytest.raises(LookupError, match="no such member"):
                await run_till(ctx, fail)
        return await run_calls(ctx, Concurrency(expected=1))

    assert asyncio.run(asyncio.wait_for(main(), timeout=10)) == [n * 10 for n in range(CALLS)]
