"""Logging that never writes a phone number.

A log-record factory masks anything that looks like a phone number in every
record's final message, whichever logger or handler it goes to, as a net under
the rule that code does not log phone numbers in the first place.
"""

from __future__ import annotations

import logging
from typing import Any

from loyalpos.domain.privacy import redact_phones

_installed = False


def install_redaction() -> None:
    global _installed
    if _installed:
        return
    base = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = base(*args, **kwargs)
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            return record
        redacted = redact_phones(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
