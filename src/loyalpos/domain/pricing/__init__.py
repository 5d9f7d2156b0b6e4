"""The benefit engine: price a cart with every benefit a member may use.

`quote()` in `engine.py` is the entry point: a pure, deterministic function of
the rule set, the member (tier, points, wallet), the cart and the options, with
the time passed in. See docs/benefit-engine.md for the order of application
and the search for the best combination.
"""
