"""loyalpos: a member-aware checkout and loyalty engine for physical stores and chains."""

__version__ = "0.1.0"
