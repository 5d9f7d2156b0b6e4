"""What every context stands on: the unit of work (`context`), the tenancy every
row belongs to (`brands`: brands and the one resolver of a store within a
brand), and the outbox with its event types (`outbox`), written in the same
transaction as the change an event describes. Imports nothing of the other
contexts."""
