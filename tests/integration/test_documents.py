"""Bad rule and simulation files (issue 11, item 10): every one answers the
documented JSON error and exits 1, without a traceback, quickly, and the limits
(size, nesting, values with aliases expanded) hold before the work, for
`loyalpos simulate`, `loyalpos rules import`, POST /v1/simulate and POST /v1/rules.
"""

from __future__ import annotations

import codecs
import json
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from loyalpos.api.app import create_app
from loyalpos.cli import app as cli
from loyalpos.rules import documents
from loyalpos.service.admin import apikeys
from loyalpos.service.admin.apikeys import Scope
from loyalpos.service.base import brands
from loyalpos.service.base.context import Context

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "05_threshold_coupon.yaml"
ROOT = Path(__file__).resolve().parents[2]


def _billion_laughs() -> str:
    text = 'a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]\n'
    names = "abcdefghij"
    for prev, name in zip(names, names[1:], strict=False):
        text += f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]\n"
    return text + "rules: *j\n"


def _cart_lines(n: int) -> str:
    """A simulation file with `n` cart lines, one per line of text (the issue's probe)."""
    line = "    - {sku: s%d, category: c, unit_price_fen: 1000, qty: 1}\n"
    head = "rules: {}\ncart:\n  store: S1\n  time: 2024-06-05T12:30\n  lines:\n"
    return head + "".join(line % i for i in range(n))


# name -> (how to make the path, expected code, expected detail.limit or None)
BAD_FILES: dict[str, tuple[Callable[[Path], Path], str, str | None]] = {}


def bad(name: str, code: str, limit: str | None = None) -> Callable[[Any], Any]:
    def register(make: Callable[[Path], Path]) -> Callable[[Path], Path]:
        BAD_FILES[name] = (make, code, limit)
        return make

    return register


def _write(path: Path, data: str | bytes) -> Path:
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.write_bytes(data)
    return path


@bad("not utf-8 (latin-1)", "unparseable")
def _latin1(d: Path) -> Path:
    return _write(d / "latin1.yaml", "cart: {store: café}\n".encode("latin-1"))


@bad("utf-16 with a byte-order mark", "unparseable")
def _utf16(d: Path) -> Path:
    return _write(d / "utf16.yaml", codecs.BOM_UTF16_LE + EXAMPLE.read_text().encode("utf-16-le"))


@bad("deeply nested yaml (flow)", "too_large", "depth")
def _deep_flow(d: Path) -> Path:
    return _write(d / "deep.yaml", "rules: " + "[" * 5000 + "]" * 5000)


@bad("deeply nested yaml (block)", "too_large", "depth")
def _deep_block(d: Path) -> Path:
    return _write(d / "deep-block.yaml", "".join(" " * i + "k:\n" for i in range(600)))


@bad("deeply nested json", "too_large", "depth")
def _deep_json(d: Path) -> Path:
    return _write(d / "deep.json", '{"rules": ' + '{"a": ' * 3000 + "1" + "}" * 3001)


@bad("nested just past the limit", "too_large", "depth")
def _just_past(d: Path) -> Path:
    depth = documents.MAX_DEPTH
    return _write(d / "past.json", '{"rules": ' + "[" * depth + "]" * depth + "}")


@bad("a yaml alias bomb (billion laughs)", "too_large", "values")
def _bomb(d: Path) -> Path:
    return _write(d / "bomb.yaml", _billion_laughs())


@bad("a recursive alias", "unparseable")
def _recursive(d: Path) -> Path:
    return _write(d / "loop.yaml", "rules: &r [*r]\n")


@bad("a 10 MB file of 150,000 cart lines", "too_large", "bytes")
def _ten_mb(d: Path) -> Path:
    text = _cart_lines(150_000)
    assert len(text) > 9_000_000
    return _write(d / "huge.yaml", text)


@bad("under the size limit, over the values limit", "too_large", "values")
def _many_values(d: Path) -> Path:
    text = "rules: {}\ncart: {store: S1, lines: [" + ",".join(["1"] * 200_000) + "]}\n"
    assert len(text) < documents.MAX_BYTES
    return _write(d / "values.yaml", text)


@bad("an empty file", "unparseable")
def _empty(d: Path) -> Path:
    return _write(d / "empty.yaml", "")


@bad("only a comment", "unparseable")
def _comment(d: Path) -> Path:
    return _write(d / "comment.yaml", "# nothing here\n")


@bad("a list, not a mapping", "unparseable")
def _a_list(d: Path) -> Path:
    return _write(d / "list.json", "[1, 2, 3]")


@bad("a python tag", "unparseable")
def _tag(d: Path) -> Path:
    return _write(d / "tag.yaml", "rules: !!python/object/apply:os.system [echo hi]\n")


@bad("a directory", "unreadable")
def _directory(d: Path) -> Path:
    (d / "a-directory").mkdir()
    return d / "a-directory"


@bad("a missing file", "unreadable")
def _missing(d: Path) -> Path:
    return d / "missing.yaml"


def _check_error(result: Any, code: str, limit: str | None, took: float) -> dict[str, Any]:
    assert result.exit_code == 1, (result.output, result.exception)
    assert result.stdout == ""
    assert "Traceback" not in result.output
    assert not isinstance(result.exception, Exception) or isinstance(
        result.exception, SystemExit
    ), result.exception
    error = json.loads(result.stderr)["error"]
    assert error["code"] == code, error
    assert error["message"]
    if limit is not None:
        assert error["detail"]["limit"] == limit, error
    assert took < 5, f"took {took:.1f} s"
    return dict(error)


@pytest.mark.parametrize("name", list(BAD_FILES))
def test_simulate_answers_a_bad_file_with_the_documented_json_error(
    name: str, tmp_path: Path
) -> None:
    make, code, limit = BAD_FILES[name]
    path = make(tmp_path)
    started = time.perf_counter()
    result = CliRunner().invoke(cli, ["simulate", str(path)])
    _check_error(result, code, limit, time.perf_counter() - started)


RULE_FILE_CASES = [
    "not utf-8 (latin-1)",
    "deeply nested yaml (flow)",
    "deeply nested json",
    "a yaml alias bomb (billion laughs)",
    "a 10 MB file of 150,000 cart lines",
    "an empty file",
    "a directory",
    "a missing file",
]


def test_rules_import_answers_a_bad_file_with_the_same_errors(
    ctx: Context, runner: CliRunner, tmp_path: Path
) -> None:
    brands.create_brand(ctx, "rf", "Rule file")
    for name in RULE_FILE_CASES:
        make, code, limit = BAD_FILES[name]
        path = make(tmp_path)
        started = time.perf_counter()
        result = runner.invoke(cli, ["rules", "import", "-b", "rf", str(path)])
        _check_error(result, code, limit, time.perf_counter() - started)
    versions = runner.invoke(cli, ["rules", "export", "-b", "rf"])
    assert versions.exit_code != 0  # nothing was saved


def test_a_utf8_byte_order_mark_is_read_as_utf8(tmp_path: Path) -> None:
    plain = CliRunner().invoke(cli, ["simulate", str(EXAMPLE)])
    path = _write(tmp_path / "bom.yaml", codecs.BOM_UTF8 + EXAMPLE.read_bytes())
    with_bom = CliRunner().invoke(cli, ["simulate", str(path)])
    assert plain.exit_code == with_bom.exit_code == 0, with_bom.output
    assert json.loads(with_bom.stdout) == json.loads(plain.stdout)


def test_aliases_within_the_limits_are_fine(tmp_path: Path) -> None:
    text = EXAMPLE.read_text(encoding="utf-8")
    shared = "x-scope: &everywhere {stores: [S001, S002]}\n"
    assert "rules:" in text
    path = _write(tmp_path / "alias.yaml", text)
    assert CliRunner().invoke(cli, ["simulate", str(path)]).exit_code == 0
    # an unknown top-level key is still refused by the model, after the loader took the alias
    path = _write(tmp_path / "alias2.yaml", shared + text)
    result = CliRunner().invoke(cli, ["simulate", str(path)])
    assert result.exit_code == 1
    assert json.loads(result.stderr)["error"]["code"] == "invalid_simulation"


def test_the_limits_are_exact(tmp_path: Path) -> None:
    depth = documents.MAX_DEPTH
    # the top mapping is level 1: a value nested MAX_DEPTH - 1 deeper is allowed
    ok = '{"x": ' + "[" * (depth - 1) + "]" * (depth - 1) + "}"
    assert documents.load_text(ok) == {"x": _nested(depth - 1)}
    documents.check_shape({"x": _nested(depth - 1)})
    with pytest.raises(documents.InvalidInput) as deep:
        documents.check_shape({"x": _nested(depth)})
    assert deep.value.detail == {"limit": "depth", "max": depth}
    many = {"x": list(range(documents.MAX_VALUES))}
    with pytest.raises(documents.InvalidInput) as big:
        documents.check_shape(many)
    assert big.value.detail["limit"] == "values"
    documents.check_shape({"x": list(range(documents.MAX_VALUES - 3))})


def _nested(levels: int) -> Any:
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


# --- time and memory, measured in a process of their own ------------------------------

# The work runs in a child forked by a fresh interpreter: Linux carries a process's
# peak RSS over fork and exec (pytest's own would be measured), but a forked child
# starts a new count, so its getrusage(RUSAGE_SELF) is the command's own peak.
_MEASURE = textwrap.dedent(
    """
    import json, os, resource, sys, time
    from typer.testing import CliRunner
    from loyalpos.cli import app
    import loyalpos.rules.simulate  # imported before the fork, as the command would
    read, write = os.pipe()
    if os.fork() == 0:
        started = time.perf_counter()
        result = CliRunner().invoke(app, ["simulate", sys.argv[1]])
        took = time.perf_counter() - started
        peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        os.write(write, json.dumps({"exit": result.exit_code, "seconds": took,
                                    "peak_mb": peak_mb, "stderr": result.stderr[:300]}).encode())
        os._exit(0)
    os.close(write)
    os.wait()
    print(os.read(read, 100_000).decode())
    """
)


def _measure(path: Path) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        check=True,
    )
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def _near_the_limits(d: Path) -> Path:
    """About 0.8 MB that passes every limit: 500 lines with long names, 400 coupon
    templates, a wallet of 1,000 (expired) coupons."""
    lines = [
        {"sku": f"sku-{i:05d}", "category": "c" * 40, "name": "商品名称" * 100,
         "unit_price_fen": 1000 + i, "qty": 2}
        for i in range(500)
    ]  # fmt: skip
    coupons = [
        {"id": f"c{i}", "name": "代金券" * 10, "kind": "cash", "amount_fen": 100,
         "scope": {"skus": [f"sku-{j:05d}" for j in range(i, i + 5)]}}
        for i in range(400)
    ]  # fmt: skip
    wallet = [
        {"id": f"w{i}", "template": f"c{i % 400}", "expires_at": "2020-01-01T00:00:00"}
        for i in range(1000)
    ]
    doc = {
        "rules": {"points": {"earn": [{"id": "base", "kind": "base", "points_per_yuan": 1}]},
                  "coupons": coupons},
        "member": {"tier": "gold", "points": 1000, "wallet": wallet},
        "cart": {"store": "S1", "time": "2024-06-05T12:30", "lines": lines},
    }  # fmt: skip
    text = json.dumps(doc, ensure_ascii=False)
    assert 500_000 < len(text.encode()) < documents.MAX_BYTES
    return _write(d / "near.json", text)


@pytest.mark.slow
@pytest.mark.serial  # a time bound: run alone, not beside other pytest-xdist workers' load
def test_a_10_mb_file_is_refused_and_a_file_at_the_limits_priced_in_2_s_under_200_mb(
    tmp_path: Path,
) -> None:
    huge = _measure(_ten_mb(tmp_path))
    assert huge["exit"] == 1 and '"too_large"' in huge["stderr"], huge
    values = _measure(_many_values(tmp_path))
    assert values["exit"] == 1 and '"too_large"' in values["stderr"], values
    bomb = _measure(_bomb(tmp_path))
    assert bomb["exit"] == 1 and '"too_large"' in bomb["stderr"], bomb
    near = _measure(_near_the_limits(tmp_path))
    assert near["exit"] == 0, near
    for run in (huge, values, bomb, near):
        assert run["seconds"] < 2, run
        assert run["peak_mb"] < 200, run


# --- the API: the same limits on the documents it takes -------------------------------


@pytest.fixture
def hq(ctx: Context) -> Iterator[tuple[TestClient, dict[str, str]]]:
    brand = brands.create_brand(ctx, "sim", "Sim")
    key = apikeys.create_key(ctx, brand.id, Scope.HQ, "hq").secret
    headers = {"authorization": f"Bearer {key}", "content-type": "application/json"}
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        yield client, headers


@pytest.mark.parametrize("url", ["/v1/simulate", "/v1/rules"])
def test_the_api_refuses_deep_and_huge_documents(
    url: str, hq: tuple[TestClient, dict[str, str]]
) -> None:
    client, headers = hq

    def body(document: str) -> str:
        return document if url == "/v1/simulate" else '{"document": ' + document + "}"

    deep = '{"rules": ' + "[" * 40 + "]" * 40 + "}"
    answer = client.post(url, content=body(deep), headers=headers)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"] == "too_large"
    assert answer.json()["error"]["detail"] == {"limit": "depth", "max": documents.MAX_DEPTH}
    # deeper than Python's JSON parser goes: a 400 in the error shape, not a 500
    deeper = '{"rules": ' + "[" * 5000 + "]" * 5000 + "}"
    answer = client.post(url, content=body(deeper), headers=headers)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "bad_request"
    # many values within the size limit
    many = '{"rules": {}, "cart": [' + ",".join(["1"] * 200_000) + "]}"
    answer = client.post(url, content=body(many), headers=headers)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["detail"]["limit"] == "values"
    # over the body limit: 413 before it is read
    huge = '{"rules": {}, "cart": {"lines": [' + ",".join(['{"sku": "x"}'] * 100_000) + "]}}"
    answer = client.post(url, content=body(huge), headers=headers)
    assert answer.status_code == 413, answer.text
    assert answer.json()["error"]["code"] == "payload_too_large"
