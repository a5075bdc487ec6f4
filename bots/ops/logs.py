"""One logging set-up for every impasto process: ``IMPASTO_LOG_FORMAT=json`` (one JSON object per line) or ``console``.

structlog's ``ProcessorFormatter`` renders the standard library's records, so impasto's own loggers, arq's,
discord.py's, python-telegram-bot's, httpx's and ``warnings`` (captured) all come out in the one format, with the
context bound in ``structlog.contextvars`` (job id, user, server, platform: the worker binds them per job in
``impasto.queue.metrics.on_job_start``) merged in. Chosen over a hand-written ``logging.Formatter`` because the
context variables, the exception rendering and both renderers are its job already, and over python-json-logger
because that one has no context binding.

Secrets never reach a line: every value passes ``Redactor``, which blanks the configured secrets (tokens, database
and Redis passwords; as written and URL-encoded) and anything shaped like a Telegram bot token (Bot API URLs carry
it) or a Discord token. It is the one redaction of the process: ``install_redaction`` hands more secrets to the
handler ``configure_logging`` made and wraps any other handler's formatter (``RedactingFormatter``), and
``impasto.bots.startup.guarded_start`` (a failed start printed to the terminal) redacts with it too.
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Any, Literal
from urllib.parse import quote, urlsplit

import structlog
from pydantic import SecretStr

FORMAT_ENV = "IMPASTO_LOG_FORMAT"
LogFormat = Literal["json", "console"]

REDACTED = "[redacted]"
#: What ``configure_logging`` sets in this process's environment (unless already set) when its lines go to no terminal.
QUIET_ENV = {"HF_HUB_DISABLE_PROGRESS_BARS": "1", "TQDM_DISABLE": "1", "DIFFUSERS_NO_ADVISORY_WARNINGS": "1"}
_HANDLER_NAME = "impasto"

# Telegram: "<bot id>:<35 characters>"; Discord: three base64url parts, the first the user id in base64.
# Not \b before the Telegram one: in a Bot API URL it follows "bot" with no word boundary ("/bot123:AA…/sendPhoto").
_TOKEN_SHAPES = re.compile(r"(?<!\d)\d{5,}:[A-Za-z0-9_-]{30,}|\b[MNO][A-Za-z\d_-]{23,27}\.[\w-]{6}\.[\w-]{27,}")


def format_from_env(environ: Mapping[str, str] | None = None) -> LogFormat:
    value = (environ if environ is not None else os.environ).get(FORMAT_ENV, "").strip().lower() or "console"
    if value not in ("json", "console"):
        raise ValueError(f"{FORMAT_ENV}={value!r}: use json or console")
    return "json" if value == "json" else "console"


class Redactor:
    """A structlog processor: blanks secrets in every string value of an event (the message and the traceback too)."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: list[str] = []
        self.add(secrets)

    def add(self, secrets: Iterable[str]) -> None:
        """Blank these too (each as written and URL-encoded, as a library puts it in a request URL)."""
        # Longest first, so a secret that contains another is blanked whole. Short ones (a 3-letter password) would
        # blank ordinary words: they are left to the shapes and the operator's choice of password.
        forms = {form for s in secrets if len(s) >= 6 for form in (s, quote(s, safe=""))}
        self.secrets = sorted(forms.union(self.secrets), key=len, reverse=True)

    def redact(self, value: str) -> str:
        for secret in self.secrets:
            value = value.replace(secret, REDACTED)
        return _TOKEN_SHAPES.sub(REDACTED, value)

    def __call__(self, _logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
        for key, value in event.items():
            if isinstance(value, str):
                event[key] = self.redact(value)
            elif not isinstance(value, int | float | bool) and value is not None:
                event[key] = self.redact(str(value))
        return event


class RedactingFormatter(logging.Formatter):
    """A handler's own formatter, then the ``Redactor`` over its whole output (message, arguments, traceback)."""

    def __init__(self, inner: logging.Formatter | None, redactor: Redactor) -> None:
        super().__init__()
        self.inner = inner or logging.Formatter()
        self.redactor = redactor

    def format(self, record: logging.LogRecord) -> str:
        return self.redactor.redact(self.inner.format(record))


class _ImpastoFormatter(structlog.stdlib.ProcessorFormatter):
    """``configure_logging``'s formatter; it redacts inside the chain (before JSON escaping), with ``redactor``."""

    def __init__(self, redactor: Redactor, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.redactor = redactor


def install_redaction(secrets: Iterable[str], logger: logging.Logger | None = None) -> None:
    """Blank ``secrets`` in everything the handlers of ``logger`` (default: the root logger) write.

    ``configure_logging``'s handler takes them into its own ``Redactor``; any other handler's formatter is wrapped
    in a ``RedactingFormatter`` (once: a second call adds to the same ``Redactor``)."""
    kept = [s for s in secrets if s]
    for handler in (logger or logging.getLogger()).handlers:
        current = handler.formatter
        if isinstance(current, _ImpastoFormatter | RedactingFormatter):
            current.redactor.add(kept)
        else:
            handler.setFormatter(RedactingFormatter(current, Redactor(kept)))


def _drop_formatted_message(_logger: Any, _method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    # logging.Formatter stores the rendered text on the record as ``message``; ExtraAdder would copy it beside
    # ``event`` (the same text twice on every line).
    event.pop("message", None)
    return event


def secrets_of(settings: Any) -> list[str]:
    """Every secret in a ``Settings``: its ``SecretStr`` fields and the passwords inside its database and Redis URLs."""
    found: list[str] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name, None)
        if isinstance(value, SecretStr):
            found.append(value.get_secret_value())
        elif isinstance(value, str) and "://" in value:
            password = urlsplit(value).password
            if password:
                found.append(password)
    return found


def configure_logging(
    fmt: LogFormat | None = None, *, level: int = logging.INFO, secrets: Iterable[str] = (), stream: Any = None
) -> None:
    """Send every log record of this process to ``stream`` (stderr) in ``fmt`` (``IMPASTO_LOG_FORMAT``)."""
    fmt = fmt or format_from_env()
    redactor = Redactor(secrets)
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.stdlib.ExtraAdder(),  # logger.info(..., extra={...}) fields become keys
        _drop_formatted_message,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(ensure_ascii=False)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=False)
    )
    formatter = _ImpastoFormatter(
        redactor,
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,  # the traceback becomes a string field: redacted, one JSON line
            redactor,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(formatter)
    handler.set_name(_HANDLER_NAME)
    root = logging.getLogger()
    for old in list(root.handlers):
        if old.get_name() == _HANDLER_NAME:  # a second call replaces ours and leaves others' (pytest's) alone
            root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)
    # httpx logs every request URL at INFO, and Bot API URLs hold the token: redacted anyway, and too chatty.
    logging.getLogger("httpx").setLevel(max(level, logging.WARNING))
    # Alembic's start-up check (require_migrated) announces its plugins and dialect at INFO on every start.
    logging.getLogger("alembic").setLevel(max(level, logging.WARNING))
    structlog.configure(
        # structlog's own loggers: the shared chain without the two steps that only concern stdlib records.
        processors=[*shared[:4], structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    if not _is_terminal(stream or sys.stderr):
        # Download and step progress bars (tqdm, huggingface_hub) write carriage-return lines no log reader can use.
        for key, value in QUIET_ENV.items():
            os.environ.setdefault(key, value)


def _is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty()) if callable(isatty) else False
