"""The galleries' reading on both databases: pages, search, ❤️, stealth, other servers, lineage."""

from __future__ import annotations

from web_helpers import Site

from impasto.bots.service.gallery import Gallery
from impasto.bots.service.requester import Requester
from impasto.queue.actions import Action

ADA = Requester("telegram", "1", "ada", guild_id="-100", channel_id="-100")
BOB = Requester("telegram", "2", "bob", guild_id="-100", channel_id="-100")
ELSEWHERE = Requester("telegram", "2", "bob", guild_id="-200", channel_id="-200")


async def test_pages_filters_and_scopes(site: Site) -> None:
    made = [await site.finished(ADA, f"a fox number {i}", f"p-{i}") for i in range(5)]
    await site.service.press(ADA, made[1].job_id, Action.FAVORITE, idempotency_key="p-fav")
    await site.service.update_settings(ADA, visibility="stealth")
    hidden = await site.finished(ADA, "a hidden fox", "p-hidden")
    other_server = await site.finished(ELSEWHERE, "a fox elsewhere", "p-else")
    queued = (await site.service.imagine(ADA, "a fox not painted yet", idempotency_key="p-queued"))[0]
    gallery = Gallery(site.sessions, page_size=2)

    first = await gallery.mine("telegram", "1")
    assert [j.job_id for j in first.jobs] == [hidden.job_id, made[4].job_id]
    assert first.has_next
    third = await gallery.mine("telegram", "1", page=3)
    assert [j.job_id for j in third.jobs] == [made[1].job_id, made[0].job_id]
    assert not third.has_next
    assert queued.job_id not in {
        j.job_id for p in (1, 2, 3) for j in (await gallery.mine("telegram", "1", page=p)).jobs
    }

    found = await gallery.mine("telegram", "1", search="NUMBER 3")
    assert [j.job_id for j in found.jobs] == [made[3].job_id]
    assert [j.job_id for j in (await gallery.mine("telegram", "1", search="%")).jobs] == []
    assert [j.job_id for j in (await gallery.mine("telegram", "1", favorites_only=True)).jobs] == [made[1].job_id]

    public = Gallery(site.sessions, page_size=10)
    here = {j.job_id for j in (await public.public("telegram", "-100")).jobs}
    assert here == {m.job_id for m in made}  # not the stealth one, not another server's
    assert {j.job_id for j in (await public.public("telegram", "-200")).jobs} == {other_server.job_id}
    assert (await public.public("discord", "-100")).jobs == ()

    child = (await site.service.press(BOB, made[2].job_id, Action.UPSCALE, 1, idempotency_key="p-u1")).view
    lineage = await public.lineage(child, viewer=("telegram", "2"))
    assert lineage.parent is not None
    assert lineage.parent.job_id == made[2].job_id
    assert [c.job_id for c in (await public.lineage(made[2], viewer=None)).children] == [child.job_id]
