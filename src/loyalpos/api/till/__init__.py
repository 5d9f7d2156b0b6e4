"""The till's HTTP side: identify, quote, confirm, orders, refunds, late orders
(`checkout`, with the fast path in `fastpath` and its threads in `threads`),
held carts (`holds`) and the POS reconciliation (`reconcile`); their bodies in
`schemas`."""
