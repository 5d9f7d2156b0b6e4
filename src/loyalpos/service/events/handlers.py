"""The registry of event handlers, by event type.

A handler runs in the transaction that marks its event processed (so its effects
commit at most once per event, and exactly once once they succeed); one that
raises rolls back that event only, which stays unprocessed and is tried again.
Handlers register here and the worker looks them up here, so the worker never
imports what reacts to events (campaigns today; member tasks and analytics
tomorrow) and those never import the worker.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime

from sqlalchemy import Connection

from loyalpos.service.base.context import Context
from loyalpos.service.base.outbox import EventType, OutboxEvent

Handler = Callable[[Context, Connection, OutboxEvent, datetime], None]


class Handlers:
    """Handlers by event type, run in the order they registered."""

    def __init__(self) -> None:
        self._by_type: dict[str, list[Handler]] = {}

    def add(self, types: Iterable[EventType], handler: Handler) -> None:
        """Register `handler` for each of `types` (once per type, however often
        its module is imported or reloaded)."""
        for kind in types:
            hooks = self._by_type.setdefault(kind.value, [])
            if handler not in hooks:
                hooks.append(handler)

    def on(self, *types: EventType) -> Callable[[Handler], Handler]:
        """Decorator form of `add`."""

        def register(handler: Handler) -> Handler:
            self.add(types, handler)
            return handler

        return register

    def for_type(self, event_type: str) -> tuple[Handler, ...]:
        return tuple(self._by_type.get(event_type, ()))

    def types(self) -> frozenset[str]:
        return frozenset(t for t, hooks in self._by_type.items() if hooks)


REGISTRY = Handlers()
on = REGISTRY.on
