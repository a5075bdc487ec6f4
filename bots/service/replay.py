"""A request as it can be made again: what a moderator's approved appeal reruns.

Each entry point that can be refused by the prompt policy describes its call in its ``Intent`` (``request``): a
JSON-able mapping that names the entry and its arguments as the service holds them once the request is read —
the prompt, the image links with their store copies (an attachment's link expires; its copy stays), /blend's images
and shape, a button's job, action, image index and Remix edit. The moderation check stores it with the refusal, with
who asked and where (the channel, whether it is an NSFW place, the roles the plan is read from). ``JobService.rerun``
makes that same call again.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from impasto.bots.service.requester import Platform, Requester

Request = Mapping[str, Any]


def who_json(who: Requester) -> dict[str, Any]:
    return {
        "platform": who.platform,
        "user": who.user_id,
        "name": who.display_name,
        "guild": who.guild_id,
        "channel": who.channel_id,
        "roles": list(who.roles),
        "nsfw": who.nsfw_channel,
        "locale": who.client_locale,
    }


def who_of(data: Mapping[str, Any]) -> Requester:
    return Requester(
        platform=platform_of(str(data["platform"])),
        user_id=str(data["user"]),
        display_name=str(data.get("name") or ""),
        guild_id=data.get("guild"),
        channel_id=data.get("channel"),
        roles=tuple(str(r) for r in data.get("roles") or ()),
        nsfw_channel=bool(data.get("nsfw")),
        client_locale=data.get("locale"),
    )


def platform_of(name: str) -> Platform:
    if name == "discord":
        return "discord"
    if name == "telegram":
        return "telegram"
    if name == "console":
        return "console"
    raise ValueError(f"no platform {name!r}")


def recorded(who: Requester, request: Request) -> dict[str, Any]:
    """What a refusal keeps: the request and who asked, where."""
    return {**request, "who": who_json(who)}


def dumps(record: Mapping[str, Any]) -> str:
    return json.dumps(record, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def loads(text: str) -> dict[str, Any] | None:
    try:
        data = json.loads(text)
    except ValueError:
        return None
    return data if isinstance(data, dict) and isinstance(data.get("who"), dict) else None


def same(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """One request and its stored form (tuples read back as lists) are the same call."""
    return dumps(a) == dumps(b)
