"""Rule sets as HQ writes them (YAML / JSON), validated with pydantic and
converted into the engine's frozen domain classes."""
