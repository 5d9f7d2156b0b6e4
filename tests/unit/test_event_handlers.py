"""The handler registry: by event type, in registration order, once per handler."""

from loyalpos.service.base.outbox import EventType
from loyalpos.service.events.handlers import Handlers


def test_handlers_run_for_the_types_they_registered_for_in_order() -> None:
    registry = Handlers()
    calls: list[str] = []

    @registry.on(EventType.ORDER_PAID, EventType.ORDER_REFUNDED)
    def first(ctx, conn, event, now) -> None:  # type: ignore[no-untyped-def]
        calls.append("first")

    def second(ctx, conn, event, now) -> None:  # type: ignore[no-untyped-def]
        calls.append("second")

    registry.add([EventType.ORDER_PAID], second)
    registry.add([EventType.ORDER_PAID], second)  # a module imported twice registers once
    assert registry.for_type("order.paid") == (first, second)
    assert registry.for_type("order.refunded") == (first,)
    assert registry.for_type("member.created") == ()
    assert registry.types() == {"order.paid", "order.refunded"}
