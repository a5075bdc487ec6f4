"""A load test you can rerun: many simulated Telegram users against ``impasto telegram`` and N ``impasto worker``s.

    .venv/bin/python tests/telegram/load_telegram.py [--users 200] [--actions 2000] [--workers 4]

Starts the fake Bot API server here, the bot and the workers (no-op renderer) as real processes on a fresh SQLite
database and Redis (``--redis-url``, default db 15; its own queue namespace), and lets each user send ``/imagine``
and press buttons on their results (U1–U4, V1–V4, 🔄) with short random pauses, until ``--actions`` commands and
presses were sent. Prints:

* interaction → ack: update pushed → the bot's first answer (its "queued" reply, or ``answerCallbackQuery``);
* enqueue → start p50/p99, from the event stream (entry ids are Redis's millisecond clock);
* results lost (a job done in SQL with no result posted; must be 0) and results posted twice (must be 0);
* peak RSS (VmHWM) of the bot and of each worker process; Redis memory at the end.

A script, not a test: it asserts nothing and only prints numbers. Linux only (reads /proc).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import random
import secrets
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).parent))

from fake_botapi import TOKEN, Call, FakeBotApi
from redis.asyncio import Redis
from sqlalchemy import func, select
from tg_harness import TEST_REDIS_URL

from impasto.queue import events, keys
from impasto.storage.db import session_factory
from impasto.storage.models import Job, Message
from impasto.storage.testing import migrated_engine

IMPASTO = str(Path(sys.executable).parent / "impasto")
FINAL = ("done", "failed", "cancelled")


class Hub:
    """Routes the bot's calls to the simulated user waiting for them (the fake records; this wakes)."""

    def __init__(self) -> None:
        self.waiters: dict[tuple[str, str], list[asyncio.Future[Call]]] = defaultdict(list)

    def expect(self, kind: str, key: str) -> asyncio.Future[Call]:
        future: asyncio.Future[Call] = asyncio.get_running_loop().create_future()
        self.waiters[(kind, key)].append(future)
        return future

    def on_call(self, call: Call) -> None:
        if call.method == "answerCallbackQuery":
            self._wake("ack", str(call.params.get("callback_query_id")), call)
            return
        chat = call.params.get("chat_id")
        if chat is None:
            return
        self._wake("reply", str(chat), call)
        if call.method in ("sendPhoto", "editMessageMedia") and "reply_markup" in call.params:
            self._wake("result", str(chat), call)

    def _wake(self, kind: str, key: str, call: Call) -> None:
        for future in self.waiters.pop((kind, key), []):
            if not future.done():
                future.set_result(call)


def _keyboard(call: Call) -> list[str]:
    markup = call.params.get("reply_markup") or {}
    return [b["callback_data"] for row in markup.get("inline_keyboard", []) for b in row if "callback_data" in b]


def refused(call: Call) -> bool:
    """The bot's reply is a refusal (a flood limit, a quota): one "⚠️" line."""
    return str(call.params.get("text") or call.params.get("caption") or "").startswith("⚠️")


def _message_of(call: Call) -> dict[str, Any]:
    result = call.result if isinstance(call.result, dict) else {}
    return result


class Acks(list[float]):
    """Interaction → ack durations (seconds), and when each interaction was sent: the burst of the first seconds,
    when every user sends /imagine at once, and the steady state after it are told apart (``after``)."""

    def __init__(self) -> None:
        super().__init__()
        self.sent_at: list[float] = []

    def add(self, sent: float, answered: float) -> None:
        self.append(answered - sent)
        self.sent_at.append(sent)

    def after(self, seconds: float) -> list[float]:
        """The durations of interactions sent more than ``seconds`` after the first one."""
        if not self.sent_at:
            return []
        start = min(self.sent_at)
        return [d for d, at in zip(self, self.sent_at, strict=True) if at - start > seconds]


async def user(
    api: FakeBotApi, hub: Hub, user_id: int, budget: asyncio.Semaphore, acks: Acks, errors: Counter[str]
) -> None:
    last_result: Call | None = None
    while True:
        if budget.locked():
            return
        await budget.acquire()  # one action of the shared budget; never released
        await asyncio.sleep(random.uniform(0.0, 0.5))  # think time
        buttons = _keyboard(last_result) if last_result is not None else []
        if not buttons or random.random() < 0.35:
            reply = hub.expect("reply", str(user_id))
            result = hub.expect("result", str(user_id))
            sent = time.perf_counter()
            await api.push(
                api.message(
                    f"/imagine load {user_id} {secrets.token_hex(3)} --ar 1:1", chat_id=user_id, user_id=user_id
                )
            )
            try:
                answer = await asyncio.wait_for(reply, 60)
                acks.add(sent, time.perf_counter())
                if refused(answer):
                    errors["imagine: refused (flood limits)"] += 1  # answered in one line; no result to wait for
                    continue
                last_result = await asyncio.wait_for(result, 300)
            except TimeoutError:
                errors["imagine: no reply or no result"] += 1
        else:
            assert last_result is not None
            update = api.callback(random.choice(buttons), _message_of(last_result), user_id=user_id)
            ack = hub.expect("ack", update["callback_query"]["id"])
            sent = time.perf_counter()
            await api.push(update)
            try:
                await asyncio.wait_for(ack, 60)
                acks.add(sent, time.perf_counter())
            except TimeoutError:
                errors["press: no answerCallbackQuery"] += 1


def route_calls(api: FakeBotApi, hub: Hub) -> None:
    """Every call the bot makes to the fake Bot API, recorded as before and handed to ``hub`` as it arrives."""
    record = api._record

    async def routed(call: Call) -> None:
        await record(call)
        hub.on_call(call)

    api._record = routed  # type: ignore[method-assign]


def process_env(data_dir: Path, db_url: str, redis_url: str, api: FakeBotApi, ns: str) -> dict[str, str]:
    """The environment of the load's bot and worker processes: this one's, less its IMPASTO_ settings, plus one
    database, Redis, queue namespace and the fake Bot API (``load_both`` adds the fake Discord's)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("IMPASTO_") or k.startswith("IMPASTO_TEST_")}
    env.update(
        IMPASTO_DATA_DIR=str(data_dir),
        IMPASTO_DATABASE_URL=db_url,
        IMPASTO_REDIS_URL=redis_url,
        IMPASTO_DEFAULT_MODEL="tiny-sd15",
        IMPASTO_TELEGRAM_TOKEN=TOKEN,
        IMPASTO_TELEGRAM_API_URL=api.url,
        IMPASTO_TELEGRAM_CONSUMER=f"load-{os.getpid()}",
        IMPASTO_QUEUE_NAMESPACE=ns,
        NO_PROXY="127.0.0.1,localhost",
        no_proxy="127.0.0.1,localhost",
    )
    return env


def _peak_rss_mb(pid: int) -> float:
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _cpu_s(pid: int) -> float:
    """User + system CPU seconds a running process has used (``/proc/PID/stat`` fields 14 and 15)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return float("nan")


async def _stop(processes: Iterable[asyncio.subprocess.Process]) -> None:
    """SIGTERM every process still running, then SIGKILL what has not ended 30 s later."""
    running = list(processes)
    for process in running:
        if process.returncode is None:
            process.terminate()
    for process in running:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(process.wait(), 30)
        if process.returncode is None:
            process.kill()
            await process.wait()


def _ms(entry_id: bytes | str) -> int:
    text = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return int(text.split("-", 1)[0])


async def _enqueue_to_start(redis: Redis, since: str, job_ids: set[str], ns: keys.Namespace) -> list[float]:
    queued: dict[str, int] = {}
    started: dict[str, int] = {}
    cursor = since
    while True:
        batch = await redis.xrange(ns.events, min=f"({cursor}", max="+", count=5000)
        if not batch:
            break
        for entry_id, fields in batch:
            job = fields.get(b"job", b"").decode()
            if job in job_ids:
                kind = fields.get(b"kind", b"").decode()
                if kind == "queued":
                    queued.setdefault(job, _ms(entry_id))
                elif kind == "started":
                    started.setdefault(job, _ms(entry_id))
        cursor = batch[-1][0].decode()
    return [(started[j] - queued[j]) / 1000 for j in started if j in queued]


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def run(users: int, actions: int, workers: int, redis_url: str) -> None:
    with tempfile.TemporaryDirectory(prefix="impasto-load-") as tmp_name:
        tmp = Path(tmp_name)
        data_dir = tmp / "data"
        data_dir.mkdir()
        db_url = f"sqlite:///{data_dir / 'impasto.db'}"
        async with migrated_engine(db_url):
            pass
        ns = f"impasto-load-{secrets.token_hex(4)}:"
        redis = Redis.from_url(redis_url)
        since = await events.last_id(redis, ns=keys.Namespace(ns))
        async with FakeBotApi() as api:
            hub = Hub()
            route_calls(api, hub)
            env = process_env(data_dir, db_url, redis_url, api, ns)
            logs = tmp / "logs"
            logs.mkdir()
            processes: dict[str, asyncio.subprocess.Process] = {}
            try:
                for n in range(workers):
                    args = ["worker", "--renderer", "noop", "--noop-steps", "4", "--name", f"load-gpu{n}"]
                    out = (logs / f"worker{n}.log").open("wb")
                    processes[f"worker{n}"] = await asyncio.create_subprocess_exec(
                        IMPASTO, *args, env=env, stdout=out, stderr=out, cwd=tmp
                    )
                out = (logs / "telegram.log").open("wb")
                processes["telegram"] = await asyncio.create_subprocess_exec(
                    IMPASTO, "telegram", env=env, stdout=out, stderr=out, cwd=tmp
                )
                await api.wait_method("deleteWebhook", timeout_s=180)

                acks = Acks()
                errors: Counter[str] = Counter()
                budget = asyncio.Semaphore(actions)
                began = time.perf_counter()
                await asyncio.gather(*(user(api, hub, 100_000 + i, budget, acks, errors) for i in range(users)))
                sent_s = time.perf_counter() - began

                # Let every job end and its result be posted (SQL is the record), up to two minutes.
                engine_sessions = migrated_engine(db_url)
                async with engine_sessions as engine:
                    sessions = session_factory(engine)
                    deadline = time.monotonic() + 120
                    while True:
                        async with sessions() as session:
                            open_jobs = await session.scalar(select(func.count()).where(Job.status.not_in(FINAL)))
                            done_ids = set((await session.scalars(select(Job.id).where(Job.status == "done"))).all())
                            posted = Counter(
                                (await session.scalars(select(Message.job_id).where(Message.kind == "result"))).all()
                            )
                        if (not open_jobs and done_ids <= set(posted)) or time.monotonic() > deadline:
                            break
                        await asyncio.sleep(0.5)
                    async with sessions() as session:
                        statuses = Counter(
                            dict((await session.execute(select(Job.status, func.count()).group_by(Job.status))).all())
                        )
                        all_ids = set((await session.scalars(select(Job.id))).all())
                rss = {name: _peak_rss_mb(p.pid) for name, p in processes.items()}
            finally:
                await _stop(processes.values())

        waits = await _enqueue_to_start(redis, since, all_ids, keys.Namespace(ns))
        memory = await redis.info("memory")
        ours = [k async for k in redis.scan_iter(match=ns + "*")]
        forever = [k for k in ours if await redis.ttl(k) == -1]
        await redis.aclose()

    lost = len(done_ids - set(posted))
    twice = sum(1 for n in posted.values() if n > 1)
    photos = len([c for c in api.calls if c.method in ("sendPhoto", "editMessageMedia") and "reply_markup" in c.params])
    print(f"impasto load test: {users} users, {actions} commands and presses, {workers} workers (no-op renderer)")
    print(f"sent in {sent_s:.1f} s; jobs by status: {dict(statuses)}; result photos sent: {photos}")
    if acks:
        print(
            f"interaction → ack: p50 {statistics.median(acks) * 1000:.0f} ms, p99 {_pct(acks, 0.99) * 1000:.0f} ms, "
            f"max {max(acks) * 1000:.0f} ms ({len(acks)} acks)"
        )
    if waits:
        print(
            f"enqueue → start: p50 {statistics.median(waits) * 1000:.0f} ms, p99 {_pct(waits, 0.99) * 1000:.0f} ms "
            f"({len(waits)} jobs)"
        )
    print(f"results lost: {lost}; results posted twice: {twice}")
    print("peak RSS: " + ", ".join(f"{name} {mb:.0f} MB" for name, mb in rss.items()))
    print(
        f"redis: used_memory {memory.get('used_memory_human')}, {len(ours)} keys left in this run's namespace, "
        f"{len(forever)} of them without expiry ({', '.join(sorted(k.decode() for k in forever)[:6])})"
    )
    if errors:
        print(f"user side (refusals, timeouts): {dict(errors)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--users", type=int, default=200)
    parser.add_argument("--actions", type=int, default=2000, help="commands and presses in all")
    parser.add_argument("--workers", type=int, default=4)
    parser.add_argument(
        "--redis-url", default=TEST_REDIS_URL, help="a Redis nobody flushes during the run (default: the test Redis)"
    )
    args = parser.parse_args()
    asyncio.run(run(args.users, args.actions, args.workers, args.redis_url))


if __name__ == "__main__":
    main()
