"""``impasto admin …`` on SQLite and PostgreSQL: grants through the ledger, plans, caps, cancel, and the user report."""

from __future__ import annotations

import asyncio
import json

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from impasto.bots import cli
from impasto.storage import admin, ledger
from impasto.storage.models import CANCELLED, RUNNING, Guild, Job, LedgerEntry, Usage, User, utcnow

PERIOD = ledger.month_period(utcnow())
HOUR = 3600.0


@pytest.fixture
def admin_env(db_url: str, clean_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: object) -> str:
    monkeypatch.setenv("IMPASTO_DATABASE_URL", db_url)
    monkeypatch.setenv("IMPASTO_OPERATOR", "ops-alice")
    monkeypatch.setenv("IMPASTO_DATA_DIR", str(tmp_path))
    return db_url


async def _impasto(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    # The console runs its own event loop (asyncio.run): give it a thread of its own.
    rc = await asyncio.to_thread(cli.main, list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


async def _queued_job(
    sessions: async_sessionmaker[AsyncSession], *, reserve: float = 10.0, status: str = "queued", key: str = "k"
) -> str:
    async with sessions() as session, session.begin():
        user = await admin.ensure_user(session, "discord", "42")
        assert await ledger.try_reserve(session, user.id, PERIOD, reserve, limit=100.0)
        job = Job(
            user_id=user.id,
            action="imagine",
            prompt="a lighthouse",
            seed=7,
            model="tiny-sd15",
            mode="fast",
            status=status,
            idempotency_key=f"{key}/0",
            request_key=key,
            reserved_gpu_seconds=reserve,
            month_period=PERIOD,
            released_at=utcnow(),
        )
        session.add(job)
        await session.flush()
        return job.id


async def _usage(sessions: async_sessionmaker[AsyncSession], platform_user_id: str = "42") -> tuple[float, float]:
    async with sessions() as session:
        row = (
            await session.execute(
                select(Usage.used_gpu_seconds, Usage.reserved_gpu_seconds)
                .join(User, User.id == Usage.user_id)
                .where(User.platform_user_id == platform_user_id, Usage.period == PERIOD)
            )
        ).one()
        return (row[0], row[1])


async def test_grant_lets_admission_spend_past_the_plan(sessions: async_sessionmaker[AsyncSession]) -> None:
    limit = 1 * HOUR  # the plan's month
    async with sessions() as session, session.begin():
        user = await admin.ensure_user(session, "telegram", "7")
        assert await ledger.try_reserve(session, user.id, PERIOD, limit, limit=limit)
        assert not await ledger.try_reserve(session, user.id, PERIOD, 60.0, limit=limit)  # spent
        await admin.grant(session, user, 0.5 * HOUR, note="contest")
        assert await ledger.try_reserve(session, user.id, PERIOD, 0.5 * HOUR, limit=limit)  # the grant, exactly
        assert not await ledger.try_reserve(session, user.id, PERIOD, 1.0, limit=limit)
        await admin.grant(session, user, -0.25 * HOUR)
    async with sessions() as session:
        entries = (await session.scalars(select(LedgerEntry).order_by(LedgerEntry.id))).all()
    assert [(e.kind, e.gpu_seconds, e.job_id, e.note) for e in entries] == [
        ("grant", 0.5 * HOUR, None, "contest"),
        ("revoke", 0.25 * HOUR, None, None),
    ]
    assert await _usage(sessions, "7") == (-0.25 * HOUR, 1.5 * HOUR)


async def test_console_credits_plan_cap_and_show(
    admin_env: str, sessions: async_sessionmaker[AsyncSession], capsys: pytest.CaptureFixture[str]
) -> None:
    await _queued_job(sessions)
    rc, out, _ = await _impasto("admin", "credits", "grant", "discord:42", "2.5", "--note", "thanks", capsys=capsys)
    assert rc == 0, out
    assert "granted 2.5 fast hours to discord:42" in out
    rc, out, _ = await _impasto("admin", "credits", "revoke", "discord:42", "0.5", capsys=capsys)
    assert rc == 0
    assert await _usage(sessions) == (-2.0 * HOUR, 10.0)

    rc, out, _ = await _impasto("admin", "plan", "set", "discord:42", "pro", capsys=capsys)
    assert (rc, out.strip()) == (0, "discord:42 is on plan 'pro' (30 fast hours a month)")
    rc, _, err = await _impasto("admin", "plan", "set", "discord:42", "platinum", capsys=capsys)
    assert rc == 2
    assert "unknown plan 'platinum'; plans: basic, mega, pro, standard" in err

    rc, out, _ = await _impasto("admin", "cap", "set", "discord:5678", "0.5", capsys=capsys)
    assert rc == 0
    async with sessions() as session:
        guild = await session.scalar(select(Guild).where(Guild.platform_guild_id == "5678"))
        assert guild is not None
        assert guild.daily_cap_gpu_seconds == 1800.0
    rc, out, _ = await _impasto("admin", "cap", "set", "discord:5678", "off", capsys=capsys)
    assert rc == 0
    async with sessions() as session:
        assert await session.scalar(select(Guild.daily_cap_gpu_seconds)) is None

    rc, out, _ = await _impasto("admin", "user", "show", "discord:42", "--json", capsys=capsys)
    assert rc == 0
    report = json.loads(out)
    assert report["plan_override"] == "pro"
    assert report["used_gpu_seconds"] == -2.0 * HOUR
    assert report["active_jobs"] == 1
    assert [g["kind"] for g in report["grants"]] == ["revoke", "grant"]
    assert report["jobs"][0]["prompt"] == "a lighthouse"
    rc, out, _ = await _impasto("admin", "user", "show", "discord:42", capsys=capsys)
    assert "plan:           pro (set by an operator)" in out
    assert "left 32.00 of 30 h" in out  # 30 h + 2 h granted − the 10 s held (31.997 h)

    rc, out, _ = await _impasto("admin", "plan", "set", "discord:42", "default", capsys=capsys)
    async with sessions() as session:
        assert await session.scalar(select(User.plan).where(User.platform_user_id == "42")) is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["credits", "grant", "discord42", "1"], "'discord42' is not a user: write PLATFORM:ID"),
        (["credits", "grant", "slack:1", "1"], "'slack:1' is not a user"),
        (["credits", "grant", "discord:1", "0"], "'0' hours: use more than 0"),
        (["credits", "grant", "discord:1", "nan"], "'nan' hours"),
        (["credits", "revoke", "discord:1", "lots"], "'lots' is not a number of hours"),
        (["cap", "set", "console:1", "1"], "the console has no servers"),
        (["user", "show", "telegram:99"], "telegram:99 has never used impasto"),
    ],
)
async def test_console_refuses_bad_input_and_writes_nothing(
    admin_env: str,
    sessions: async_sessionmaker[AsyncSession],
    capsys: pytest.CaptureFixture[str],
    argv: list[str],
    message: str,
) -> None:
    rc, _, err = await _impasto("admin", *argv, capsys=capsys)
    assert rc == 2
    assert message in err
    assert err.count("\n") == 1  # one line, no traceback
    async with sessions() as session:
        assert (await session.scalars(select(LedgerEntry))).all() == []
        assert await admin.recent_actions(session) == []


async def test_cancel_refunds_a_queued_job_and_flags_a_running_one(
    admin_env: str, sessions: async_sessionmaker[AsyncSession], capsys: pytest.CaptureFixture[str]
) -> None:
    queued = await _queued_job(sessions, reserve=10.0, key="a")
    running = await _queued_job(sessions, reserve=5.0, status=RUNNING, key="b")

    rc, out, _ = await _impasto("admin", "cancel", "--", queued, capsys=capsys)
    assert rc == 0
    assert f"job {queued} cancelled and refunded" in out
    assert "IMPASTO_REDIS_URL is not set" in out
    assert await _usage(sessions) == (0.0, 5.0)

    rc, out, _ = await _impasto("admin", "cancel", "--", running, capsys=capsys)
    assert rc == 0
    assert "its worker stops it at the next step" in out
    async with sessions() as session:
        rows = dict((await session.execute(select(Job.id, Job.status))).all())
        flagged = await session.scalar(select(Job.cancel_requested).where(Job.id == running))
    assert rows == {queued: CANCELLED, running: RUNNING}
    assert flagged is True

    rc, out, _ = await _impasto("admin", "cancel", "--", queued, capsys=capsys)
    assert (rc, out.strip()) == (0, f"job {queued} is already cancelled: nothing to cancel")
    rc, _, err = await _impasto("admin", "cancel", "nope", capsys=capsys)
    assert (rc, err.strip()) == (2, "no job 'nope'")
    async with sessions() as session:
        kinds = (await session.scalars(select(LedgerEntry.kind).where(LedgerEntry.job_id == queued))).all()
    assert kinds == ["release"]


async def test_every_change_is_in_the_operators_log(
    admin_env: str, sessions: async_sessionmaker[AsyncSession], capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = await _queued_job(sessions)
    for argv in (
        ("credits", "grant", "discord:42", "1", "--note", "bug bounty"),
        ("plan", "set", "discord:42", "pro"),
        ("cap", "set", "telegram:-100123", "0.25"),
        ("cancel", "--", job_id),
    ):
        rc, _, err = await _impasto("admin", *argv, capsys=capsys)
        assert rc == 0, err
    async with sessions() as session:
        actions = await admin.recent_actions(session)
    assert [(a.operator, a.command, a.target) for a in actions] == [
        ("ops-alice", "cancel", job_id),
        ("ops-alice", "cap set", "telegram:-100123"),
        ("ops-alice", "plan set", "discord:42"),
        ("ops-alice", "credits grant", "discord:42"),
    ]
    assert actions[0].detail == {"was": "queued", "now": "cancelled"}
    assert actions[2].detail == {"plan": "pro", "was": None}
    assert actions[3].detail == {"hours": 1.0, "note": "bug bounty"}

    rc, out, _ = await _impasto("admin", "log", "discord:42", capsys=capsys)
    lines = out.strip().splitlines()
    assert rc == 0
    assert len(lines) == 2
    assert "ops-alice" in lines[0]
    assert "plan set" in lines[0]
    assert '"plan": "pro"' in lines[0]
    rc, out, _ = await _impasto("admin", "log", "nobody:1", capsys=capsys)
    assert (rc, out.strip()) == (0, "no operator actions on nobody:1")
