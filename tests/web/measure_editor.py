"""Measures the region editor: page weight (bytes of HTML + JS + CSS) and time to first paint in headless Chromium.

    .venv/bin/python tests/web/measure_editor.py [--runs 7] [--side 1024]

Builds a scratch SQLite database and a finished job with a ``--side``² image, serves the app on 127.0.0.1 and loads
the editor ``--runs`` times in a fresh headless Chromium, printing the median of Chromium's own paint timings
(``performance.getEntriesByType("paint")``). The image itself is not page weight (it is the user's picture).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).parent))

from web_helpers import Recorder, serving

from impasto.bots.service.jobs import JobService
from impasto.bots.service.requester import Requester
from impasto.bots.web.links import editor_link
from impasto.engine.registry import load_registry
from impasto.storage.db import session_factory
from impasto.storage.images import ImageStore
from impasto.storage.lifecycle import NewImage, claim_job, complete_job
from impasto.storage.plans import parse_plans
from impasto.storage.testing import migrated_engine

#: Resolves once Chromium reports the first contentful paint (buffered: entries from before the call count too).
WAIT_FOR_PAINT = """
const done = arguments[arguments.length - 1];
new PerformanceObserver((list, observer) => {
  const all = performance.getEntriesByType("paint").map((e) => [e.name, e.startTime]);
  if (all.some(([name]) => name === "first-contentful-paint")) { observer.disconnect(); done(all); }
}).observe({ type: "paint", buffered: true });
"""

WHO = Requester("discord", "1", "bench", guild_id="9", channel_id="9")


async def measure(runs: int, side: int) -> None:
    import web_helpers
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory() as tmp:
        async with migrated_engine(f"sqlite:///{tmp}/bench.db") as engine:
            sessions = session_factory(engine)
            store = ImageStore(Path(tmp) / "images")
            plans = parse_plans({"default": "m", "plans": {"m": {"fast_gpu_hours": 10}}})
            recorder = Recorder()
            service = JobService(sessions, store, load_registry(), plans, recorder)
            (ticket,) = await service.imagine(WHO, "a lighthouse", idempotency_key="bench")
            async with sessions() as session, session.begin():
                await claim_job(session, ticket.job_id, worker="bench")
            png = web_helpers.png(side, 40)
            async with sessions() as session, session.begin():
                new = [NewImage(i, store.put(png), side, side) for i in range(5)]
                await complete_job(session, ticket.job_id, images=new, gpu_seconds=1.0)
            async with serving(service, recorder) as site:
                links = [editor_link(site.cfg, WHO, ticket.job_id, 1, "1") for _ in range(runs)]
                async with httpx.AsyncClient(base_url=site.base_url) as client:
                    html = len((await client.get(links[0])).content)
                    js = len((await client.get("/static/editor.js")).content)
                    css = len((await client.get("/static/web.css")).content)

                def load_all() -> list[tuple[float, float]]:
                    options = webdriver.ChromeOptions()
                    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
                        options.add_argument(arg)
                    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
                    timings = []
                    try:
                        for link in links:
                            driver.get(link)
                            paints = dict(driver.execute_async_script(WAIT_FOR_PAINT))
                            fcp = paints["first-contentful-paint"]
                            timings.append((paints.get("first-paint", fcp), fcp))
                    finally:
                        driver.quit()
                    return timings

                timings = await asyncio.to_thread(load_all)
    fp = statistics.median(t[0] for t in timings)
    fcp = statistics.median(t[1] for t in timings)
    print(f"editor page weight: HTML {html} B + JS {js} B + CSS {css} B = {html + js + css} B (uncompressed)")
    print(
        f"headless Chromium, {runs} loads, {side}x{side} image: first paint {fp:.0f} ms, first contentful {fcp:.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--side", type=int, default=1024)
    args = parser.parse_args()
    asyncio.run(measure(args.runs, args.side))


if __name__ == "__main__":
    main()
