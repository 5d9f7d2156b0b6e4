"""Every text of the pages is in the 简体中文 catalogue: templates, the Python
modules and the script use message ids only, so a text missing from the .po would show in English."""

from __future__ import annotations

from pathlib import Path

from babel.messages.extract import extract_from_dir
from babel.messages.pofile import read_po

import loyalpos.web
from loyalpos.web.till_messages import SCRIPT_MESSAGES

WEB = Path(loyalpos.web.__file__).parent


def _used() -> set[str]:
    """The message ids of the templates, of the Python modules and of the
    selling screen's script (web/till_messages.py)."""
    method_map = [("templates/**.html", "jinja2"), ("**.py", "python")]
    return set(SCRIPT_MESSAGES.values()) | {
        message if isinstance(message, str) else message[0]
        for _file, _line, message, _comments, _context in extract_from_dir(
            str(WEB), method_map=method_map, keywords={"_": None, "gettext": None}
        )
    }


def test_every_text_of_the_pages_is_translated() -> None:
    with (WEB / "locale/zh_Hans/LC_MESSAGES/messages.po").open("rb") as po:
        catalog = read_po(po)
    translated = {m.id for m in catalog if m.id and m.string}
    used = _used()
    assert len(used) > 30
    assert used - translated == set()


def test_the_english_catalogue_has_the_same_ids() -> None:
    with (WEB / "locale/en/LC_MESSAGES/messages.po").open("rb") as po:
        english = {m.id for m in read_po(po) if m.id}
    assert _used() - english == set()
