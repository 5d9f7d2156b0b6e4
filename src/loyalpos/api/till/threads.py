"""Running the till's calls (identify, quote, confirm) off the event loop, a few at a
time per process.

Each call is database round trips with Python in between, all under the GIL.
With an unbounded thread pool, every request in flight has its own thread and
they take turns at the GIL on each round trip: measured on 2 CPUs with 2 server
processes and 16 confirms in flight, that contention cost 0.9 ms of CPU per
confirm (3.5 against 2.6 ms when run on the event loop itself) and capped the
server near 300 confirms/s with a third of the CPU idle. Two threads per process
keep most of that saving while one call waiting on a row lock (a member being
booked at another till) does not stop the others, as running on the event loop
would; the rest queue cheaply on the loop. `LOYALPOS_TILL_THREADS` sets it.

The threads are asyncio's own executor (`run_in_executor`) rather than anyio's
worker threads with a capacity limiter: the hop costs 0.49 against 0.60 ms of
server CPU per request (bench_http with the service call stubbed out). As with
anyio's default, a call whose client went away still runs to its end: a booking
is never cut in half; its answer is dropped.

Other endpoints (reports, exports, HQ rules) keep Starlette's shared pool.
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar
from weakref import WeakKeyDictionary

from loyalpos.service.base.context import Context

P = ParamSpec("P")
T = TypeVar("T")

# One pool per event loop (a server process has one; tests start several).
_pools: WeakKeyDictionary[asyncio.AbstractEventLoop, ThreadPoolExecutor] = WeakKeyDictionary()


def _pool(loop: asyncio.AbstractEventLoop, threads: int) -> ThreadPoolExecutor:
    found = _pools.get(loop)
    if found is None:
        found = _pools[loop] = ThreadPoolExecutor(threads, thread_name_prefix="till")
    return found


async def run_till(ctx: Context, func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """`func(*args, **kwargs)` in a worker thread, at most `till_threads` at once."""
    loop = asyncio.get_running_loop()
    call = functools.partial(contextvars.copy_context().run, func, *args, **kwargs)
    return await loop.run_in_executor(_pool(loop, ctx.settings.till_threads), call)
