"""A fake Discord on 127.0.0.1: REST and the gateway WebSocket on one aiohttp port.

The real discord.py client talks to it over real HTTP and a real WebSocket, so a test exercises the library's own
parsing, rate-limit handling and multipart encoding. Payload shapes follow what discord.py sends and expects (captured
from discord.py 2.7). The fake keeps every message it holds (content, components, attachments, allowed_mentions) and
every request, so tests assert on what a Discord user would see.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from aiohttp import WSMsgType, web

BOT_ID = "1000000000000000001"
GUILD_ID = "2000000000000000001"
CHANNEL_ID = "3000000000000000001"
NSFW_CHANNEL_ID = "3000000000000000002"
DM_CHANNEL_ID = "3000000000000000009"
ALICE = "4000000000000000001"
BOB = "4000000000000000002"
PERMISSIONS = "2248473465835073"  # a member's usual rights (no Manage Server)
MANAGER_PERMISSIONS = str(2248473465835073 | 1 << 5)  # with Manage Server
EPHEMERAL = 64
#: What an interaction says a channel takes when a test did not set ``FakeDiscord.channel_limits`` (bytes).
DEFAULT_ATTACHMENT_LIMIT = 26214400

Json = dict[str, Any]


def user_payload(user_id: str, name: str | None = None) -> Json:
    return {"id": user_id, "username": name or f"user{user_id[-2:]}", "discriminator": "0", "avatar": None}


def _json(obj: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    # discord.py compares Content-Type to exactly "application/json"; web.json_response adds a charset.
    return web.Response(body=json.dumps(obj).encode(), status=status, content_type="application/json", headers=headers)


@dataclass
class Request:
    method: str
    path: str
    body: Any  # parsed JSON (payload_json for multipart), or None
    files: list[tuple[str, bytes]] = field(default_factory=list)


@dataclass
class InteractionRecord:
    id: str
    token: str
    type: int
    channel_id: str
    guild_id: str | None
    user_id: str
    message_id: str | None  # the component's message, for type 3
    callback: Json | None = None
    original_id: str | None = None
    sent_at: float = 0.0  # time.monotonic() when the fake dispatched it
    answered_at: float | None = None  # ... and when the bot's interaction callback arrived


@dataclass
class RateLimit:
    method: str
    path_prefix: str
    retry_after_s: float
    remaining: int = 1


class FakeDiscord:
    """Start with ``await fake.start()``; point discord.py at ``api_url`` and ``gateway_url``."""

    def __init__(self) -> None:
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._ids = itertools.count(5000000000000000100)
        self._seq = itertools.count(1)
        self._sockets: list[web.WebSocketResponse] = []
        self._changed = asyncio.Condition()
        self.requests: list[Request] = []
        self.messages: dict[str, Json] = {}
        self.files: dict[str, bytes] = {}  # attachment id -> bytes
        self.interactions: dict[str, InteractionRecord] = {}
        self.synced_commands: dict[str, list[Json]] = {}  # "global" or guild id -> the commands
        self.identified = 0
        self.rate_limits: list[RateLimit] = []
        self.rate_limited: list[str] = []  # "METHOD path" answered with 429
        self.nsfw_channels = {NSFW_CHANNEL_ID}
        # Each user's Discord client language (the interaction's ``locale``); en-US when not set.
        self.user_locales: dict[str, str] = {}
        self.upload_limit: int | None = None  # bytes per file anywhere; larger uploads get 413 / 40005
        # Per destination (a server's channel, boosted or not; a DM): what its interactions say as
        # ``attachment_size_limit``, and what uploads there are held to. Unset: DEFAULT_ATTACHMENT_LIMIT, unenforced.
        self.channel_limits: dict[str, int] = {}

    # -- lifecycle -------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_get("/gateway", self._gateway)
        app.router.add_get("/cdn/{aid}/{name}", self._cdn)
        app.router.add_route("*", "/api/v10/{path:.*}", self._rest)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def close(self) -> None:
        for ws in list(self._sockets):
            await ws.close()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def api_url(self) -> str:
        return f"{self.base}/api/v10"

    @property
    def gateway_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/gateway"

    # -- waiting ---------------------------------------------------------------------------------------------------

    async def _notify(self) -> None:
        async with self._changed:
            self._changed.notify_all()

    async def wait_for(self, predicate: Callable[[], Any], timeout_s: float = 10.0) -> Any:
        """Wait until ``predicate()`` is truthy and return its value."""

        # Woken by every REST request; also polls, since the predicate may watch the bot's side (a backend call).
        async def waiter() -> Any:
            async with self._changed:
                while True:
                    value = predicate()
                    if value:
                        return value
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._changed.wait(), 0.05)

        return await asyncio.wait_for(waiter(), timeout_s)

    async def wait_message(self, predicate: Callable[[Json], bool], timeout_s: float = 10.0) -> Json:
        def find() -> Json | None:
            for message in reversed(list(self.messages.values())):
                if predicate(message):
                    return message
            return None

        result: Json = await self.wait_for(find, timeout_s)
        return result

    # -- gateway ---------------------------------------------------------------------------------------------------

    async def _gateway(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self._sockets.append(ws)
        await ws.send_str(json.dumps({"op": 10, "d": {"heartbeat_interval": 41250}, "s": None, "t": None}))
        async for msg in ws:
            if msg.type != WSMsgType.TEXT:
                continue
            data = json.loads(msg.data)
            op = data["op"]
            if op == 1:
                await ws.send_str(json.dumps({"op": 11, "d": None, "s": None, "t": None}))
            elif op == 2:
                await self._identify(ws, data["d"])
            elif op == 6:
                await self._dispatch_to(ws, "RESUMED", {})
        if ws in self._sockets:
            self._sockets.remove(ws)
        return ws

    async def _identify(self, ws: web.WebSocketResponse, data: Json) -> None:
        ready: Json = {
            "v": 10,
            "user": {**user_payload(BOT_ID, "impasto"), "bot": True},
            "guilds": [{"id": GUILD_ID, "unavailable": True}],
            "session_id": f"sess{self.identified}",
            "resume_gateway_url": self.gateway_url,
            "application": {"id": BOT_ID, "flags": 0},
        }
        if "shard" in data:
            ready["shard"] = data["shard"]
        self.identified += 1
        await self._dispatch_to(ws, "READY", ready)
        await self._dispatch_to(ws, "GUILD_CREATE", self.guild_payload())
        await self._notify()

    def guild_payload(self) -> Json:
        def channel(cid: str, name: str, position: int) -> Json:
            return {
                "id": cid,
                "type": 0,
                "name": name,
                "position": position,
                "permission_overwrites": [],
                "nsfw": cid in self.nsfw_channels,
                "guild_id": GUILD_ID,
            }

        return {
            "id": GUILD_ID,
            "name": "Test",
            "unavailable": False,
            "member_count": 2,
            "owner_id": ALICE,
            "features": [],
            "emojis": [],
            "stickers": [],
            "members": [],
            "roles": [
                {
                    "id": GUILD_ID,
                    "name": "@everyone",
                    "permissions": PERMISSIONS,
                    "position": 0,
                    "color": 0,
                    "hoist": False,
                    "managed": False,
                    "mentionable": False,
                }
            ],
            "channels": [channel(CHANNEL_ID, "general", 0), channel(NSFW_CHANNEL_ID, "after-dark", 1)],
        }

    async def _dispatch_to(self, ws: web.WebSocketResponse, event: str, data: Json) -> None:
        await ws.send_str(json.dumps({"op": 0, "t": event, "s": next(self._seq), "d": data}))

    async def dispatch(self, event: str, data: Json) -> None:
        """Send one gateway event to every connected client."""
        for ws in list(self._sockets):
            await self._dispatch_to(ws, event, data)

    async def drop_connections(self) -> None:
        for ws in list(self._sockets):
            await ws.close()

    # -- what a user does ------------------------------------------------------------------------------------------

    def _context(self, user_id: str, channel_id: str, *, dm: bool, permissions: str = PERMISSIONS) -> Json:
        user = user_payload(user_id)
        if dm:
            return {
                "channel_id": DM_CHANNEL_ID,
                "channel": {"id": DM_CHANNEL_ID, "type": 1, "recipients": [user]},
                "user": user,
                "context": 1,
            }
        return {
            "guild_id": GUILD_ID,
            "channel_id": channel_id,
            "channel": {
                "id": channel_id,
                "type": 0,
                "name": "general",
                "position": 0,
                "guild_id": GUILD_ID,
                "nsfw": channel_id in self.nsfw_channels,
            },
            "member": {
                "user": user,
                "roles": [],
                "joined_at": "2024-01-01T00:00:00+00:00",
                "flags": 0,
                "permissions": permissions,
            },
            "guild_locale": "en-US",
            "context": 0,
        }

    async def _interaction(
        self,
        itype: int,
        data: Json,
        *,
        user_id: str,
        channel_id: str,
        dm: bool,
        message: Json | None = None,
        permissions: str = PERMISSIONS,
    ) -> InteractionRecord:
        iid = str(next(self._ids))
        record = InteractionRecord(
            id=iid,
            token=f"tok{iid}",
            type=itype,
            channel_id=DM_CHANNEL_ID if dm else channel_id,
            guild_id=None if dm else GUILD_ID,
            user_id=user_id,
            message_id=message["id"] if message else None,
        )
        self.interactions[iid] = record
        payload: Json = {
            "id": iid,
            "application_id": BOT_ID,
            "type": itype,
            "token": record.token,
            "version": 1,
            "app_permissions": PERMISSIONS,
            "locale": self.user_locales.get(user_id, "en-US"),
            "entitlements": [],
            "authorizing_integration_owners": {"0": GUILD_ID},
            "attachment_size_limit": self.channel_limits.get(record.channel_id, DEFAULT_ATTACHMENT_LIMIT),
            "data": data,
            **self._context(user_id, channel_id, dm=dm, permissions=permissions),
        }
        if message is not None:
            payload["message"] = message
        record.sent_at = time.monotonic()
        await self.dispatch("INTERACTION_CREATE", payload)
        return record

    async def interact(
        self,
        itype: int,
        data: Json,
        *,
        user_id: str = ALICE,
        channel_id: str = CHANNEL_ID,
        dm: bool = False,
        message: Json | None = None,
        permissions: str = PERMISSIONS,
    ) -> InteractionRecord:
        """Any interaction with ``data`` as given, unchecked (the fuzzer's door): type 2 a command, 3 a component
        on ``message``, 5 a modal submit."""
        return await self._interaction(
            itype, data, user_id=user_id, channel_id=channel_id, dm=dm, message=message, permissions=permissions
        )

    def post(self, channel_id: str, body: Json) -> Json:
        """A message the bot posted (as if it had), for a test to press on."""
        return self._create(channel_id, body, [])

    def add_attachment(self, filename: str, data: bytes, content_type: str = "image/png") -> Json:
        aid = str(next(self._ids))
        self.files[aid] = data
        url = f"{self.base}/cdn/{aid}/{filename}"
        return {
            "id": aid,
            "filename": filename,
            "size": len(data),
            "url": url,
            "proxy_url": url,
            "content_type": content_type,
        }

    async def slash(
        self,
        name: str,
        options: list[Json] | None = None,
        *,
        user_id: str = ALICE,
        channel_id: str = CHANNEL_ID,
        dm: bool = False,
        attachments: list[Json] | None = None,
        resolved: Json | None = None,
        permissions: str = PERMISSIONS,
    ) -> InteractionRecord:
        """A user runs a slash command. Options are ``{"name", "type", "value"}`` (subcommands nest ``options``);
        ``resolved`` carries the channels/roles that options name, as Discord sends them."""
        data: Json = {"id": str(next(self._ids)), "name": name, "type": 1, "options": options or []}
        data["resolved"] = dict(resolved or {})
        if attachments:
            data["resolved"]["attachments"] = {a["id"]: a for a in attachments}
        return await self._interaction(2, data, user_id=user_id, channel_id=channel_id, dm=dm, permissions=permissions)

    async def press(
        self,
        message_id: str,
        custom_id: str,
        *,
        user_id: str = ALICE,
        values: list[str] | None = None,
        permissions: str = PERMISSIONS,
    ) -> InteractionRecord:
        """A user presses a button (or picks from a select) on a message the fake holds."""
        message = self.messages[message_id]
        component_type = 3 if values is not None else 2
        data: Json = {"custom_id": custom_id, "component_type": component_type}
        if values is not None:
            data["values"] = values
        dm = message["channel_id"] == DM_CHANNEL_ID
        return await self._interaction(
            3, data, user_id=user_id, channel_id=message["channel_id"], dm=dm, message=message, permissions=permissions
        )

    async def submit_modal(
        self, interaction: InteractionRecord, values: dict[str, str], *, user_id: str = ALICE
    ) -> InteractionRecord:
        """The user fills in the modal that ``interaction`` opened and presses Submit."""
        assert interaction.callback is not None, "the interaction was never answered"
        assert interaction.callback["type"] == 9, "no modal was opened"
        modal = interaction.callback["data"]
        rows = []
        for row in modal["components"]:
            for item in row["components"] if row["type"] == 1 else [row.get("component", row)]:
                rows.append(
                    {
                        "type": 1,
                        "components": [
                            {
                                "type": 4,
                                "custom_id": item["custom_id"],
                                "value": values.get(item["custom_id"], item.get("value", "")),
                            }
                        ],
                    }
                )
        data = {"custom_id": modal["custom_id"], "components": rows}
        message = self.messages.get(interaction.message_id or "")
        dm = interaction.guild_id is None
        return await self._interaction(
            5, data, user_id=user_id, channel_id=interaction.channel_id, dm=dm, message=message
        )

    async def react(self, message_id: str, emoji: str, *, user_id: str = ALICE) -> None:
        message = self.messages[message_id]
        data: Json = {
            "user_id": user_id,
            "channel_id": message["channel_id"],
            "message_id": message_id,
            "emoji": {"id": None, "name": emoji},
            "message_author_id": BOT_ID,
            "burst": False,
            "type": 0,
        }
        if message["channel_id"] != DM_CHANNEL_ID and message["channel_id"].startswith("3"):
            data["guild_id"] = GUILD_ID
        await self.dispatch("MESSAGE_REACTION_ADD", data)

    # -- REST ------------------------------------------------------------------------------------------------------

    def rate_limit(self, method: str, path_prefix: str, retry_after_s: float = 0.05, times: int = 1) -> None:
        """Answer the next ``times`` matching requests with a 429, as Discord does (headers and JSON)."""
        self.rate_limits.append(RateLimit(method, path_prefix, retry_after_s, times))

    def _maybe_429(self, method: str, path: str) -> web.Response | None:
        for limit in self.rate_limits:
            if limit.remaining > 0 and limit.method == method and path.startswith(limit.path_prefix):
                limit.remaining -= 1
                self.rate_limited.append(f"{method} {path}")
                headers = {
                    "Via": "1.1 google",
                    "Retry-After": str(max(1, round(limit.retry_after_s))),
                    "X-RateLimit-Limit": "5",
                    "X-RateLimit-Remaining": "0",
                    "X-RateLimit-Reset": f"{datetime.now(UTC).timestamp() + limit.retry_after_s:.3f}",
                    "X-RateLimit-Reset-After": f"{limit.retry_after_s:.3f}",
                    "X-RateLimit-Bucket": "fakebucket",
                    "X-RateLimit-Scope": "user",
                }
                body = {"message": "You are being rate limited.", "retry_after": limit.retry_after_s, "global": False}
                return _json(body, 429, headers)
        return None

    async def _read(self, request: web.Request) -> tuple[Any, list[tuple[str, bytes]]]:
        if request.content_type.startswith("multipart/"):
            body: Any = None
            files: list[tuple[str, bytes]] = []
            reader = await request.multipart()
            while (part := await reader.next()) is not None:
                name = part.name  # type: ignore[union-attr]
                raw = await part.read()  # type: ignore[union-attr]
                if name == "payload_json":
                    body = json.loads(raw)
                else:
                    files.append((part.filename or name or "file", bytes(raw)))  # type: ignore[union-attr]
            return body, files
        if request.can_read_body:
            text = await request.text()
            return (json.loads(text) if text else None), []
        return None, []

    async def _rest(self, request: web.Request) -> web.StreamResponse:
        path = "/" + request.match_info["path"]
        method = request.method
        limited = self._maybe_429(method, path)
        if limited is not None:
            await self._notify()
            return limited
        body, files = await self._read(request)
        self.requests.append(Request(method, path, body, files))
        limit = self._upload_limit(path)
        if limit is not None and any(len(data) > limit for _name, data in files):
            # What Discord answers for an upload past the destination's limit: HTTP 413, error 40005.
            await self._notify()
            return _json({"message": "Request entity too large", "code": 40005}, 413)
        try:
            return await self._route(method, path.split("/")[1:], request, body, files)
        finally:
            await self._notify()

    async def _route(
        self, method: str, parts: list[str], request: web.Request, body: Any, files: list[tuple[str, bytes]]
    ) -> web.StreamResponse:
        match method, parts:
            case "GET", ["users", "@me"]:
                return _json({**user_payload(BOT_ID, "impasto"), "bot": True, "global_name": None})
            case "GET", ["oauth2", "applications", "@me"]:
                return _json(
                    {
                        "id": BOT_ID,
                        "name": "impasto",
                        "description": "",
                        "icon": None,
                        "bot_public": True,
                        "bot_require_code_grant": False,
                        "owner": user_payload(ALICE, "alice"),
                        "verify_key": "00",
                        "flags": 0,
                    }
                )
            case "GET", ["gateway", "bot"]:
                limit = {"total": 1000, "remaining": 1000, "reset_after": 0, "max_concurrency": 1}
                return _json({"url": self.gateway_url, "shards": 1, "session_start_limit": limit})
            case "GET", ["gateway"]:
                return _json({"url": self.gateway_url})
            case "PUT", ["applications", _, "commands"]:
                return _json(self._sync("global", body))
            case "PUT", ["applications", _, "guilds", guild, "commands"]:
                return _json(self._sync(guild, body))
            case "POST", ["interactions", iid, _token, "callback"]:
                return _json(self._callback(iid, body, files))
            case "POST", ["webhooks", _, token]:
                record = self._by_token(token)
                message = self._create(record.channel_id, body, files, webhook=True)
                return _json(message)
            case "PATCH", ["webhooks", _, token, "messages", mid]:
                record = self._by_token(token)
                target = self._webhook_target(record, mid)
                return _json(self._edit(target, body, files))
            case "GET", ["webhooks", _, token, "messages", mid]:
                record = self._by_token(token)
                return _json(self.messages[self._webhook_target(record, mid)])
            case "DELETE", ["webhooks", _, token, "messages", mid]:
                record = self._by_token(token)
                self.messages.pop(self._webhook_target(record, mid), None)
                return web.Response(status=204)
            case "POST", ["channels", cid, "messages"]:
                return _json(self._create(cid, body, files))
            case "PATCH", ["channels", _cid, "messages", mid]:
                return _json(self._edit(mid, body, files))
            case "GET", ["channels", _cid, "messages", mid]:
                if mid not in self.messages:
                    return _json({"code": 10008, "message": "Unknown Message"}, 404)
                return _json(self.messages[mid])
            case "DELETE", ["channels", _cid, "messages", mid]:
                self.messages.pop(mid, None)
                return web.Response(status=204)
            case "POST", ["users", "@me", "channels"]:
                recipient = str(body["recipient_id"])
                return _json({"id": f"9{recipient[1:]}", "type": 1, "recipients": [user_payload(recipient)]})
        return _json({"code": 0, "message": f"404: Not Found ({method} {'/'.join(parts)})"}, 404)

    def _sync(self, scope: str, commands: list[Json]) -> list[Json]:
        answered = [
            {**command, "id": str(next(self._ids)), "application_id": BOT_ID, "version": "1"} for command in commands
        ]
        self.synced_commands[scope] = answered
        return answered

    def _upload_limit(self, path: str) -> int | None:
        """The most one file may weigh in the request's destination: the destination's own limit and the global one."""
        match path.split("/")[1:]:
            case ["channels", cid, *_]:
                channel: str | None = cid
            case ["webhooks", _, token, *_]:
                channel = next((r.channel_id for r in self.interactions.values() if r.token == token), None)
            case ["interactions", iid, *_] if iid in self.interactions:
                channel = self.interactions[iid].channel_id
            case _:
                channel = None
        limits = [x for x in (self.upload_limit, self.channel_limits.get(channel or "")) if x is not None]
        return min(limits) if limits else None

    def _by_token(self, token: str) -> InteractionRecord:
        return next(r for r in self.interactions.values() if r.token == token)

    def _webhook_target(self, record: InteractionRecord, mid: str) -> str:
        if mid != "@original":
            return mid
        if record.original_id is None:
            raise web.HTTPNotFound(
                text='{"code": 10008, "message": "Unknown Message"}', content_type="application/json"
            )
        return record.original_id

    def _callback(self, iid: str, body: Json, files: list[tuple[str, bytes]]) -> Json:
        record = self.interactions[iid]
        record.callback = body
        record.answered_at = time.monotonic()
        kind = body["type"]
        data = body.get("data") or {}
        answer: Json = {"id": iid, "type": record.type, "response_message_loading": kind == 5}
        answer["response_message_ephemeral"] = bool(data.get("flags", 0) & EPHEMERAL)
        result: Json = {"interaction": answer}
        if kind == 4:
            message = self._create(record.channel_id, data, files, webhook=True, interaction=record)
            record.original_id = message["id"]
        elif kind == 5:
            message = self._create(
                record.channel_id,
                {"content": "", "flags": data.get("flags", 0) | 128},
                [],
                webhook=True,
                interaction=record,
            )
            record.original_id = message["id"]
        elif kind in (6, 7):
            record.original_id = record.message_id
            if kind == 7 and record.message_id is not None:
                message = self._edit(record.message_id, data, files)
                answer["response_message_id"] = message["id"]
                result["resource"] = {"type": kind, "message": message}
            return result
        else:
            return result
        answer["response_message_id"] = message["id"]
        result["resource"] = {"type": kind, "message": message}
        return result

    def _attachments(self, files: list[tuple[str, bytes]]) -> list[Json]:
        out = []
        for filename, data in files:
            out.append(
                self.add_attachment(
                    filename, data, "image/png" if filename.endswith(".png") else "application/octet-stream"
                )
            )
        return out

    def _create(
        self,
        channel_id: str,
        body: Json | None,
        files: list[tuple[str, bytes]],
        *,
        webhook: bool = False,
        interaction: InteractionRecord | None = None,
    ) -> Json:
        body = body or {}
        mid = str(next(self._ids))
        now = datetime.now(UTC).isoformat()
        message: Json = {
            "id": mid,
            "channel_id": channel_id,
            "type": 19 if body.get("message_reference") else 0,
            "content": body.get("content") or "",
            "author": {**user_payload(BOT_ID, "impasto"), "bot": True},
            "timestamp": now,
            "edited_timestamp": None,
            "tts": False,
            "mention_everyone": False,
            "mentions": [],
            "mention_roles": [],
            "embeds": body.get("embeds") or [],
            "pinned": False,
            "flags": body.get("flags", 0),
            "attachments": self._attachments(files),
            "components": body.get("components") or [],
            # What the bot asked for; the fake's own record (Discord does not echo these).
            "allowed_mentions": body.get("allowed_mentions"),
            "edits": 0,
        }
        if channel_id != DM_CHANNEL_ID and not channel_id.startswith("9"):
            message["guild_id"] = GUILD_ID
        if webhook:
            message["webhook_id"] = BOT_ID
        if body.get("message_reference"):
            ref = body["message_reference"]
            message["message_reference"] = {k: str(v) if k.endswith("_id") else v for k, v in ref.items()}
        if interaction is not None:
            message["interaction_id"] = interaction.id
        self.messages[mid] = message
        return message

    def _edit(self, mid: str, body: Json | None, files: list[tuple[str, bytes]]) -> Json:
        body = body or {}
        message = self.messages[mid]
        for key in ("content", "components", "embeds", "flags", "allowed_mentions"):
            if key in body:
                message[key] = body[key] if body[key] is not None else ([] if key != "content" else "")
        if "attachments" in body:
            keep = {str(a["id"]) for a in body["attachments"]}
            message["attachments"] = [a for a in message["attachments"] if a["id"] in keep] + self._attachments(files)
        message["flags"] = message.get("flags", 0) & ~128
        message["edited_timestamp"] = datetime.now(UTC).isoformat()
        message["edits"] += 1
        return message

    async def _cdn(self, request: web.Request) -> web.Response:
        data = self.files.get(request.match_info["aid"])
        if data is None:
            return web.Response(status=404)
        return web.Response(body=data, content_type="application/octet-stream")

    # -- inspection ------------------------------------------------------------------------------------------------

    def attachment_bytes(self, message: Json, index: int = 0) -> bytes:
        return self.files[message["attachments"][index]["id"]]

    @staticmethod
    def buttons(message: Json) -> list[Json]:
        return [item for row in message["components"] for item in row.get("components", [])]

    def button(self, message: Json, label: str) -> Json:
        for item in self.buttons(message):
            if item.get("label") == label or (item.get("emoji") or {}).get("name") == label:
                return item
        raise AssertionError(f"no button {label!r} on message: {[b.get('label') for b in self.buttons(message)]}")
