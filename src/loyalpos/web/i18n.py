"""The pages' languages: 简体中文 unless the browser asks for English.

Message catalogues are the .po files under `locale/`, compiled when this module
is imported (babel) into in-memory gettext objects: no compiled .mo files are
kept in the repository and nothing has to be built before the server starts.
The message ids are the English texts, so English needs no translations.
"""

from __future__ import annotations

import gettext
from io import BytesIO
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

DEFAULT = "zh_Hans"
LANGUAGES = ("zh_Hans", "en")
# What the `lang` query parameter and cookie may say, to a language above.
_NAMES = {"zh": "zh_Hans", "zh_hans": "zh_Hans", "zh_cn": "zh_Hans", "en": "en"}
_LOCALE = Path(__file__).parent / "locale"


def _compile(language: str) -> gettext.GNUTranslations:
    with (_LOCALE / language / "LC_MESSAGES" / "messages.po").open("rb") as po:
        catalog = read_po(po, locale=language.replace("_Hans", ""))
    mo = BytesIO()
    write_mo(mo, catalog)
    mo.seek(0)
    return gettext.GNUTranslations(mo)


TRANSLATIONS: dict[str, gettext.GNUTranslations] = {lang: _compile(lang) for lang in LANGUAGES}


def named(value: str | None) -> str | None:
    """The language a `lang` parameter or cookie names, None if none we have."""
    if not value:
        return None
    return _NAMES.get(value.strip().lower().replace("-", "_"))


def from_accept_language(header: str | None) -> str | None:
    """The first language of an Accept-Language header (by q) that we have."""
    if not header:
        return None
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(header.split(",")):
        tag, _, params = part.strip().partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        ranked.append((-q, index, tag.strip().lower()))
    for negative_q, _, tag in sorted(ranked):
        if negative_q >= 0:
            continue
        if tag.startswith("zh"):
            return "zh_Hans"
        if tag.startswith("en"):
            return "en"
    return None
