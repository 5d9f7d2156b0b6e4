"""Phone numbers are shown masked, and logs never carry a full one."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from hypothesis import given
from hypothesis import strategies as st

from loyalpos.api.app import create_app
from loyalpos.config import Settings
from loyalpos.db.engine import make_engine
from loyalpos.db.migrate import upgrade
from loyalpos.domain.privacy import mask_phone, redact_phones
from loyalpos.logs import install_redaction
from loyalpos.service.admin import apikeys
from loyalpos.service.admin.apikeys import Scope
from loyalpos.service.base import brands
from loyalpos.service.base.context import Context

PHONE = "13800138000"


@pytest.mark.parametrize(
    ("phone", "masked"),
    [
        ("13800138000", "138****8000"),
        ("+8613800138000", "138****8000"),
        ("138-0013-8000", "138****8000"),
        ("138 0013 8000", "138****8000"),
        ("+12025550143", "120****0143"),
        ("12345678", "123*5678"),
        ("1234567", "*******"),
        ("123", "***"),
        ("", ""),
    ],
)
def test_mask_phone(phone: str, masked: str) -> None:
    assert mask_phone(phone) == masked


@given(st.text(alphabet="0123456789", min_size=8, max_size=15))
def test_mask_phone_keeps_three_and_four_digits_and_hides_the_rest(digits: str) -> None:
    masked = mask_phone(digits)
    assert len(masked) == len(digits)
    assert masked[:3] == digits[:3] and masked[-4:] == digits[-4:]
    assert masked[3:-4] == "*" * (len(digits) - 7)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("call 13800138000 now", "call 138****8000 now"),
        ("phone=+8613800138000;", "phone=138****8000;"),
        ("tel:13912345678,13700001111", "tel:139****5678,137****1111"),
        ("intl +12025550143 ok", "intl 120****0143 ok"),
        ("会员13800138000注册", "会员138****8000注册"),
        ("('+8613800138000', 'x')", "('138****8000', 'x')"),
    ],
)
def test_redact_phones_masks_every_number_in_a_line(text: str, expected: str) -> None:
    assert redact_phones(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "order 202401011380013800099 paid",  # a longer run of digits is not a phone
        "card 8524296980788032",
        "12800138000",  # 12x is no mobile prefix
        "1380013800",  # ten digits
        "member 42 earned 13800 points",
        "",
    ],
)
def test_redact_phones_leaves_other_numbers_alone(text: str) -> None:
    assert redact_phones(text) == text


@pytest.fixture
def redacting() -> None:
    install_redaction()


def test_a_log_record_with_a_phone_is_masked(
    redacting: None, caplog: pytest.LogCaptureFixture
) -> None:
    log = logging.getLogger("loyalpos.test")
    with caplog.at_level(logging.DEBUG):
        log.info("member with phone %s registered", PHONE)
        log.debug("raw message +86%s", PHONE)
        log.warning("dict %(p)s", {"p": PHONE})
        log.info("no phone here: %d points", 13800)
    messages = [r.getMessage() for r in caplog.records]
    assert messages == [
        "member with phone 138****8000 registered",
        "raw message 138****8000",
        "dict 138****8000",
        "no phone here: 13800 points",
    ]
    assert PHONE not in caplog.text


def test_a_logged_traceback_with_a_phone_is_masked(
    redacting: None, caplog: pytest.LogCaptureFixture
) -> None:
    log = logging.getLogger("loyalpos.test")
    with caplog.at_level(logging.ERROR):
        try:
            raise ValueError(f"duplicate key (phone)=(+86{PHONE})")
        except ValueError:
            log.exception("could not register")
    assert "ValueError: duplicate key (phone)=(138****8000)" in caplog.text
    assert PHONE not in caplog.text


def test_install_redaction_twice_installs_one_factory(redacting: None) -> None:
    factory = logging.getLogRecordFactory()
    install_redaction()
    assert logging.getLogRecordFactory() is factory


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    url = f"sqlite:///{tmp_path / 'privacy.db'}"
    ctx = Context(make_engine(url), Settings(env="test", database_url=url, secret_key="k" * 40))
    upgrade(ctx.engine)
    brand = brands.create_brand(ctx, "a", "Brand A")
    key = apikeys.create_key(ctx, brand.id, Scope.HQ, "test").secret
    with TestClient(
        create_app(ctx),
        raise_server_exceptions=False,
        headers={"Authorization": f"Bearer {key}"},
    ) as test_client:
        yield test_client
    ctx.engine.dispose()


def test_registering_through_the_api_at_debug_never_logs_the_full_number(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    # With its logger at DEBUG too, SQLAlchemy logs every statement with its
    # parameters, so the number does reach the logging system: it must come out
    # masked.
    with caplog.at_level(logging.DEBUG), caplog.at_level(logging.DEBUG, logger="sqlalchemy"):
        created = client.post("/v1/members", json={"phone": PHONE, "name": "张三"})
        assert created.status_code == 201, created.text
        again = client.post("/v1/members", json={"phone": PHONE, "name": "张三"})
        assert again.status_code == 409
        found = client.post("/v1/members/lookup", json={"phone": PHONE})
        assert found.status_code == 200
    assert any("138****8000" in r.getMessage() for r in caplog.records), "SQL was not logged"
    for record in caplog.records:
        assert PHONE not in record.getMessage(), record.name
    assert PHONE not in caplog.text
