"""Log lines as JSON (production: ``LOG_FORMAT=json``, the default in settings.prod), each
with the correlation id, for a log pipeline (Loki, Elastic, CloudWatch) to search by.

A line: ``{"ts", "level", "logger", "message", "correlation_id", ...}`` plus the structured
``extra`` a caller gave (the Graph client's ``graph`` dict) and ``exc`` with the traceback.
Secrets never get here: ``workplace.access_log.RedactSecrets`` runs on the handler first.
"""

from __future__ import annotations

import datetime as dt
import json
import logging

from . import correlation

# Attributes every LogRecord has: what is left over is a caller's ``extra``.
_STANDARD = set(vars(logging.LogRecord("x", 0, "x", 0, "x", None, None))) | {"message", "asctime", "correlation_id"}


class CorrelationFilter(logging.Filter):
    """Puts the bound correlation id on every record (``%(correlation_id)s`` in plain format)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not getattr(record, "correlation_id", ""):
            record.correlation_id = correlation.current() or "-"
        return True


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": dt.datetime.fromtimestamp(record.created, tz=dt.UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "correlation_id": getattr(record, "correlation_id", "") or correlation.current() or None,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exc"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, ensure_ascii=False)
