"""Button ids that carry their own state, so any bot process serves any button, after any restart.

A job button is ``imp:<action>:<index>:<job id>`` (Discord allows 100 characters); a settings-panel control is
``imp:set:<key>``. Decoding validates every part: a custom_id is user-controlled input (a modified client can send
anything), so a bad one is refused, never half-parsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from impasto.queue.actions import BUTTONS, Action

MAX_CUSTOM_ID = 100
JOB_ID_PATTERN = r"[A-Za-z0-9_-]{1,80}"
# What discord.py matches a press against (``views.JobButton``): only the actions a button can carry, so a custom_id
# naming another is not ours and is ignored (decoding it would raise inside discord.py's dispatch, logged as an error).
_BUTTON_ACTIONS = "|".join(sorted((re.escape(a.value) for a in BUTTONS), key=len, reverse=True))
BUTTON_TEMPLATE = rf"imp:(?P<action>{_BUTTON_ACTIONS}):(?P<index>[0-4]):(?P<job>{JOB_ID_PATTERN})"
# "imp:set:model" is the model dropdown's own id (``views.ModelSelect``): excluded so one press has one handler.
SETTING_TEMPLATE = r"imp:set:(?!(?:model|language)$)(?P<key>[a-z0-9_]{1,32})(?::(?P<value>[A-Za-z0-9._-]{1,40}))?"

_BUTTON = re.compile(rf"imp:(?P<action>[a-z0-9]{{1,4}}):(?P<index>[0-4]):(?P<job>{JOB_ID_PATTERN})")
_SETTING = re.compile(SETTING_TEMPLATE)


class InvalidCustomId(ValueError):
    """A custom_id that is not one of ours, or names an unknown action."""


@dataclass(frozen=True)
class ButtonId:
    job_id: str
    action: Action
    index: int = 0  # 1–4 for grid buttons (U#/V#); the image shown for single-image buttons; 0 for the whole job

    def __post_init__(self) -> None:
        if not re.fullmatch(JOB_ID_PATTERN, self.job_id):
            raise InvalidCustomId(f"job id {self.job_id!r} must be 1–80 letters, digits, '-' or '_'")
        if self.action not in BUTTONS:
            raise InvalidCustomId(f"{self.action.label} is a command, not a button")
        if not 0 <= self.index <= 4:
            raise InvalidCustomId(f"image index {self.index} must be 0–4")

    def encode(self) -> str:
        custom_id = f"imp:{self.action.value}:{self.index}:{self.job_id}"
        assert len(custom_id) <= MAX_CUSTOM_ID  # guaranteed by the job id's 80 characters
        return custom_id

    @classmethod
    def decode(cls, custom_id: str) -> ButtonId:
        match = _BUTTON.fullmatch(custom_id)
        if match is None:
            raise InvalidCustomId(f"not an impasto button: {custom_id[:100]!r}")
        try:
            action = Action(match["action"])
        except ValueError:
            raise InvalidCustomId(f"unknown button action {match['action']!r}") from None
        return cls(match["job"], action, int(match["index"]))


@dataclass(frozen=True)
class SettingId:
    key: str
    value: str | None = None

    def encode(self) -> str:
        custom_id = f"imp:set:{self.key}" + (f":{self.value}" if self.value is not None else "")
        if not _SETTING.fullmatch(custom_id):
            raise InvalidCustomId(f"bad setting id {custom_id!r}")
        return custom_id

    @classmethod
    def decode(cls, custom_id: str) -> SettingId:
        match = _SETTING.fullmatch(custom_id)
        if match is None:
            raise InvalidCustomId(f"not an impasto setting: {custom_id[:100]!r}")
        return cls(match["key"], match["value"])
