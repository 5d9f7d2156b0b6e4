"""`loyalpos simulate`: price one cart under a rule set, without a database."""

from __future__ import annotations

from loyalpos.cli.common import DocFile, print_json
from loyalpos.cli.errors import guarded


@guarded
def simulate(file: DocFile) -> None:
    """Price one cart under a rule set (YAML or JSON) and print the quote as JSON."""
    # Imported here: the pricing engine is needed by this command only.
    from loyalpos.rules.documents import read_file
    from loyalpos.rules.simulate import simulate_text

    print_json(simulate_text(read_file(file)))
