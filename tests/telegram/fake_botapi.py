"""A fake Telegram Bot API server on 127.0.0.1 that speaks the real wire format to the real PTB client.

It answers ``POST /bot<token>/<method>`` (empty, form or multipart bodies; every value a string, JSON for objects)
with ``{"ok": true, "result": ...}``, serves ``GET /file/bot<token>/<path>`` downloads, long-polls ``getUpdates``
(drops updates below ``offset``, waits up to ``timeout`` seconds), and can be told to answer a method with a 429
carrying ``parameters.retry_after``. Every request is recorded so tests can wait for and inspect what the bot sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

BOT_ID = 777000
BOT_USERNAME = "impasto_test_bot"
TOKEN = "123456:TEST-token"


@dataclass
class Call:
    """One request the bot made: the method, its string fields (JSON decoded where it parses) and uploaded files."""

    method: str
    params: dict[str, Any]
    files: dict[str, bytes] = field(default_factory=dict)
    result: Any = None

    @property
    def chat_id(self) -> int | None:
        value = self.params.get("chat_id")
        return int(value) if value is not None else None


def _decode(value: str) -> Any:
    # PTB json.dumps every non-str value; plain strings (text, captions) arrive as they are.
    if value[:1] in "[{" or value in ("true", "false", "null") or value.lstrip("-").isdigit():
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


class FakeBotApi:
    """The server and its state. Use ``async with FakeBotApi() as api:`` and ``api.url`` as the API root."""

    def __init__(self, token: str = TOKEN) -> None:
        self.token = token
        self.calls: list[Call] = []
        self.files: dict[str, tuple[str, bytes]] = {}  # file_id -> (file_path, bytes)
        self.admins: set[int] = set()  # user ids getChatMember calls the chat's creator
        self.messages: dict[tuple[int, int], dict[str, Any]] = {}  # (chat_id, message_id) -> Message
        # Upload limits, enforced as Telegram answers them (None: none): a photo past ``photo_limit`` gets
        # "Bad Request: file is too big"; a document past ``document_limit`` an HTTP 413.
        self.photo_limit: int | None = None
        self.document_limit: int | None = None
        self.fail_next: dict[str, list[tuple[int, str, dict[str, Any] | None]]] = {}
        self._updates: list[dict[str, Any]] = []
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(1000)
        self._file_ids = itertools.count(1)
        self._changed = asyncio.Condition()
        self._runner: web.AppRunner | None = None
        self.port = 0

    # ---- lifecycle -------------------------------------------------------------------------------------------
    async def __aenter__(self) -> FakeBotApi:
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_post("/bot{token}/{method}", self._method)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        server = site._server
        assert server is not None
        self.port = server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        return self

    async def __aexit__(self, *exc: object) -> None:
        async with self._changed:
            self._changed.notify_all()
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    # ---- what tests feed in ----------------------------------------------------------------------------------
    async def push(self, update: dict[str, Any]) -> dict[str, Any]:
        update = {"update_id": next(self._update_ids), **update}
        async with self._changed:
            self._updates.append(update)
            self._changed.notify_all()
        return update

    def add_file(self, data: bytes, path: str = "photos/file.jpg", file_id: str | None = None) -> str:
        file_id = file_id or f"in-{next(self._file_ids)}"
        self.files[file_id] = (path, data)
        return file_id

    def fail(self, method: str, status: int, description: str, parameters: dict[str, Any] | None = None) -> None:
        """The next call of ``method`` answers with this error (queue several by calling again)."""
        self.fail_next.setdefault(method, []).append((status, description, parameters))

    def rate_limit(self, method: str, retry_after: int = 1) -> None:
        self.fail(method, 429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after})

    # ---- what tests read back --------------------------------------------------------------------------------
    def sent(self, *methods: str) -> list[Call]:
        return [c for c in self.calls if c.method in methods]

    async def wait_for(
        self, predicate: Callable[[Call], bool], *, timeout_s: float = 20.0, after: int = 0, count: int = 1
    ) -> list[Call]:
        """Wait until ``count`` recorded calls (from index ``after`` on) satisfy ``predicate``; return them."""
        deadline = time.monotonic() + timeout_s
        async with self._changed:
            while True:
                found = [c for c in self.calls[after:] if predicate(c)]
                if len(found) >= count:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    seen = [(c.method, c.params.get("text") or c.params.get("caption")) for c in self.calls[after:]]
                    raise TimeoutError(f"no call matched; saw {seen}")
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), left)

    async def wait_method(self, method: str, *, after: int = 0, timeout_s: float = 20.0, count: int = 1) -> list[Call]:
        return await self.wait_for(lambda c: c.method == method, after=after, timeout_s=timeout_s, count=count)

    # ---- the HTTP side ---------------------------------------------------------------------------------------
    def _too_big(self, method: str, files: dict[str, bytes]) -> tuple[int, str, dict[str, Any] | None] | None:
        largest = max((len(data) for data in files.values()), default=0)
        if method == "sendPhoto" and self.photo_limit is not None and largest > self.photo_limit:
            return 400, "Bad Request: file is too big", None
        if method == "sendDocument" and self.document_limit is not None and largest > self.document_limit:
            return 413, "Request Entity Too Large", None
        return None

    async def _method(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return _answer(404, {"ok": False, "error_code": 404, "description": "Not Found"})
        method = request.match_info["method"]
        params: dict[str, Any] = {}
        files: dict[str, bytes] = {}
        if request.can_read_body:
            form = await request.post()
            for key, value in form.items():
                if isinstance(value, str):
                    params[key] = _decode(value)
                else:
                    files[key] = value.file.read()
        too_big = self._too_big(method, files)
        if too_big is not None:
            self.fail_next.setdefault(method, []).insert(0, too_big)
        queued = self.fail_next.get(method)
        if queued:
            status, description, parameters = queued.pop(0)
            call = Call(method, params, files, result={"error": status})
            await self._record(call)
            body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
            if parameters:
                body["parameters"] = parameters
            return _answer(status, body)
        if method == "getUpdates":
            result: Any = await self._get_updates(params)
            return _answer(200, {"ok": True, "result": result})
        handler = getattr(self, f"_m_{method}", None)
        if handler is None:
            result = True  # setMyCommands, deleteWebhook, sendChatAction, answerCallbackQuery, ...
        else:
            try:
                result = handler(params, files)
            except _ApiError as exc:
                await self._record(Call(method, params, files, result={"error": exc.status}))
                return _answer(exc.status, {"ok": False, "error_code": exc.status, "description": exc.description})
        await self._record(Call(method, params, files, result))
        return _answer(200, {"ok": True, "result": result})

    async def _record(self, call: Call) -> None:
        async with self._changed:
            self.calls.append(call)
            self._changed.notify_all()

    async def _get_updates(self, params: dict[str, Any]) -> list[dict[str, Any]]:
        offset = int(params.get("offset", 0) or 0)
        timeout = float(params.get("timeout", 0) or 0)
        deadline = time.monotonic() + timeout
        async with self._changed:
            while True:
                # Telegram forgets updates below the confirmed offset.
                self._updates = [u for u in self._updates if u["update_id"] >= offset]
                if self._updates:
                    return list(self._updates[:100])
                left = deadline - time.monotonic()
                if left <= 0:
                    return []
                try:
                    await asyncio.wait_for(self._changed.wait(), left)
                except TimeoutError:
                    return []

    async def _download(self, request: web.Request) -> web.StreamResponse:
        path = request.match_info["path"]
        for file_path, data in self.files.values():
            if file_path == path and request.match_info["token"] == self.token:
                return web.Response(body=data, content_type="application/octet-stream")
        return web.Response(status=404, text="Not Found")

    # ---- methods with real results ---------------------------------------------------------------------------
    def _m_getMe(self, params: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
        return {
            "id": BOT_ID,
            "is_bot": True,
            "first_name": "Impasto",
            "username": BOT_USERNAME,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _m_getChatMember(self, params: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
        user_id = int(params["user_id"])
        user = {"id": user_id, "is_bot": False, "first_name": f"user{user_id}"}
        if user_id in self.admins:
            return {"status": "creator", "user": user, "is_anonymous": False}
        return {"status": "member", "user": user}

    def _m_getFile(self, params: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
        file_id = str(params["file_id"])
        if file_id not in self.files:
            raise _ApiError(400, "Bad Request: invalid file_id")
        path, data = self.files[file_id]
        return {"file_id": file_id, "file_unique_id": f"u-{file_id}", "file_size": len(data), "file_path": path}

    def _new_message(self, params: dict[str, Any], **content: Any) -> dict[str, Any]:
        chat_id = int(params["chat_id"])
        chat = {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"}
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Impasto", "username": BOT_USERNAME},
            **content,
        }
        if "message_thread_id" in params:
            message["message_thread_id"] = int(params["message_thread_id"])
        if isinstance(params.get("reply_markup"), dict) and "inline_keyboard" in params["reply_markup"]:
            message["reply_markup"] = params["reply_markup"]
        self.messages[(chat_id, message["message_id"])] = message
        return message

    def _photo_sizes(self, data: bytes | None, name: str) -> list[dict[str, Any]]:
        file_id = self.add_file(data or b"", f"photos/{name}.jpg") if data is not None else name
        return [{"file_id": file_id, "file_unique_id": f"u-{file_id}", "width": 512, "height": 512}]

    def _upload(self, params: dict[str, Any], files: dict[str, bytes], field_name: str) -> bytes | None:
        if field_name in files:
            return files[field_name]
        value = params.get(field_name)
        if isinstance(value, str) and value.startswith("attach://"):
            return files.get(value.removeprefix("attach://"))
        if isinstance(value, str) and value in self.files:
            return self.files[value][1]
        return None

    def _m_sendMessage(self, params: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
        return self._new_message(params, text=str(params["text"]))

    def _m_sendPhoto(self, params: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
        data = self._upload(params, files, "photo")
        content: dict[str, Any] = {"photo": self._photo_sizes(data, f"out{next(self._file_ids)}")}
        if "caption" in params:
            content["caption"] = str(params["caption"])
        return self._new_message(params, **content)

    def _m_sendDocument(self, params: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
        data = self._upload(params, files, "document") or b""
        file_id = self.add_file(data, f"documents/doc{next(self._file_ids)}")
        content: dict[str, Any] = {"document": {"file_id": file_id, "file_unique_id": f"u-{file_id}"}}
        if "caption" in params:
            content["caption"] = str(params["caption"])
        return self._new_message(params, **content)

    def _find(self, params: dict[str, Any]) -> dict[str, Any]:
        key = (int(params["chat_id"]), int(params["message_id"]))
        if key not in self.messages:
            raise _ApiError(400, "Bad Request: message to edit not found")
        return self.messages[key]

    def _set_markup(self, message: dict[str, Any], params: dict[str, Any]) -> None:
        markup = params.get("reply_markup")
        if isinstance(markup, dict) and markup.get("inline_keyboard"):
            message["reply_markup"] = markup
        else:
            message.pop("reply_markup", None)

    def _m_editMessageText(self, params: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
        message = self._find(params)
        text = str(params["text"])
        if message.get("text") == text and message.get("reply_markup") == params.get("reply_markup"):
            raise _ApiError(400, "Bad Request: message is not modified")
        message["text"] = text
        self._set_markup(message, params)
        return message

    def _m_editMessageCaption(self, params: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
        message = self._find(params)
        message["caption"] = str(params.get("caption", ""))
        self._set_markup(message, params)
        return message

    def _m_editMessageReplyMarkup(self, params: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
        message = self._find(params)
        self._set_markup(message, params)
        return message

    def _m_editMessageMedia(self, params: dict[str, Any], files: dict[str, bytes]) -> dict[str, Any]:
        message = self._find(params)
        media = params["media"]
        data = self._upload({"media": media.get("media")}, files, "media")
        message.pop("text", None)
        message["photo"] = self._photo_sizes(data, f"out{next(self._file_ids)}")
        if "caption" in media:
            message["caption"] = media["caption"]
        self._set_markup(message, params)
        return message

    def _m_deleteMessage(self, params: dict[str, Any], files: dict[str, bytes]) -> bool:
        self.messages.pop((int(params["chat_id"]), int(params["message_id"])), None)
        return True

    # ---- update builders -------------------------------------------------------------------------------------
    def user(
        self, user_id: int = 42, name: str = "Alice", username: str | None = "alice", language_code: str | None = None
    ) -> dict[str, Any]:
        """``language_code``: the user's app language as Telegram sends it ("zh-hans", "en"); absent when None."""
        user: dict[str, Any] = {"id": user_id, "is_bot": False, "first_name": name}
        if username:
            user["username"] = username
        if language_code:
            user["language_code"] = language_code
        return user

    def chat(self, chat_id: int = 42, group: bool = False) -> dict[str, Any]:
        if group:
            return {"id": chat_id, "type": "supergroup", "title": "Painters"}
        return {"id": chat_id, "type": "private", "first_name": "Alice"}

    def message(
        self,
        text: str | None = None,
        *,
        chat_id: int = 42,
        user_id: int = 42,
        group: bool | None = None,
        photo_file_id: str | None = None,
        caption: str | None = None,
        media_group_id: str | None = None,
        reply_to: dict[str, Any] | None = None,
        username: str | None = "alice",
        name: str = "Alice",
        language_code: str | None = None,
    ) -> dict[str, Any]:
        """A ``message`` update; a leading ``/command`` gets its ``bot_command`` entity, as Telegram sends it."""
        msg: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": self.chat(chat_id, chat_id < 0 if group is None else group),
            "from": self.user(user_id, name, username, language_code),
        }
        if text is not None:
            msg["text"] = text
            if text.startswith("/"):
                msg["entities"] = [_command_entity(text)]
        if photo_file_id is not None:
            msg["photo"] = [
                {"file_id": photo_file_id + "-s", "file_unique_id": "s" + photo_file_id, "width": 90, "height": 90},
                {"file_id": photo_file_id, "file_unique_id": "l" + photo_file_id, "width": 512, "height": 512},
            ]
            self.files.setdefault(photo_file_id + "-s", self.files.get(photo_file_id, ("photos/none.jpg", b"")))
        if caption is not None:
            msg["caption"] = caption
            if caption.startswith("/"):
                msg["caption_entities"] = [_command_entity(caption)]
        if media_group_id is not None:
            msg["media_group_id"] = media_group_id
        if reply_to is not None:
            msg["reply_to_message"] = reply_to
        return {"message": msg}

    def callback(
        self,
        data: str,
        message: dict[str, Any],
        *,
        user_id: int = 42,
        name: str = "Alice",
        language_code: str | None = None,
    ) -> dict[str, Any]:
        """A button press on ``message`` (a Message dict as the bot got it back, e.g. ``call.result``)."""
        return {
            "callback_query": {
                "id": f"cbq{next(self._file_ids)}",
                "chat_instance": "ci1",
                "data": data,
                "from": self.user(user_id, name, language_code=language_code),
                "message": message,
            }
        }


class _ApiError(Exception):
    def __init__(self, status: int, description: str) -> None:
        super().__init__(description)
        self.status = status
        self.description = description


def _command_entity(text: str) -> dict[str, Any]:
    command = text.split(maxsplit=1)[0]
    return {"type": "bot_command", "offset": 0, "length": len(command.encode("utf-16-le")) // 2}


def _answer(status: int, body: dict[str, Any]) -> web.Response:
    return web.Response(status=status, body=json.dumps(body).encode(), content_type="application/json")
