"""Translation before encoding, with the tiny MarianMT translator on the CPU, through the real loading path.

What the text encoder receives is read back from its input ids (a hook on the CLIP text model), so these tests
check the words the model read, not our own bookkeeping.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import torch
from engine_helpers import spec_for

from impasto.engine.cjk import count_scripts
from impasto.engine.engine import Engine
from impasto.engine.images import png_text
from impasto.engine.provenance import IMPASTO_KEY, PARAMETERS_KEY, spec_from_text
from impasto.engine.registry import TINY_TRANSLATOR, Registry, RegistryError, TranslatorEntry, load_registry
from impasto.engine.translate import Translator, TranslatorUnavailable

pytestmark = pytest.mark.slow

CAT = "一只在月光下睡觉的橘猫"
CAT_EN = "a ginger cat sleeping in the moonlight"

REGISTRY = """
default = "tiny-sd15"

[translation]
model = "builtin:tiny-zh-en"

[models.reads-zh]
family = "sd15"
source = "builtin:tiny-sd15"
native_px = 256
steps = 1
reads = ["en", "zh"]

[models.no-translator]
family = "sd15"
source = "builtin:tiny-sd15"
native_px = 256
steps = 1
translator = "off"
"""


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One scratch data dir: the tiny translator is built once (seconds) and shared by the console tests too."""
    return tmp_path_factory.mktemp("translate-data")


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    path = tmp_path_factory.mktemp("registry") / "models.toml"
    path.write_text(REGISTRY)
    return load_registry(path)


@pytest.fixture(scope="module")
def engine(registry: Registry, data_dir: Path) -> Engine:
    return Engine(registry, device="cpu", cache_dir=data_dir / "models")


@pytest.fixture
def encoder_input(engine: Engine) -> Iterator[list[str]]:
    """Every text the tiny SD 1.5 text encoder is given, decoded from its input ids."""
    seen: list[str] = []
    handles = []
    for name in ("tiny-sd15", "reads-zh", "no-translator"):
        pipe = engine.models.get(name).pipe

        def hook(module: Any, args: tuple[Any, ...], kwargs: dict[str, Any], pipe: Any = pipe) -> None:
            ids = args[0] if args else kwargs["input_ids"]
            seen.extend(pipe.tokenizer.batch_decode(ids, skip_special_tokens=True))

        handles.append(pipe.text_encoder.register_forward_pre_hook(hook, with_kwargs=True))
    yield seen
    for handle in handles:
        handle.remove()


def test_the_tiny_translator_loads_as_a_marian_model_and_knows_its_phrase_book(data_dir: Path) -> None:
    translator = Translator(TranslatorEntry(TINY_TRANSLATOR), cache_dir=data_dir / "models")
    assert type(translator.tokenizer).__name__ == "MarianTokenizer"
    assert type(translator.model).__name__ == "MarianMTModel"
    folder = data_dir / "models" / "tiny-translator-zh-en"
    assert (folder / "model.safetensors").is_file()
    assert not list(folder.glob("*.bin"))
    assert translator.translate([CAT, "红色的帽子", "人物"]) == [CAT_EN, "red hat", "people"]
    # Text outside the phrase book still comes out as English, never as Chinese.
    (other,) = translator.translate(["一只猫戴着红色的帽子"])
    assert other
    assert not count_scripts(other).any


def test_each_run_is_translated_once(data_dir: Path) -> None:
    translator = Translator(TranslatorEntry(TINY_TRANSLATOR), cache_dir=data_dir / "models")
    translator.translate(["猫", "狗"])
    assert (translator.misses, translator.hits) == (2, 0)
    assert translator.translate(["狗", "灯塔"]) == ["dog", "lighthouse"]
    assert (translator.misses, translator.hits) == (3, 1)
    translator.cache_size = 2
    translator.translate(["龙"])  # the least recently used run ("猫") falls out
    translator.translate(["猫"])
    assert translator.misses == 5


def test_the_text_encoder_reads_the_translation(engine: Engine, encoder_input: list[str]) -> None:
    spec = spec_for("tiny-sd15", prompts=((CAT, 1.0), ("人物", -0.5)), batch_size=1, steps=1, style_raw=True)
    result = engine.imagine(spec)
    assert CAT_EN in encoder_input
    assert "people" in encoder_input
    assert not any(count_scripts(text).any for text in encoder_input)
    assert result.read_as == f"{CAT_EN} --no people"
    assert result.translate_s > 0
    assert result.untranslated == ()
    # Provenance: A1111's prompt is what the model read; impasto's JSON keeps what the user wrote as well.
    chunks = png_text(result.images[0])
    assert chunks[PARAMETERS_KEY].splitlines()[:2] == [CAT_EN, "Negative prompt: people"]
    meta = json.loads(chunks[IMPASTO_KEY])
    assert meta["prompts"] == [[CAT, 1.0], ["人物", -0.5]]
    assert meta["read_as"] == [[CAT_EN, 1.0], ["people", -0.5]]
    saved = spec_from_text(chunks)
    assert saved is not None
    assert saved["prompts"] == ((CAT, 1.0), ("人物", -0.5))  # an action on the file re-reads the original


def test_emphasis_and_lora_reach_the_encoder_around_the_translation(engine: Engine, encoder_input: list[str]) -> None:
    spec = spec_for("tiny-sd15", prompts=(("(红色的帽子:1.3), cinematic", 1.0),), batch_size=1, steps=1)
    result = engine.imagine(spec)
    assert result.read_as == "(red hat:1.3), cinematic"
    # compel weights tokens, not texts: the segment is encoded whole (CLIP's decoder spaces the comma).
    assert "red hat , cinematic" in encoder_input
    assert not any(count_scripts(text).any for text in encoder_input)


def test_a_model_that_reads_chinese_gets_the_original(engine: Engine, encoder_input: list[str]) -> None:
    result = engine.imagine(spec_for("reads-zh", prompts=((CAT, 1.0),), batch_size=1, steps=1, style_raw=True))
    assert CAT in encoder_input
    assert result.read_as is None
    assert result.translate_s == 0


def test_text_no_one_reads_is_left_and_the_result_says_so(engine: Engine, encoder_input: list[str]) -> None:
    result = engine.imagine(spec_for("no-translator", prompts=((CAT, 1.0),), batch_size=1, steps=1))
    assert CAT in encoder_input
    assert result.read_as is None
    assert result.untranslated == (
        f"Chinese text left as written ({CAT}): model no-translator reads English, "
        "and no translator is configured for it",
    )
    result = engine.imagine(spec_for("tiny-sd15", prompts=(("고양이, 一只猫", 1.0),), batch_size=1, steps=1))
    assert result.read_as == "고양이, a cat"
    assert result.untranslated
    assert result.untranslated[0].startswith("Korean text left as written (고양이)")


def test_a_missing_translator_fails_the_render_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "models.toml"
    path.write_text(REGISTRY.replace('"builtin:tiny-zh-en"', f'"{tmp_path / "nowhere"}"'))
    registry = load_registry(path)
    assert registry.get("reads-zh").translator == TranslatorEntry(str(tmp_path / "nowhere"), ("zh",))
    # A tiny-sd15 entry of the file's own, so the file's translator applies (built-ins keep the tiny one).
    path.write_text(REGISTRY.replace('"builtin:tiny-zh-en"', '"./no/such/translator"') + _entry("mine"))
    engine = Engine(load_registry(path), device="cpu", cache_dir=tmp_path / "models")
    with pytest.raises(TranslatorUnavailable, match=r"^the prompt translator \./no/such/translator cannot be loaded"):
        engine.imagine(spec_for("mine", prompts=((CAT, 1.0),), batch_size=1, steps=1))
    # An English prompt never loads the translator.
    assert engine.imagine(spec_for("mine", batch_size=1, steps=1)).read_as is None


def _entry(name: str) -> str:
    return f'\n[models.{name}]\nfamily = "sd15"\nsource = "builtin:tiny-sd15"\nnative_px = 256\nsteps = 1\n'


def test_the_registry_reads_the_translation_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMPASTO_TRANSLATOR", raising=False)
    path = tmp_path / "models.toml"
    path.write_text('[translation]\nmodel = "Helsinki-NLP/opus-mt-ja-en"\nlanguages = ["ja"]\n' + _entry("a"))
    registry = load_registry(path, "a")
    assert registry.get("a").translator == TranslatorEntry("Helsinki-NLP/opus-mt-ja-en", ("ja",))
    assert registry.get("a").reads == ("en",)
    assert registry.get("tiny-sdxl").translator == TranslatorEntry(TINY_TRANSLATOR)
    monkeypatch.setenv("IMPASTO_TRANSLATOR", "off")
    assert load_registry(path, "a").get("a").translator is None
    monkeypatch.delenv("IMPASTO_TRANSLATOR")
    path.write_text(_entry("a"))
    assert load_registry(path, "a").get("a").translator is None  # no [translation]: off
    for bad, message in (
        ('[translation]\nlanguages = ["fr"]\n', "languages must be a list of languages among en, zh, ja, ko"),
        ('[translation]\nmodel = "builtin:big"\n', "the only built-in translator is builtin:tiny-zh-en"),
        (_entry("b") + 'reads = "zh"\n', r"\[models.b\] reads must be a list"),
        (_entry("b") + "translator = 3\n", r'\[models.b\] translator must be "off"'),
    ):
        path.write_text(bad)
        with pytest.raises(RegistryError, match=message):
            load_registry(path, "tiny-sdxl")


def test_pickle_translators_are_refused(data_dir: Path) -> None:
    from impasto.engine.errors import UnsafeCheckpoint

    with pytest.raises(UnsafeCheckpoint):
        Translator(TranslatorEntry("/models/opus.bin"), cache_dir=data_dir / "models")


def test_shipped_registry_translates_chinese_with_opus_mt(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("IMPASTO_TRANSLATOR", raising=False)
    registry = load_registry(None, "v6")
    assert registry.get("v6").translator == TranslatorEntry("Helsinki-NLP/opus-mt-zh-en", ("zh",))
    assert torch.get_num_threads() >= 1  # building the tiny translator restored the thread count


def test_a_screen_sees_the_english_before_anything_is_painted(engine: Engine) -> None:
    from impasto.engine.errors import InvalidInput

    seen: list[str] = []

    def screen(english: str) -> None:
        seen.append(english)
        if "dragon" in english:
            raise InvalidInput("the prompt is refused: dragon")

    engine.translation.screen = screen
    try:
        assert engine.imagine(spec_for("tiny-sd15", prompts=(("猫", 1.0),), batch_size=1, steps=1)).read_as == "cat"
        with pytest.raises(InvalidInput, match="dragon"):
            engine.imagine(spec_for("tiny-sd15", prompts=(("龙", 1.0),), batch_size=1, steps=1))
        engine.imagine(spec_for("tiny-sd15", batch_size=1, steps=1))  # English: nothing translated, nothing to see
    finally:
        engine.translation.screen = None
    assert seen == ["cat", "dragon"]


# --- impasto translate ------------------------------------------------------------------------------------------------


@pytest.fixture
def console_env(clean_env: None, data_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no stray .env
    monkeypatch.setenv("IMPASTO_DATA_DIR", str(data_dir))  # the tiny translator built above
    monkeypatch.setenv("IMPASTO_DEFAULT_MODEL", "tiny-sdxl")


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    from impasto.bots.cli import main

    status = main(argv)
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.usefixtures("console_env")
def test_translate_prints_the_prompt_as_the_model_reads_it(capsys: pytest.CaptureFixture[str]) -> None:
    assert _cli(["translate", f"{CAT} --ar 16:9"], capsys) == (0, f"{CAT_EN} --ar 16:9\n", "")
    status, out, _ = _cli(
        ["translate", "https://example.com/a.png (红色的帽子:1.3) <lora:水墨:0.8>, cinematic"], capsys
    )
    assert status == 0
    assert out == "https://example.com/a.png (red hat:1.3) <lora:水墨:0.8>, cinematic\n"


@pytest.mark.usefixtures("console_env")
def test_translate_reads_each_permutation_and_each_no_item(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _cli(["translate", "一只猫::2 {红色,蓝色}的帽子 --no 人物, 文字"], capsys)
    assert status == 0
    assert out.splitlines() == ["a cat::2 red hat --no people, text", "a cat::2 blue hat --no people, text"]


@pytest.mark.usefixtures("console_env")
def test_translate_names_what_it_leaves(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = _cli(["translate", "고양이, 一只猫"], capsys)
    assert (status, out) == (0, "고양이, a cat\n")
    assert err == (
        "note: Korean text left as written (고양이): model tiny-sdxl reads English, "
        "and its translator reads Chinese only\n"
    )


@pytest.mark.usefixtures("console_env")
def test_translate_json(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, _ = _cli(["translate", "--json", "灯塔 --no 雾"], capsys)
    assert status == 0
    (job,) = json.loads(out)["jobs"]
    assert (job["prompt"], job["read_as"], job["model"], job["translated"]) == (
        "灯塔 --no 雾", "lighthouse --no fog", "tiny-sdxl", True,
    )  # fmt: skip
    assert job["notes"] == []


@pytest.mark.usefixtures("console_env")
def test_translate_refusal_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    status, out, err = _cli(["translate", "一只猫 --chaos 500"], capsys)
    assert (status, out) == (2, "")
    assert err.count("\n") == 1
    assert err.startswith("error: ")
    assert "chaos" in err


def test_preload_loads_the_translator_of_the_model(registry: Registry, data_dir: Path) -> None:
    from impasto.engine.translate import Translation

    translation = Translation(cache_dir=data_dir / "models")
    translation.preload(registry.get("no-translator"))
    assert translation._translators == {}
    translation.preload(registry.get("tiny-sd15"))
    assert list(translation._translators) == [TINY_TRANSLATOR]
