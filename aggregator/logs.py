"""One line per event: readable on a terminal, JSON lines for machines; stderr and var/log/."""

from __future__ import annotations

import json
import logging
import logging.handlers
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LOGGER = "aggregator"


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "event": record.getMessage(),
        }
        data.update(getattr(record, "fields", {}) or {})
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, ensure_ascii=False, default=str)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        stamp = datetime.fromtimestamp(record.created, UTC).strftime("%Y-%m-%d %H:%M:%S")
        fields = " ".join(f"{k}={v}" for k, v in (getattr(record, "fields", {}) or {}).items()
                          if v is not None)
        line = f"{stamp} {record.levelname:<7} {record.getMessage()}" + (f"  {fields}" if fields else "")
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup(log_dir: Path | None, fmt: str = "auto", level: int = logging.INFO) -> logging.Logger:
    """Log to stderr (text on a terminal, else as asked) and to log_dir/aggregator.log (rotated)."""
    logger = logging.getLogger(LOGGER)
    logger.setLevel(level)
    logger.handlers.clear()
    logger.propagate = False
    use_json = fmt == "json" or (fmt == "auto" and not sys.stderr.isatty())
    formatter: logging.Formatter = JsonFormatter() if use_json else TextFormatter()
    stderr = logging.StreamHandler(sys.stderr)
    stderr.setFormatter(formatter)
    logger.addHandler(stderr)
    if log_dir is not None:
        log_dir.mkdir(parents=True, exist_ok=True)
        rotating = logging.handlers.RotatingFileHandler(
            log_dir / "aggregator.log", maxBytes=10 * 1024 * 1024, backupCount=5, encoding="utf-8")
        rotating.setFormatter(JsonFormatter() if use_json else TextFormatter())
        logger.addHandler(rotating)
    return logger


def event(logger: logging.Logger, name: str, fields: dict[str, Any] | None = None,
          level: int = logging.INFO) -> None:
    logger.log(level, name, extra={"fields": fields or {}})
