"""Use cases. Each public function is one transaction that commits in one place."""
