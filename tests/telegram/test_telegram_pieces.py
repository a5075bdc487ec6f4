"""The pure adapter pieces: callback data, escaping, captions, keyboards, upload checks, texts."""

from __future__ import annotations

import io
import json
import threading
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from impasto.bots.service.fetch import FetchError
from impasto.bots.telegram import callback_data as cd
from impasto.bots.telegram import escaping
from impasto.bots.telegram.app import api_urls
from impasto.bots.telegram.captions import CaptionInfo, progress_caption, result_caption, waiting_caption
from impasto.bots.telegram.keyboards import cancel_keyboard, grid_keyboard, settings_keyboard, single_keyboard
from impasto.bots.telegram.texts import COMMANDS, HELP, command_menu
from impasto.bots.telegram.uploads import UploadRefused, check_image, store_fetcher, store_url
from impasto.queue.actions import BUTTONS, GRID_ROWS, SINGLE_ROWS, Action
from impasto.storage.images import ImageStore

JOB = "abcDEF0123456789"  # storage's job ids are 16 characters


def _labels_and_data(markup: object) -> list[tuple[str, str]]:
    rows = markup.inline_keyboard  # type: ignore[attr-defined]
    return [(b.text, b.callback_data) for row in rows for b in row]


@pytest.mark.parametrize("action", BUTTONS)
def test_every_action_round_trips_within_64_bytes(action: Action) -> None:
    index = 3 if action.needs_index else 0
    button = cd.JobButton(action, "x" * 48, index)
    data = cd.encode(button)
    assert len(data.encode()) <= cd.MAX_BYTES
    assert cd.decode(data) == button


@pytest.mark.parametrize(
    "data",
    [
        "",
        None,
        "j:u:0:" + JOB,  # U needs an index
        "j:us:2:" + JOB,  # single-image actions take none
        "j:u:5:" + JOB,
        "j:nope:0:" + JOB,
        "j:u:1:bad/id",
        "j:u:1:" + "x" * 60,
        "d:9:" + JOB,
        "s:mode:<b>",
        "x:1:2",
        "j:u:1",
        "c:bad/id",
        "c:" + JOB + ":1",
    ],
)
def test_decode_refuses_what_the_bot_never_made(data: str | None) -> None:
    with pytest.raises(cd.BadCallbackData):
        cd.decode(data)


@given(st.text(max_size=80))
def test_decode_never_crashes_on_garbage(data: str) -> None:
    try:
        button = cd.decode(data)
    except cd.BadCallbackData:
        return
    assert cd.encode(button) == data


def test_the_cancel_button_round_trips_and_names_its_job() -> None:
    data = cd.encode(cd.CancelButton("x" * 48))
    assert data == "c:" + "x" * 48
    assert cd.decode(data) == cd.CancelButton("x" * 48)
    [(label, callback)] = _labels_and_data(cancel_keyboard(JOB))
    assert (label, callback) == ("❌ Cancel", f"c:{JOB}")


def test_encode_refuses_bad_values() -> None:
    with pytest.raises(cd.BadCallbackData):
        cd.encode(cd.JobButton(Action.UPSCALE, JOB, 0))
    with pytest.raises(cd.BadCallbackData):
        cd.encode(cd.SettingsButton("model", "a b"))


def test_grid_keyboard_is_u_reroll_then_v_with_file_row() -> None:
    rows = grid_keyboard(JOB).inline_keyboard
    assert [b.text for b in rows[0]] == ["U1", "U2", "U3", "U4", "🔄"]
    assert [b.text for b in rows[1]] == ["V1", "V2", "V3", "V4"]
    decoded = [cd.decode(b.callback_data) for row in rows for b in row]
    assert {b.action for b in decoded if isinstance(b, cd.JobButton)} == {a for row in GRID_ROWS for a in row}
    assert cd.decode(rows[1][1].callback_data) == cd.JobButton(Action.VARIATION, JOB, 2)
    assert isinstance(decoded[-1], cd.DocumentButton)


def test_single_keyboard_has_every_tool_but_region_and_custom_zoom() -> None:
    decoded = [cd.decode(data) for _label, data in _labels_and_data(single_keyboard(JOB))]
    actions = {b.action for b in decoded if isinstance(b, cd.JobButton)}
    assert actions == {a for row in SINGLE_ROWS for a in row} - {Action.VARY_REGION, Action.ZOOM_CUSTOM}
    # With a mask editor (the web front door), Vary (Region) is offered.
    with_editor = [cd.decode(data) for _label, data in _labels_and_data(single_keyboard(JOB, mask_editor=True))]
    assert Action.VARY_REGION in {b.action for b in with_editor if isinstance(b, cd.JobButton)}
    assert any(isinstance(b, cd.DocumentButton) for b in decoded)


def test_settings_keyboard_marks_active_values() -> None:
    markup = settings_keyboard({"mode": "relax", "remix": "on", "model": "v6"}, ["v6", "v5", "bad name"])
    labels = dict(_labels_and_data(markup))
    active = [label for label in labels if label.startswith("✅")]
    assert sorted(active) == ["✅ v6", "✅ 🌐 Auto", "✅ 🎛️ Remix mode", "✅ 🐢 Relax"]  # no language chosen: automatic
    assert all(len(data.encode()) <= 64 for data in labels.values())
    assert "bad name" not in labels
    assert "✅ bad name" not in labels


def test_escaping_keeps_html_and_links_literal() -> None:
    hostile = '<a href="https://evil.example">click</a> & <b>bold</b>'
    out = escaping.text(hostile)
    assert "<" not in out
    assert ">" not in out
    assert "&amp;" in out
    assert escaping.text("x" * 50, 10) == "x" * 9 + "…"
    assert escaping.user_link("42", "<i>Al</i>") == '<a href="tg://user?id=42">&lt;i&gt;Al&lt;/i&gt;</a>'
    assert escaping.user_link('42"><script>', "Al") == "Al"


def test_caption_escapes_prompt_and_fits_telegram_limit() -> None:
    info = CaptionInfo(JOB, '<a href="x">' * 300, "42", "Bob <b>", "fast")
    caption = result_caption(info)
    assert caption.count("<a href=") == 1  # only our mention
    visible = caption.replace("&lt;", "<").replace("&gt;", ">").replace("&quot;", '"').replace("&amp;", "&")
    assert len(visible) <= escaping.CAPTION_LIMIT
    assert "(fast)" in caption
    assert JOB in caption


def test_captions_name_action_and_image() -> None:
    upscaled = CaptionInfo(JOB, "a cat", "42", "Alice", "relax", action=Action.UPSCALE.value, index=2)
    assert "Image #2" in result_caption(upscaled, single=True)
    varied = CaptionInfo(JOB, "a cat", "42", "Alice", "relax", action=Action.VARY_SUBTLE.value)
    assert "Variations (Subtle) by" in result_caption(varied)
    assert "queue position 3" in waiting_caption(varied, 3)
    assert "57%" in progress_caption(varied, 57)


def _png(size: tuple[int, int] = (8, 8), fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, (200, 10, 10)).save(buffer, fmt)
    return buffer.getvalue()


def test_check_image_accepts_png_and_jpeg() -> None:
    assert check_image(_png()).format == "PNG"
    jpeg = check_image(_png((16, 9), "JPEG"))
    assert (jpeg.format, jpeg.width_px, jpeg.height_px) == ("JPEG", 16, 9)


@pytest.mark.parametrize(
    ("data", "words"),
    [
        (b"%PDF-1.4 not an image", "not an image"),
        (_png((4, 4), "GIF"), "GIF"),
        (_png((64, 64))[:-30], "damaged"),
    ],
)
def test_check_image_refuses_with_one_line(data: bytes, words: str) -> None:
    with pytest.raises(UploadRefused) as info:
        check_image(data)
    assert words in info.value.message
    assert "\n" not in info.value.message


def test_check_image_refuses_a_decompression_bomb() -> None:
    # A 1-bit PNG of 9000×9000 pixels is a few kB on the wire and 81 megapixels decoded.
    buffer = io.BytesIO()
    Image.new("1", (9000, 9000)).save(buffer, "PNG")
    assert len(buffer.getvalue()) < 100_000
    with pytest.raises(UploadRefused, match="megapixels"):
        check_image(buffer.getvalue())


def test_command_menu_in_english_and_chinese() -> None:
    en, zh = command_menu("en"), command_menu("zh")
    assert [c for c, _ in en] == [c for c, _ in zh] == [c[0] for c in COMMANDS]
    assert en != zh
    assert all(1 <= len(d) <= 256 for _, d in en + zh)
    assert "/imagine" in HELP
    assert json.dumps(HELP)


def test_api_urls_append_the_token_after_bot() -> None:
    assert api_urls("http://127.0.0.1:8081/") == ("http://127.0.0.1:8081/bot", "http://127.0.0.1:8081/file/bot")


async def test_store_fetcher_reads_our_links_and_passes_others_on(tmp_path: Path) -> None:
    store = ImageStore(tmp_path)
    key = store.put(_png(), "png")
    seen: list[str] = []

    async def fallback(url: str) -> bytes:
        seen.append(url)
        return b"remote"

    fetch = store_fetcher(store, fallback)
    assert await fetch(store_url(key)) == store.get(key)
    assert await fetch("https://example.org/a.png") == b"remote"
    assert seen == ["https://example.org/a.png"]
    with pytest.raises(FetchError):
        await fetch(store_url("0" * 64 + ".png"))  # a well-formed key this store never held
    with pytest.raises(FetchError):
        await fetch(store_url("../../etc/passwd"))


async def test_store_fetcher_reads_a_bucket_off_the_event_loop(tmp_path: Path) -> None:
    """A store with a bucket behind it reads over the network: never on the bot's event loop."""
    threads: list[int] = []
    objects: dict[str, bytes] = {}

    class Bucket:
        def upload(self, key: str, data: bytes) -> None:
            objects[key] = data

        def download(self, key: str) -> bytes | None:
            threads.append(threading.get_ident())
            return objects.get(key)

        def exists(self, key: str) -> bool:
            threads.append(threading.get_ident())
            return key in objects

        def remove(self, key: str) -> bool:
            return objects.pop(key, None) is not None

    key = ImageStore(tmp_path / "gpu", remote=Bucket()).put(_png(), "png")
    threads.clear()

    async def fallback(url: str) -> bytes:
        raise AssertionError(url)

    fetch = store_fetcher(ImageStore(tmp_path / "bot", remote=Bucket()), fallback)  # this host never saw it
    assert await fetch(store_url(key)) == objects[key]
    assert threads
    assert threading.get_ident() not in threads
