"""No token in any log line: every record made in the process (uvicorn's access log of
``/ws/codex?token=...`` included) has ``token=`` values and bearer credentials replaced before
any handler formats it. Installed as the log-record factory, so it holds for every logger and
handler, whoever configured them."""

from __future__ import annotations

import logging
import re
from typing import Any

_TOKEN = re.compile(r"((?:^|[?&;\s\"'])(?:access_)?token=)[^&\s\"';]+", re.IGNORECASE)
_BEARER = re.compile(r"(Bearer\s+)[A-Za-z0-9\-_.~+/=]+", re.IGNORECASE)
REDACTED = "[redacted]"


def redact(text: str) -> str:
    if "token=" not in text.lower() and "bearer" not in text.lower():
        return text
    return _BEARER.sub(rf"\g<1>{REDACTED}", _TOKEN.sub(rf"\g<1>{REDACTED}", text))


def _clean(value: Any) -> Any:
    return redact(value) if isinstance(value, str) else value


def install() -> None:
    """Idempotent: wrap the current record factory once."""
    current = logging.getLogRecordFactory()
    if getattr(current, "redacts_tokens", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        record.msg = _clean(record.msg)
        if isinstance(record.args, tuple):
            record.args = tuple(_clean(a) for a in record.args)
        elif isinstance(record.args, dict):
            record.args = {k: _clean(v) for k, v in record.args.items()}
        return record

    factory.redacts_tokens = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
