"""Old flat import paths of the service layer still work for one release, as the
very same modules, with a DeprecationWarning that names the new path."""

import importlib
import subprocess
import sys

import pytest

from loyalpos.service import _moved


@pytest.mark.parametrize("old", sorted(_moved.MOVED))
def test_an_old_path_gives_the_moved_module_and_warns(old: str) -> None:
    new = importlib.import_module(f"loyalpos.service.{_moved.MOVED[old]}")
    sys.modules.pop(f"loyalpos.service.{old}", None)
    with pytest.warns(DeprecationWarning, match=f"loyalpos.service.{_moved.MOVED[old]}"):
        aliased = importlib.import_module(f"loyalpos.service.{old}")
    assert aliased is new
    assert new.__spec__ is not None and new.__spec__.name == new.__name__


def test_the_documented_handler_import_of_0_1_runs_in_a_fresh_process() -> None:
    """docs/webhooks.md of 0.1 showed this import; a hook appended still runs."""
    code = (
        "import warnings; warnings.simplefilter('error')\n"
        "try:\n"
        "    from loyalpos.service.worker import HANDLERS, OutboxEvent\n"
        "except DeprecationWarning as w:\n"
        "    print('warned:', w)\n"
        "warnings.simplefilter('ignore')\n"
        "from loyalpos.service.worker import HANDLERS, OutboxEvent, dispatch_outbox\n"
        "from loyalpos.service.events import worker\n"
        "assert HANDLERS is worker.HANDLERS\n"
        "print('ok', OutboxEvent.__module__)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "warned: loyalpos.service.worker moved to loyalpos.service.events.worker" in out
    assert "ok loyalpos.service.base.outbox" in out
