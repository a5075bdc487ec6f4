"""Webhook mode: setWebhook with the secret, updates accepted only with the secret header."""

from __future__ import annotations

import asyncio
import contextlib

import httpx
from fake_botapi import TOKEN, FakeBotApi

from impasto.bots.telegram.app import SECRET_HEADER, build_application, run_webhook
from impasto.bots.telegram.handlers import install_basic


async def test_webhook_checks_the_secret_and_serves_updates(api: FakeBotApi) -> None:
    application = build_application(TOKEN, api.url, read_timeout_s=5)
    install_basic(application)
    stop = asyncio.Event()
    ready: asyncio.Future[int] = asyncio.get_running_loop().create_future()

    async def on_ready(port: int) -> None:
        ready.set_result(port)

    async with application:
        task = asyncio.create_task(
            run_webhook(
                application,
                stop,
                url="https://bot.example/tg",
                secret="s3cret-token",
                listen="127.0.0.1",
                port=0,
                on_ready=on_ready,
            )
        )
        try:
            port = await asyncio.wait_for(ready, 20)
            [set_webhook] = api.sent("setWebhook")
            assert set_webhook.params["url"] == "https://bot.example/tg"
            assert set_webhook.params["secret_token"] == "s3cret-token"
            update = {"update_id": 1, **api.message("/start")}
            async with httpx.AsyncClient(trust_env=False) as client:
                wrong = await client.post(f"http://127.0.0.1:{port}/tg", json=update, headers={SECRET_HEADER: "x"})
                assert wrong.status_code == 403
                missing = await client.post(f"http://127.0.0.1:{port}/tg", json=update)
                assert missing.status_code == 403
                right = await client.post(
                    f"http://127.0.0.1:{port}/tg", json=update, headers={SECRET_HEADER: "s3cret-token"}
                )
                assert right.status_code == 200
            [reply] = await api.wait_method("sendMessage")
            assert "/imagine" in reply.params["text"]
            assert len(api.sent("sendMessage")) == 1  # the refused posts did nothing
        finally:
            stop.set()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.wait_for(task, 20)
