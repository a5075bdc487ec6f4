"""The adapter's pure pieces: button ids, message texts and escaping, attachment intake, progress spacing."""

from __future__ import annotations

import io
import re
import warnings

import pytest
from hypothesis import given
from hypothesis import strategies as st
from PIL import Image

from impasto.bots.discord import texts
from impasto.bots.discord.custom_ids import MAX_CUSTOM_ID, ButtonId, InvalidCustomId, SettingId
from impasto.bots.discord.delivery import image_file
from impasto.bots.discord.intake import AttachmentRefused, check_declared, check_image
from impasto.bots.discord.views import grid_view, single_view
from impasto.queue.actions import BUTTONS, Action

JOB_IDS = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", min_size=1, max_size=80)


@given(job_id=JOB_IDS, action=st.sampled_from(BUTTONS), index=st.integers(0, 4))
def test_button_ids_round_trip_within_discords_limit(job_id: str, action: Action, index: int) -> None:
    button = ButtonId(job_id, action, index)
    encoded = button.encode()
    assert len(encoded) <= MAX_CUSTOM_ID
    assert ButtonId.decode(encoded) == button


@pytest.mark.parametrize(
    "custom_id",
    [
        "imp:zz:1:job1",  # unknown action
        "imp:u:7:job1",  # index out of range
        "imp:u:1:" + "x" * 81,  # job id too long
        "imp:u:1:job 1",  # space in the job id
        "mj:job1:U2",  # somebody else's
        "imp:u:1:job1:extra",
    ],
)
def test_bad_button_ids_are_refused(custom_id: str) -> None:
    with pytest.raises(InvalidCustomId):
        ButtonId.decode(custom_id)


def test_setting_ids() -> None:
    assert SettingId.decode(SettingId("stylize", "250").encode()) == SettingId("stylize", "250")
    assert SettingId.decode("imp:set:remix") == SettingId("remix")
    with pytest.raises(InvalidCustomId):
        SettingId.decode("imp:set:")


def test_grid_and_single_views_fit_discords_limits() -> None:
    grid = grid_view("abcdefghijkl")
    assert [b.custom_id for b in grid.children][:2] == ["imp:u:1:abcdefghijkl", "imp:u:2:abcdefghijkl"]  # type: ignore[attr-defined]
    assert len(grid.children) == 9
    single = single_view("abcdefghijkl", 2)
    assert len(single.children) == 16  # Vary (Region) only with a mask editor
    assert len(single_view("abcdefghijkl", 2, mask_editor=True).children) == 17
    assert len(single_view("abcdefghijkl", 2, square=True).children) == 15  # no Make Square on a square image
    assert all(len(item.to_component_dict()["custom_id"]) <= 100 for item in single.children)  # type: ignore[attr-defined]


def test_texts_follow_midjourney() -> None:
    assert texts.waiting("a cat", "42") == "**a cat** - <@42> (Waiting to start)"
    assert texts.progress("a cat", "42", 37, "fast") == "**a cat** - <@42> (37%) (fast)"
    assert texts.progress("a cat", "42", 5, "relax") == "**a cat** - <@42> (5%) (relaxed)"
    assert texts.single("a cat", "42", 2) == "**a cat** - Image #2 <@42>"
    assert texts.finished("a cat", "42", "turbo", what="Zoom Out") == "**a cat** - Zoom Out by <@42> (turbo)"


def test_escaping_breaks_mentions_and_markdown() -> None:
    shown = texts.shown_prompt("@everyone @here <@123456789012345678> <@&123456789012345678> **x** `y`")
    assert "@everyone" not in shown
    assert "@here" not in shown
    assert "<@123456789012345678>" not in shown
    assert "<@&123456789012345678>" not in shown
    assert "\\*\\*x\\*\\*" in shown
    assert texts.NO_MENTIONS.to_dict() == {"parse": []}


def test_code_spans_show_text_verbatim_and_cannot_be_closed() -> None:
    assert texts.code("--ar 2:3 **x**") == "--ar 2:3 **x**"  # no backslashes: Discord shows a code span as is
    assert "`" not in texts.code("a ` b")


def test_the_model_dropdown_has_one_handler() -> None:
    from impasto.bots.discord.custom_ids import SETTING_TEMPLATE

    assert re.fullmatch(SETTING_TEMPLATE, "imp:set:model") is None
    assert re.fullmatch(SETTING_TEMPLATE, "imp:set:mode:fast") is not None


def test_long_prompts_are_cut_to_fit_a_message() -> None:
    content = texts.finished("word " * 1000, "4000000000000000001", "fast")
    assert len(content) <= texts.MAX_MESSAGE


def png(width: int, height: int, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (width, height), "red").save(buffer, fmt)
    return buffer.getvalue()


def test_intake_accepts_images() -> None:
    checked = check_image("a.jpg", png(20, 10, "JPEG"), 1_000_000)
    assert (checked.format, checked.width_px, checked.height_px) == ("JPEG", 20, 10)


def test_intake_refuses_big_files_before_download() -> None:
    with pytest.raises(AttachmentRefused, match=re.escape("'big.png' is 12.0 MB; the limit is 10.0 MB")):
        check_declared("big.png", 12_000_000, "image/png", 10_000_000)
    with pytest.raises(AttachmentRefused, match="only PNG, JPEG, WebP or GIF"):
        check_declared("a.pdf", 100, "application/pdf", 10_000_000)


def test_intake_refuses_non_images_and_truncated_files() -> None:
    with pytest.raises(AttachmentRefused, match="not an image"):
        check_image("a.png", b"%PDF-1.4 hello", 1_000_000)
    with pytest.raises(AttachmentRefused, match="not an image"):
        check_image("a.png", png(64, 64)[:60], 1_000_000)
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8)).save(buffer, "BMP")
    with pytest.raises(AttachmentRefused, match="is BMP"):
        check_image("a.bmp", buffer.getvalue(), 1_000_000)


def test_intake_refuses_decompression_bombs() -> None:
    # A small file that decodes to 64 megapixels: refused from its header, before the pixels are decoded.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        bomb = png(8192, 8192)
    assert len(bomb) < 1_000_000
    with pytest.raises(AttachmentRefused, match="8192×8192 px"):
        check_image("bomb.png", bomb, 10_000_000)


def test_spoiler_hook() -> None:
    assert image_file(b"x", "a.png", flagged=True).filename == "SPOILER_a.png"
    assert image_file(b"x", "a.png", flagged=True, nsfw_channel=True).filename == "a.png"
    assert image_file(b"x", "a.png").filename == "a.png"
