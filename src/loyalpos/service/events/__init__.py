"""After payment, off the cashier's path: the worker reads the outbox and hands
each event to the handlers registered for its type (`handlers`), then to the
webhook subscriptions (`webhooks`); triggered campaigns (`campaigns`) are one
such handler.

Importing this package registers the campaign handlers, so whatever runs the
worker (the CLI, a test, an embedding application) gets them without the worker
importing campaigns: the worker knows only the registry."""

from loyalpos.service.events import campaigns as campaigns  # registers its handlers
