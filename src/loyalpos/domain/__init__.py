"""Pure rules and arithmetic: standard library only, no I/O, no clock.

Time, ids and secrets come in as arguments so that every function here is
deterministic and can be tested in microseconds.
"""
