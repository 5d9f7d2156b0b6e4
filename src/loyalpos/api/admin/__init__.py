"""Running the brand over HTTP: health, API keys, rule-set versions; their bodies
in `schemas`."""
