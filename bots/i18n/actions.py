"""The action table's words in the user's language: a button's label (``label.<wire id>``) and how a derived
result is introduced (``caption.<wire id>``). ``queue/actions.py`` keeps the one English name of each row (the queue
imports nothing of ``bots``); the catalogs hold the same English under these keys, and every language's translation.
"""

from __future__ import annotations

from impasto.bots.i18n.catalog import t
from impasto.queue.actions import ACTIONS, Action, ActionRow


def label(row: ActionRow, locale: str, index: int = 0) -> str:
    """The button's text ("Upscale (Subtle)", "U2"): ``row.button_text(index)`` in ``locale``."""
    return t(f"label.{row.action.value}", locale, i=index)


def caption(row: ActionRow, locale: str) -> str:
    """How a result of this action is introduced ("Variations (Strong)"); "" for a plain one (imagine, U#)."""
    return t(f"caption.{row.action.value}", locale) if row.caption else ""


def name_of(action: str, locale: str) -> str:
    """A stored job's action as people read it ("sq" → "Make Square", "u" → "U#"); unknown values pass through."""
    try:
        row = ACTIONS[Action(action)]
    except ValueError:
        return action
    return t(f"label.{row.action.value}", locale, i="#")
