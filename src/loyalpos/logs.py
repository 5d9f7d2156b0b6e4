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
_FORMATTER = logging.Formatter()


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
        if record.exc_info and record.exc_info[0] is not None:
            # A traceback's text (an exception message, SQL parameters) can hold
            # a number too; formatters use a record's exc_text when it is set.
            record.exc_text = redact_phones(_FORMATTER.formatException(record.exc_info))
        return record

    logging.setLogRecordFactory(factory)
    _installed = True
