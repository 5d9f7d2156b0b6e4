"""Triggered campaigns' firings and tags, webhook subscriptions and deliveries over
HTTP; their bodies in `schemas`."""
