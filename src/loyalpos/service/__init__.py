"""Use cases. Each public function is one transaction that commits in one place.

Grouped by what a person looks for (docs/architecture.md):
`base` (unit of work, tenancy, outbox), `rulebook` (rule-set versions),
`loyalty` (members, points, coupons), `till` (identify, quote, confirm, refund,
holds, reconciliation), `events` (worker, campaigns, webhooks) and `admin`
(keys, demo). Old flat import paths still work for one release (`_moved`)."""

from loyalpos.service import _moved

_moved.install()
