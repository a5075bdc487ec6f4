"""Fixed texts: the command menu (English and Chinese) and ``/help``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

# (command, English description, Chinese description). Telegram: command 1–32 chars [a-z0-9_], description 1–256.
COMMANDS: Sequence[tuple[str, str, str]] = (
    ("imagine", "Paint four images from a prompt", "根据提示词生成四张图片"),
    ("blend", "Blend 2–5 photos (send them as an album)", "融合 2–5 张图片（以相册发送）"),
    ("describe", "Four prompts for an image", "为图片写出四条提示词"),
    ("settings", "Your defaults: model, style, mode, remix", "个人设置：模型、风格、模式、混音"),
    ("prefer", "Prompt suffix and custom --options", "提示词后缀与自定义 --选项"),
    ("info", "Your usage and queued jobs", "用量与排队中的任务"),
    ("fast", "Switch to fast mode", "切换到快速模式"),
    ("relax", "Switch to relax mode", "切换到慢速模式"),
    ("turbo", "Switch to turbo mode", "切换到极速模式"),
    ("history", "Your recent jobs", "最近的任务"),
    ("gallery", "This group's public gallery", "本群的公开画廊"),
    ("show", "Post a job again with its buttons", "重新发送任务及其按钮"),
    ("help", "How to write prompts", "提示词写法说明"),
)


def command_menu(language: str) -> list[tuple[str, str]]:
    """``(command, description)`` pairs for ``setMyCommands``; ``language`` is ``"en"`` or ``"zh"``."""
    column = 2 if language == "zh" else 1
    return [(row[0], row[column]) for row in COMMANDS]


MENU_LANGUAGES: Mapping[str | None, str] = {None: "en", "zh": "zh"}  # None = the default menu for every language

START = (
    "<b>Hello! I paint pictures from words.</b>\n"
    "Try <code>/imagine a lighthouse at dusk --ar 16:9</code>, then press the buttons under the grid.\n"
    "/help explains the prompt language; /settings sets your defaults."
)

HELP = """<b>impasto — prompts in short</b>
<code>/imagine a red fox in snow --ar 3:2 --no people</code>

<b>Parameters</b> (after the text, each with a space before <code>--</code>):
<code>--ar W:H</code> aspect ratio · <code>--no a, b</code> leave things out · <code>--seed N</code> repeatable
<code>--chaos 0–100</code> varied grid · <code>--stylize 0–1000</code> (<code>--s</code>)
<code>--q .5|1|2</code> quality · <code>--stop 10–100</code> · <code>--tile</code> · <code>--iw 0–3</code> image weight
<code>--style raw</code> · <code>--v 6</code> / <code>--niji 6</code> model
<code>--fast</code> <code>--relax</code> <code>--turbo</code>

<b>Weights</b>: <code>space::2 ship</code>, negative <code>red::-0.5</code>
<b>Permutations</b>: <code>a {red, blue} bird</code> makes two jobs
<b>LoRA</b>: <code>&lt;lora:name:0.8&gt;</code> · <b>emphasis</b>: <code>(word:1.3)</code>

<b>Images</b>: send a photo (or an album of up to 5) with the caption <code>/imagine your prompt</code>.
<b>Blend</b>: send an album of 2–5 photos with the caption <code>/blend --dimensions portrait|square|landscape</code>.
<b>Describe</b>: a photo with the caption <code>/describe</code> (or as a reply to one, with a link, a job id):
four prompts to imagine from.

<b>Buttons</b>: U1–U4 pick an image, V1–V4 vary it, 🔄 rerolls; under one image: Upscale, Vary, Zoom Out,
pan ⬅️➡️⬆️⬇️, Make Square, ❤️, ✉️ details, 📄 full-resolution file.

<b>Yours</b>: /settings · <code>/prefer suffix --ar 16:9</code> · <code>/prefer option list</code>
<code>/prefer option set mine --s 250 --style raw</code> · /info · /history · <code>/show JOB_ID</code>
/fast /relax /turbo"""
