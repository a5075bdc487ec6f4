"""The load test of both platforms at once: simulated Discord and Telegram users against ``impasto discord``,
``impasto telegram`` and N ``impasto worker``s, all real processes on one database, one Redis and one queue.

    .venv/bin/python tests/load_both.py [--users 200] [--actions 2000] [--workers 4] [--discord-share 0.5]

Starts the fake Discord (REST and gateway) and the fake Bot API here, the two bots and the workers (no-op renderer)
on a fresh SQLite database and Redis (``--redis-url``, default the test Redis, db 15; a queue namespace of its own).
``--users`` are split between the platforms (``--discord-share`` of them on Discord); each sends ``/imagine`` and
presses buttons on its last result (U1–U4, V1–V4, 🔄, and on a single its own buttons) with short random pauses
(``--think``), until ``--actions`` commands and presses were sent in all. The Telegram users are
``load_telegram.py``'s; the Discord users do the same through INTERACTION_CREATE. Prints, per platform where it
differs:

* interaction → ack p50/p99: the interaction sent (update pushed) → the bot's interaction response (the
  ``answerCallbackQuery`` or "queued" reply on Telegram); on Discord also /imagine → "Waiting to start" (the
  deferred answer edited once the job service admitted the job: what Telegram's first reply waits for);
* enqueue → start p50/p99, from the event stream (entry ids are Redis's millisecond clock);
* results lost (a job done in SQL with no result posted; must be 0) and results posted twice (must be 0);
* peak RSS (VmHWM) of each bot process and each worker; Redis memory at the end.

A script, not a test: it asserts nothing and only prints numbers (``tests/test_load_smoke.py`` runs it tiny, to keep
it from rotting). Linux only (reads /proc).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent / "telegram"))
sys.path.insert(0, str(Path(__file__).parent / "discord"))

from fake_botapi import FakeBotApi
from fake_discord import CHANNEL_ID, NSFW_CHANNEL_ID, FakeDiscord, InteractionRecord
from load_telegram import (
    FINAL,
    IMPASTO,
    Acks,
    Hub,
    _cpu_s,
    _enqueue_to_start,
    _pct,
    _peak_rss_mb,
    _stop,
    process_env,
    route_calls,
)
from load_telegram import user as telegram_user
from redis.asyncio import Redis
from sqlalchemy import func, select
from tg_harness import TEST_POSTGRES_URL, TEST_REDIS_URL

from impasto.queue import events, keys
from impasto.queue.actions import Action
from impasto.storage.db import session_factory
from impasto.storage.models import Job, Message
from impasto.storage.testing import migrated_engine, scratch_database

Json = dict[str, Any]
_MENTION = re.compile(r"<@(\d+)>")


class DiscordHub:
    """Wakes the simulated Discord user waiting for an interaction response or a result (the fake records; this
    routes): the fake's own ``_callback``, ``_create`` and ``_edit`` are wrapped."""

    def __init__(self, fake: FakeDiscord) -> None:
        self.waiters: dict[tuple[str, str], list[asyncio.Future[Json]]] = defaultdict(list)
        callback, create, edit = fake._callback, fake._create, fake._edit

        def on_callback(iid: str, body: Json, files: list[tuple[str, bytes]]) -> Json:
            answer = callback(iid, body, files)
            self._wake("ack", iid, answer)
            return answer

        def on_create(channel_id: str, body: Json | None, files: list[tuple[str, bytes]], **kw: Any) -> Json:
            return self._seen(create(channel_id, body, files, **kw))

        def on_edit(mid: str, body: Json | None, files: list[tuple[str, bytes]]) -> Json:
            return self._seen(edit(mid, body, files))

        fake._callback, fake._create, fake._edit = on_callback, on_create, on_edit  # type: ignore[method-assign]

    def expect(self, kind: str, key: str) -> asyncio.Future[Json]:
        future: asyncio.Future[Json] = asyncio.get_running_loop().create_future()
        self.waiters[(kind, key)].append(future)
        return future

    def _seen(self, message: Json) -> Json:
        # A result: a picture with buttons under it, naming whose it is.
        if message["components"] and message["attachments"]:
            for user_id in set(_MENTION.findall(str(message["content"]))):
                self._wake("result", user_id, message)
        # A refusal (a flood limit, a quota) in place of a command's answer: one "⚠️" line.
        elif str(message["content"]).startswith("⚠️") and "interaction_id" in message:
            self._wake("refused", message["interaction_id"], message)
        # The command's answer edited into "Waiting to start": admitted (Telegram's first reply says the same).
        elif message["content"] and "interaction_id" in message:
            self._wake("admitted", message["interaction_id"], message)
        return message

    def _wake(self, kind: str, key: str, value: Json) -> None:
        for future in self.waiters.pop((kind, key), []):
            if not future.done():
                future.set_result(value)


def _custom_ids(message: Json) -> list[str]:
    return [b["custom_id"] for row in message["components"] for b in row.get("components", []) if "custom_id" in b]


async def _acked(hub: DiscordHub, record: InteractionRecord, ack: asyncio.Future[Json], acks: Acks) -> None:
    if record.answered_at is None:
        await asyncio.wait_for(ack, 60)
    assert record.answered_at is not None
    acks.add(record.sent_at, record.answered_at)


async def discord_user(
    fake: FakeDiscord,
    hub: DiscordHub,
    user_id: str,
    budget: asyncio.Semaphore,
    acks: Acks,
    admitted: list[float],
    errors: Counter[str],
    think_s: float,
) -> None:
    last_result: Json | None = None
    channel = random.choice([CHANNEL_ID, NSFW_CHANNEL_ID])
    while True:
        if budget.locked():
            return
        await budget.acquire()  # one action of the shared budget; never released
        await asyncio.sleep(random.uniform(0.0, think_s))
        buttons = _custom_ids(last_result) if last_result is not None else []
        if not buttons or random.random() < 0.35:
            result = hub.expect("result", user_id)
            prompt = [{"name": "prompt", "type": 3, "value": f"load {user_id} {secrets.token_hex(3)} --ar 1:1"}]
            record = await fake.slash("imagine", prompt, user_id=user_id, channel_id=channel)
            refusal = hub.expect("refused", record.id)
            hub.expect("admitted", record.id).add_done_callback(
                lambda _f, sent=record.sent_at: admitted.append(time.monotonic() - sent)
            )
            try:
                await _acked(hub, record, hub.expect("ack", record.id), acks)
                done, _ = await asyncio.wait({result, refusal}, timeout=300, return_when=asyncio.FIRST_COMPLETED)
                if result in done:
                    last_result = result.result()
                elif refusal in done:
                    errors["imagine: refused (flood limits)"] += 1  # answered in one line; no result to wait for
                else:
                    raise TimeoutError
            except TimeoutError:
                errors["imagine: no response or no result"] += 1
        else:
            assert last_result is not None
            if last_result["id"] not in fake.messages:
                last_result = None
                continue
            record = await fake.press(last_result["id"], random.choice(buttons), user_id=user_id)
            try:
                await _acked(hub, record, hub.expect("ack", record.id), acks)
            except TimeoutError:
                errors["press: no interaction response"] += 1


#: The first seconds of a run, when every simulated user sends /imagine at once (reported apart as well).
BURST_S = 10.0


@dataclass
class Figures:
    acks: dict[str, Acks] = field(default_factory=lambda: {"discord": Acks(), "telegram": Acks()})
    admitted: list[float] = field(default_factory=list)  # Discord /imagine → "Waiting to start" (after admission)
    errors: Counter[str] = field(default_factory=Counter)


async def _settle(
    db_url: str, wait_s: float
) -> tuple[Counter[str], set[str], Counter[str], set[str], dict[str, str], set[str]]:
    """Wait (up to ``wait_s``) for every job to end and every done job's result to be posted; read what SQL says."""
    async with migrated_engine(db_url) as engine:
        sessions = session_factory(engine)
        deadline = time.monotonic() + wait_s
        while True:
            async with sessions() as session:
                open_jobs = await session.scalar(select(func.count()).where(Job.status.not_in(FINAL)))
                done_ids = set((await session.scalars(select(Job.id).where(Job.status == "done"))).all())
                posted = Counter((await session.scalars(select(Message.job_id).where(Message.kind == "result"))).all())
            if (not open_jobs and done_ids <= set(posted)) or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.5)
        async with sessions() as session:
            statuses = Counter(
                dict((await session.execute(select(Job.status, func.count()).group_by(Job.status))).all())
            )
            all_ids = set((await session.scalars(select(Job.id))).all())
            platform_of = dict((await session.execute(select(Message.job_id, Message.platform))).all())
            picks = set((await session.scalars(select(Job.id).where(Job.action == Action.UPSCALE.value))).all())
    return statuses, done_ids, posted, all_ids, platform_of, picks


def _spread(values: list[float]) -> str:
    if not values:
        return "none"
    return (
        f"p50 {statistics.median(values) * 1000:.0f} ms, p99 {_pct(values, 0.99) * 1000:.0f} ms, "
        f"max {max(values) * 1000:.0f} ms ({len(values)})"
    )


async def run(
    users: int,
    actions: int,
    workers: int,
    redis_url: str,
    *,
    discord_share: float = 0.5,
    think_s: float = 0.5,
    postgres: bool = False,
) -> dict[str, Any]:
    """Run the load and print the figures; returns them too (the smoke test reads them)."""
    with tempfile.TemporaryDirectory(prefix="impasto-load-") as tmp_name:
        tmp = Path(tmp_name)
        (tmp / "data").mkdir()
        if not postgres:
            db_url = f"sqlite:///{tmp / 'data' / 'impasto.db'}"
            return await _run(users, actions, workers, redis_url, discord_share, think_s, tmp, db_url)
        # A scratch database of its own on the test PostgreSQL, dropped at the end.
        async with scratch_database("postgresql", postgres_admin_url=TEST_POSTGRES_URL, tmp_dir=tmp) as db_url:
            return await _run(users, actions, workers, redis_url, discord_share, think_s, tmp, db_url)


async def _run(
    users: int,
    actions: int,
    workers: int,
    redis_url: str,
    discord_share: float,
    think_s: float,
    tmp: Path,
    db_url: str,
) -> dict[str, Any]:
    discord_users = round(users * discord_share)
    telegram_users = users - discord_users
    figures = Figures()
    data_dir = tmp / "data"
    async with migrated_engine(db_url):
        pass
    ns = f"impasto-load-{secrets.token_hex(4)}:"
    redis = Redis.from_url(redis_url)
    since = await events.last_id(redis, ns=keys.Namespace(ns))
    fake = FakeDiscord()
    await fake.start()
    dhub = DiscordHub(fake)
    try:
        async with FakeBotApi() as api:
            thub = Hub()
            route_calls(api, thub)
            env = process_env(data_dir, db_url, redis_url, api, ns)
            env.update(
                IMPASTO_DISCORD_TOKEN="fake-token",
                IMPASTO_DISCORD_API_URL=fake.api_url,
                IMPASTO_DISCORD_GATEWAY_URL=fake.gateway_url,
            )
            logs = tmp / "logs"
            logs.mkdir()
            commands: dict[str, list[str]] = {
                f"worker{n}": ["worker", "--renderer", "noop", "--noop-steps", "4", "--name", f"load-gpu{n}"]
                for n in range(workers)
            }
            if telegram_users:
                commands["telegram"] = ["telegram"]
            if discord_users:
                commands["discord"] = ["discord"]
            processes: dict[str, asyncio.subprocess.Process] = {}
            try:
                for name, args in commands.items():
                    out = (logs / f"{name}.log").open("wb")
                    processes[name] = await asyncio.create_subprocess_exec(
                        IMPASTO, *args, env=env, stdout=out, stderr=out, cwd=tmp
                    )
                if telegram_users:
                    await api.wait_method("deleteWebhook", timeout_s=180)
                if discord_users:
                    await fake.wait_for(lambda: "global" in fake.synced_commands and fake.identified, 180)
                    await asyncio.sleep(3)  # discord.py's guild_ready_timeout (2 s) after GUILD_CREATE

                budget = asyncio.Semaphore(actions)
                began = time.perf_counter()
                await asyncio.gather(
                    *(
                        telegram_user(api, thub, 100_000 + i, budget, figures.acks["telegram"], figures.errors)
                        for i in range(telegram_users)
                    ),
                    *(
                        discord_user(
                            fake,
                            dhub,
                            str(4100000000000000000 + i),
                            budget,
                            figures.acks["discord"],
                            figures.admitted,
                            figures.errors,
                            think_s,
                        )
                        for i in range(discord_users)
                    ),
                )
                sent_s = time.perf_counter() - began
                statuses, done_ids, posted, all_ids, platform_of, picks = await _settle(db_url, 120)
                rss = {name: _peak_rss_mb(p.pid) for name, p in processes.items()}
                cpu = {name: _cpu_s(p.pid) for name, p in processes.items()}
            finally:
                await _stop(processes.values())
            tracebacks = {path.stem: path.read_text(errors="replace").count("Traceback") for path in logs.glob("*.log")}
    finally:
        await fake.close()

    waits = await _enqueue_to_start(redis, since, all_ids, keys.Namespace(ns))
    memory = await redis.info("memory")
    ours = [k async for k in redis.scan_iter(match=ns + "*")]
    forever = [k for k in ours if await redis.ttl(k) == -1]
    for key in ours:  # leave the test Redis as we found it
        await redis.delete(key)
    await redis.aclose()

    lost = sorted(done_ids - set(posted))
    # A U1–U4 pick is posted by the adapter on each press (pressing U2 again posts its single again, by request);
    # every other result is posted by the delivery core, which must post it once.
    twice = sorted(job for job, n in posted.items() if n > 1 and job not in picks)
    reposted = sum(n - 1 for job, n in posted.items() if n > 1 and job in picks)
    by_platform = Counter(platform_of.get(job, "?") for job in all_ids)
    print(
        f"impasto load test: {users} users ({discord_users} Discord, {telegram_users} Telegram), {actions} commands "
        f"and presses, {workers} workers (no-op renderer)"
    )
    print(f"sent in {sent_s:.1f} s; jobs by status: {dict(statuses)}; jobs by platform: {dict(by_platform)}")
    for platform, values in figures.acks.items():
        if values:
            print(f"interaction → ack ({platform}): {_spread(values)}")
            if steady := values.after(BURST_S):
                print(f"interaction → ack ({platform}), after the first {BURST_S:g} s: {_spread(steady)}")
    print(f"interaction → ack (both): {_spread(figures.acks['discord'] + figures.acks['telegram'])}")
    if figures.admitted:
        # Discord acknowledges (defers) before the job service admits; Telegram's first reply comes after it.
        print(f"/imagine → admitted, 'Waiting to start' (discord): {_spread(figures.admitted)}")
    print(f"enqueue → start: {_spread(waits)}")
    lost_by = Counter(platform_of.get(job, "?") for job in lost)
    twice_by = Counter(platform_of.get(job, "?") for job in twice)
    print(f"results lost: {len(lost)} {dict(lost_by)}; results posted twice: {len(twice)} {dict(twice_by)}")
    print(f"U1–U4 singles posted again because the same U was pressed again: {reposted}")
    print("peak RSS: " + ", ".join(f"{name} {mb:.0f} MB" for name, mb in rss.items()))
    # Against the run's length: a bot near one core's worth of CPU is the limit, not the queue.
    print(f"CPU over the run ({sent_s:.0f} s sent): " + ", ".join(f"{name} {s:.1f} s" for name, s in cpu.items()))
    print(
        f"redis: used_memory {memory.get('used_memory_human')}, {len(ours)} keys left in this run's namespace, "
        f"{len(forever)} of them without expiry ({', '.join(sorted(k.decode() for k in forever)[:6])})"
    )
    print(f"tracebacks in the process logs: {tracebacks}")
    if figures.errors:
        print(f"user side (refusals, timeouts): {dict(figures.errors)}")
    return {
        "acks": figures.acks,
        "waits": waits,
        "lost": lost,
        "admitted": figures.admitted,
        "twice": twice,
        "reposted": reposted,
        "statuses": statuses,
        "rss": rss,
        "errors": figures.errors,
        "tracebacks": tracebacks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--users", type=int, default=200, help="simulated users on both platforms together")
    parser.add_argument("--actions", type=int, default=2000, help="commands and presses in all")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument("--discord-share", type=float, default=0.5, help="the share of the users on Discord (0–1)")
    parser.add_argument("--think", type=float, default=0.5, help="a Discord user's longest pause, seconds")
    parser.add_argument(
        "--redis-url", default=TEST_REDIS_URL, help="a Redis nobody flushes during the run (default: the test Redis)"
    )
    parser.add_argument("--postgres", action="store_true", help="a scratch PostgreSQL database instead of SQLite")
    args = parser.parse_args()
    asyncio.run(
        run(
            args.users,
            args.actions,
            args.workers,
            args.redis_url,
            discord_share=args.discord_share,
            think_s=args.think,
            postgres=args.postgres,
        )
    )


if __name__ == "__main__":
    main()
