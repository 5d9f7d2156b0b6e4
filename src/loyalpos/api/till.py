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

Other endpoints (reports, exports, HQ rules) keep Starlette's shared pool.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable
from typing import ParamSpec, TypeVar
from weakref import WeakKeyDictionary

from anyio import CapacityLimiter, to_thread

from loyalpos.service.context import Context

P = ParamSpec("P")
T = TypeVar("T")

# One limiter per event loop (a server process has one; tests start several).
_limiters: WeakKeyDictionary[asyncio.AbstractEventLoop, CapacityLimiter] = WeakKeyDictionary()


def _limiter(threads: int) -> CapacityLimiter:
    loop = asyncio.get_running_loop()
    found = _limiters.get(loop)
    if found is None:
        found = _limiters[loop] = CapacityLimiter(threads)
    return found


async def run_till(ctx: Context, func: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
    """`func(*args, **kwargs)` in a worker thread, at most `till_threads` at once."""
    call = functools.partial(func, *args, **kwargs)
    return await to_thread.run_sync(call, limiter=_limiter(ctx.settings.till_threads))
