"""Rule and simulation documents from outside (a file, a request body) to plain
data, with the limits checked before the work.

HQ's files are YAML or JSON and come from anyone with the CLI or an HQ key, so
every way a file can be wrong ends in an `InvalidInput` with a documented code
(docs/simulate.md), never in a traceback, a long wait or a big allocation:

- `unreadable`: no such file, a directory, no permission;
- `unparseable`: not UTF-8 text (a UTF-8 byte-order mark is allowed), empty,
  bad YAML/JSON, a recursive alias, or not a mapping at the top;
- `too_large`: more than `MAX_BYTES` bytes, nesting deeper than `MAX_DEPTH`,
  or more than `MAX_VALUES` values, aliases counted as what they expand to (a
  YAML "billion laughs" is refused after reading a few hundred bytes of events).

The size is checked before reading, depth and values while scanning the YAML
events (libyaml's event parser keeps its own stack, so nesting costs no Python
recursion) and before anything is built; only then is the document loaded.
JSON bodies parsed elsewhere (the API) pass through `check_shape`, the same
limits on data already in memory.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from loyalpos.domain.errors import InvalidInput

MAX_BYTES = 1_000_000
"""The largest file: the API's request body limit (LOYALPOS_MAX_BODY_BYTES' default)."""
MAX_DEPTH = 32
"""Nesting of mappings and lists; a real document needs about 6."""
MAX_VALUES = 100_000
"""Scalars, mappings and lists, each alias counted as its expansion; a rule set
with a thousand coupons and a 500-line cart with a 1,000-coupon wallet is ~50,000."""

_Loader: type[Any] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_UTF16_32_BOMS = (
    codecs.BOM_UTF32_LE,
    codecs.BOM_UTF32_BE,
    codecs.BOM_UTF16_LE,
    codecs.BOM_UTF16_BE,
)


def read_file(path: Path, max_bytes: int = MAX_BYTES) -> str:
    """The text of a document file: at most `max_bytes` bytes of UTF-8 (the CSV
    of a member import may be larger than a rule document)."""
    try:
        with path.open("rb") as handle:
            raw = handle.read(max_bytes + 1)
    except FileNotFoundError:
        raise InvalidInput(
            f"文件不存在 (no such file: {path})", code="unreadable", path=str(path)
        ) from None
    except IsADirectoryError:
        raise InvalidInput(
            f"这是一个目录，不是文件 (a directory, not a file: {path})",
            code="unreadable",
            path=str(path),
        ) from None
    except OSError as exc:
        raise InvalidInput(
            f"无法读取文件 (cannot read {path}: {exc.strerror or exc})",
            code="unreadable",
            path=str(path),
        ) from None
    if len(raw) > max_bytes:
        raise _too_large(
            "bytes", max_bytes, f"文件超过 {max_bytes} 字节 (larger than {max_bytes} bytes)"
        )
    return decode(raw)


def decode(raw: bytes) -> str:
    """UTF-8 text, without a leading byte-order mark (Windows editors write one)."""
    if raw.startswith(_UTF16_32_BOMS):
        raise InvalidInput(
            "文件是 UTF-16/UTF-32 编码，请另存为 UTF-8 (the file is UTF-16/UTF-32; save it as UTF-8)",
            code="unparseable",
        )
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            f"文件不是 UTF-8 编码 (not UTF-8 text: byte 0x{raw[exc.start]:02x} "
            f"at offset {exc.start}); 请另存为 UTF-8 (save it as UTF-8)",
            code="unparseable",
            offset=exc.start,
        ) from None


def load_text(text: str) -> Any:
    """YAML (a superset of JSON) to plain data, within the limits."""
    if len(text) > MAX_BYTES and len(text.encode("utf-8")) > MAX_BYTES:
        raise _too_large(
            "bytes", MAX_BYTES, f"文件超过 {MAX_BYTES} 字节 (larger than {MAX_BYTES} bytes)"
        )
    try:
        _check_events(yaml.parse(text, Loader=_Loader))
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        if "nesting depth" in str(exc):
            # libyaml's own limit (1,000), met while scanning ahead of our count.
            raise _too_deep() from None
        raise InvalidInput(
            f"YAML/JSON 格式错误 (cannot parse): {exc}", code="unparseable"
        ) from None
    if data is None:
        raise InvalidInput("文件为空 (the document is empty)", code="unparseable")
    if not isinstance(data, dict):
        raise InvalidInput(
            "文件顶层须为键值映射 (the document must be a mapping, e.g. `rules: ...`)",
            code="unparseable",
        )
    return data


def check_shape(data: Any) -> None:
    """The depth and value limits on data already in memory (a parsed JSON body),
    walked without recursion and stopped at the first limit passed."""
    values = 0
    pending: list[tuple[Any, int]] = [(data, 0)]
    while pending:
        item, depth = pending.pop()
        values += 1
        if values > MAX_VALUES:
            raise _too_many()
        if isinstance(item, dict | list):
            if depth + 1 > MAX_DEPTH:
                raise _too_deep()
            children = item.values() if isinstance(item, dict) else item
            pending.extend((child, depth + 1) for child in children)
            if isinstance(item, dict):
                values += len(item)  # the keys
            if values > MAX_VALUES:
                raise _too_many()


def _check_events(events: Iterable[yaml.Event]) -> None:
    """Depth and values of a YAML event stream, aliases counted as their anchors'
    size, before any node is built."""
    values = 0
    depth = 0
    # Per open collection: its anchor (or None), the value count and depth at its
    # start, and the deepest level reached inside it.
    open_: list[tuple[str | None, int, int, int]] = []
    sizes: dict[str, tuple[int, int]] = {}  # anchor -> (values, relative depth)
    for event in events:
        if isinstance(event, yaml.CollectionStartEvent):
            depth += 1
            if depth > MAX_DEPTH:
                raise _too_deep()
            open_.append((event.anchor, values, depth, depth))
            values += 1
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, start, at, deepest = open_.pop()
            if anchor is not None:
                sizes[anchor] = (values - start, deepest - at + 1)
            if open_:
                a, s, d, inner = open_[-1]
                open_[-1] = (a, s, d, max(inner, deepest))
            depth -= 1
        elif isinstance(event, yaml.ScalarEvent):
            values += 1
            if event.anchor is not None:
                sizes[event.anchor] = (1, 0)
        elif isinstance(event, yaml.AliasEvent):
            if event.anchor not in sizes:
                raise InvalidInput(
                    f"别名 *{event.anchor} 未定义或指向自身 "
                    f"(alias *{event.anchor} is undefined or refers to itself)",
                    code="unparseable",
                )
            size, below = sizes[event.anchor]
            values += size
            if depth + below > MAX_DEPTH:
                raise _too_deep()
            if open_:
                a, s, d, inner = open_[-1]
                open_[-1] = (a, s, d, max(inner, depth + below))
        if values > MAX_VALUES:
            raise _too_many()


def _too_large(limit: str, maximum: int, message: str) -> InvalidInput:
    return InvalidInput(message, code="too_large", limit=limit, max=maximum)


def _too_deep() -> InvalidInput:
    return _too_large(
        "depth", MAX_DEPTH, f"嵌套超过 {MAX_DEPTH} 层 (nested deeper than {MAX_DEPTH} levels)"
    )


def _too_many() -> InvalidInput:
    return _too_large(
        "values",
        MAX_VALUES,
        f"超过 {MAX_VALUES} 个值，别名按展开计 "
        f"(more than {MAX_VALUES} values, aliases counted as expanded)",
    )
