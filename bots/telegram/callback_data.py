"""What a Telegram button carries: everything needed to serve it, in at most 64 bytes of ``callback_data``.

Buttons must work on any message, from any bot process, after any restart, so the data names the job, the action
and the image index and nothing lives in memory. The kinds share one ``kind:a:b:c`` shape:

- ``j:<action>:<index>:<job_id>`` — a job button (``Action`` value; index 1–4 for U#/V#, 0 otherwise);
- ``d:<index>:<job_id>`` — send the full-resolution file as a document (Telegram recompresses photos);
- ``c:<job_id>`` — ❌ cancel a job that is waiting or being painted (its owner only);
- ``s:<key>:<value>`` — a ``/settings`` panel toggle.

Everything is validated on decode: a client can send any bytes it likes.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from impasto.queue.actions import BUTTONS, Action

MAX_BYTES = 64  # Bot API: callback_data is 1–64 bytes
_JOB_ID = re.compile(r"^[A-Za-z0-9_-]{1,48}$")
_TOKEN = re.compile(r"^[A-Za-z0-9_.-]{1,20}$")


class BadCallbackData(ValueError):
    """The button's data is not one this bot makes (an old format, a forged query, or garbage)."""


@dataclass(frozen=True)
class JobButton:
    action: Action
    job_id: str
    index: int = 0  # 1–4 for grid buttons, 0 for single-image buttons


@dataclass(frozen=True)
class DocumentButton:
    job_id: str
    index: int = 0


@dataclass(frozen=True)
class CancelButton:
    job_id: str


@dataclass(frozen=True)
class SettingsButton:
    key: str
    value: str


Button = JobButton | DocumentButton | CancelButton | SettingsButton


def encode(button: Button) -> str:
    if isinstance(button, JobButton):
        _check_index(button.action, button.index)
        data = f"j:{button.action.value}:{button.index}:{_check_job(button.job_id)}"
    elif isinstance(button, DocumentButton):
        if not 0 <= button.index <= 4:
            raise BadCallbackData(f"image index {button.index} is not 0–4")
        data = f"d:{button.index}:{_check_job(button.job_id)}"
    elif isinstance(button, CancelButton):
        data = f"c:{_check_job(button.job_id)}"
    else:
        if not (_TOKEN.match(button.key) and _TOKEN.match(button.value)):
            raise BadCallbackData(f"settings button {button.key}={button.value} has characters outside [A-Za-z0-9_.-]")
        data = f"s:{button.key}:{button.value}"
    if len(data.encode()) > MAX_BYTES:
        raise BadCallbackData(f"callback data is {len(data.encode())} bytes; Telegram allows {MAX_BYTES}")
    return data


def decode(data: str | None) -> Button:
    if not data or len(data.encode()) > MAX_BYTES:
        raise BadCallbackData("empty or oversized callback data")
    parts = data.split(":")
    kind = parts[0]
    if kind == "j" and len(parts) == 4:
        try:
            action = Action(parts[1])
        except ValueError:
            raise BadCallbackData(f"unknown action {parts[1]!r}") from None
        index = _parse_index(parts[2])
        _check_index(action, index)
        return JobButton(action, _check_job(parts[3]), index)
    if kind == "d" and len(parts) == 3:
        return DocumentButton(_check_job(parts[2]), _parse_index(parts[1]))
    if kind == "c" and len(parts) == 2:
        return CancelButton(_check_job(parts[1]))
    if kind == "s" and len(parts) == 3 and _TOKEN.match(parts[1]) and _TOKEN.match(parts[2]):
        return SettingsButton(parts[1], parts[2])
    raise BadCallbackData(f"unrecognised callback data {data!r}")


def is_token(value: str) -> bool:
    """Whether ``value`` can travel in a settings button (model names from the operator's registry may not)."""
    return bool(_TOKEN.match(value))


def _parse_index(text: str) -> int:
    if len(text) != 1 or not text.isdigit() or int(text) > 4:
        raise BadCallbackData(f"image index {text!r} is not 0–4")
    return int(text)


def _check_index(action: Action, index: int) -> None:
    if action not in BUTTONS:
        raise BadCallbackData(f"{action.label} is a command, not a button")
    if action.needs_index and not 1 <= index <= 4:
        raise BadCallbackData(f"{action.name} needs an image index 1–4, got {index}")
    if not action.needs_index and index != 0:
        raise BadCallbackData(f"{action.name} takes no image index, got {index}")


def _check_job(job_id: str) -> str:
    if not _JOB_ID.match(job_id):
        raise BadCallbackData(f"job id {job_id!r} is not 1–48 characters of [A-Za-z0-9_-]")
    return job_id
