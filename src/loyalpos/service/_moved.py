"""Old import paths of the service modules, redirected for one release.

In 0.1 the service layer was one flat folder (`loyalpos.service.points`,
`loyalpos.service.worker`, ...). Code outside loyalpos may import those names
(docs/webhooks.md showed `from loyalpos.service.worker import ...`), so an import
of an old path still works: it gets the moved module itself (the same object,
not a copy, so monkeypatching and registries behave) and a DeprecationWarning
naming the new path. Removed in 0.3.
"""

from __future__ import annotations

import importlib
import importlib.abc
import importlib.machinery
import sys
import warnings
from types import ModuleType

MOVED: dict[str, str] = {
    "apikeys": "admin.apikeys",
    "booking": "till._booking",
    "brands": "base.brands",
    "campaigns": "events.campaigns",
    "checkout": "till.checkout",
    "checkout_inputs": "till._inputs",
    "checkout_model": "till._model",
    "context": "base.context",
    "coupons": "loyalty.coupons",
    "demo": "admin.demo",
    "holds": "till.holds",
    "importer": "loyalty.importer",
    "jobs": "loyalty.jobs",
    "members": "loyalty.members",
    "outbox": "base.outbox",
    "phones": "loyalty.phones",
    "points": "loyalty.points",
    "quoting": "till._quoting",
    "reconcile": "till.reconcile",
    "refunds": "till.refunds",
    "rulesets": "rulebook.rulesets",
    "webhooks": "events.webhooks",
    "worker": "events.worker",
}

_PREFIX = "loyalpos.service."


class _Alias(importlib.abc.Loader):
    def __init__(self, target: str) -> None:
        self.target = target
        self.spec: importlib.machinery.ModuleSpec | None = None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> ModuleType:
        module = importlib.import_module(self.target)
        self.spec = module.__spec__
        return module

    def exec_module(self, module: ModuleType) -> None:
        """The moved module ran when it was imported under its new name; only
        give it back the spec the import system replaced with the alias's."""
        module.__spec__ = self.spec


class MovedFinder(importlib.abc.MetaPathFinder):
    def find_spec(
        self, fullname: str, path: object = None, target: object = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(_PREFIX):
            return None
        new = MOVED.get(fullname[len(_PREFIX) :])
        if new is None:
            return None
        warnings.warn(
            f"{fullname} moved to {_PREFIX}{new}; the old path goes in loyalpos 0.3",
            DeprecationWarning,
            stacklevel=2,
        )
        return importlib.machinery.ModuleSpec(fullname, _Alias(_PREFIX + new))


def install() -> None:
    if not any(isinstance(f, MovedFinder) for f in sys.meta_path):
        sys.meta_path.append(MovedFinder())
