"""Order `[image URLs] text [--parameters]`, image links, multi-prompts, --no, length and Unicode.

Examples are from Midjourney's docs (Prompts, Image Prompts, Multi Prompts, No, Parameter List).
"""

from __future__ import annotations

import pytest
from language_helpers import one, refused

from impasto.bots.language.job import WeightedPrompt
from impasto.bots.language.parser import is_image_url, parse_imagine
from impasto.engine.registry import Registry

PNG = "https://s.mj.run/abc.png"
JPG = "https://cdn.example.com/folder/photo.JPEG?ex=65&is=12#frag"


# --- image prompts -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [PNG, JPG, "http://e.com/a.jpg", "https://e.com/a.webp", "https://e.com/a.gif", "https://e.com/x/y.png?size=2"],
)
def test_image_url_forms(url: str) -> None:
    assert is_image_url(url)


@pytest.mark.parametrize(
    "url", ["https://e.com/page", "https://e.com/a.png.html", "ftp://e.com/a.png", "https:///a.png", "e.com/a.png"]
)
def test_not_image_urls(url: str) -> None:
    assert not is_image_url(url)


def test_leading_images_are_image_prompts(registry: Registry) -> None:
    job = one(f"{PNG} {JPG} a cat in a hat --iw 2", registry)
    assert job.image_prompts == (PNG, JPG)
    assert job.prompts == (WeightedPrompt("a cat in a hat"),)
    assert job.image_weight == 2.0
    assert job.display == f"{PNG} {JPG} a cat in a hat --iw 2"


def test_two_images_need_no_text(registry: Registry) -> None:
    job = one(f"{PNG} {JPG}", registry)
    assert job.prompts == ()
    assert job.image_prompts == (PNG, JPG)


def test_one_image_needs_text(registry: Registry) -> None:
    err = refused(PNG, registry)
    assert "one image link needs text" in str(err)


def test_link_later_in_text_is_text(registry: Registry) -> None:
    job = one(f"a poster of {PNG}", registry)
    assert job.image_prompts == ()
    assert job.prompts[0].text == f"a poster of {PNG}"


def test_leading_link_that_is_not_an_image_is_refused(registry: Registry) -> None:
    err = refused("https://example.com/gallery a cat", registry)
    assert "invalid image link" in str(err)
    assert ".png" in str(err)
    assert err.value == "https://example.com/gallery"


def test_too_many_image_prompts(registry: Registry) -> None:
    err = refused(" ".join([PNG] * 11) + " a cat", registry)
    assert "at most 10" in str(err)


def test_image_only_prompt_refuses_stylize_and_weird(registry: Registry) -> None:
    err = refused(f"{PNG} {JPG} --stylize 250", registry)
    assert err.option == "--stylize"
    assert "image-only" in str(err)
    err = refused(f"{PNG} {JPG} --w 10", registry)
    assert err.option == "--w"


def test_iw_needs_an_image(registry: Registry) -> None:
    err = refused("a cat --iw 2", registry)
    assert err.option == "--iw"
    assert "image" in str(err)


# --- text and emptiness ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "--ar 16:9", "\n\t"])
def test_empty_prompt(text: str, registry: Registry) -> None:
    refused(text, registry)


def test_prompt_of_6000_characters_is_accepted_and_6001_refused(registry: Registry) -> None:
    assert one("a" * 6000, registry).prompts[0].text == "a" * 6000
    err = refused("a" * 6001, registry)
    assert "6001 characters" in str(err)
    assert "6000" in str(err)


@pytest.mark.parametrize(
    "text",
    [
        "a red fox 🦊 in the snow ❄️",
        "שועל אדום בשלג",  # RTL
        "雪の中の赤い狐",  # CJK
        "a\u200bfox\u200dzero\u200cwidth",  # zero-width characters
        'a neon sign that says "OPEN"',
        "a cat — black and white",  # an em-dash that is not a parameter
    ],
)
def test_any_unicode_is_text(text: str, registry: Registry) -> None:
    job = one(text, registry)
    assert job.prompts == (WeightedPrompt(text),)
    assert job.display == text


# --- multi-prompts ---------------------------------------------------------------------------------------------


def test_hot_dog_vs_hot_dog_split(registry: Registry) -> None:
    assert one("hot dog", registry).prompts == (WeightedPrompt("hot dog"),)
    assert one("hot:: dog", registry).prompts == (WeightedPrompt("hot"), WeightedPrompt("dog"))


def test_space_ship_weights(registry: Registry) -> None:
    assert one("space::2 ship", registry).prompts == (WeightedPrompt("space", 2.0), WeightedPrompt("ship", 1.0))
    assert one("space:: ship", registry).prompts == (WeightedPrompt("space", 1.0), WeightedPrompt("ship", 1.0))
    assert one("space::100 ship::100", registry).prompts == (
        WeightedPrompt("space", 100.0),
        WeightedPrompt("ship", 100.0),
    )


def test_decimal_and_negative_weights(registry: Registry) -> None:
    job = one("vibrant tulip fields:: red::-.5", registry)
    assert job.prompts == (WeightedPrompt("vibrant tulip fields", 1.0), WeightedPrompt("red", -0.5))
    assert job.negative == (WeightedPrompt("red", -0.5),)
    assert one("cheese::1.5 cake::0.25", registry).prompts == (
        WeightedPrompt("cheese", 1.5),
        WeightedPrompt("cake", 0.25),
    )


def test_no_equals_negative_half_weight(registry: Registry) -> None:
    with_no = one("vibrant tulip fields --no red", registry)
    with_weight = one("vibrant tulip fields:: red::-.5", registry)
    assert with_no.prompts == with_weight.prompts
    assert with_no.no == ("red",)


def test_no_list_items_are_each_a_segment(registry: Registry) -> None:
    job = one("still life gouache painting --no fruit, apple, pear", registry)
    assert job.prompts == (
        WeightedPrompt("still life gouache painting"),
        WeightedPrompt("fruit", -0.5),
        WeightedPrompt("apple", -0.5),
        WeightedPrompt("pear", -0.5),
    )
    assert job.display == "still life gouache painting --no fruit, apple, pear"


def test_no_needs_items(registry: Registry) -> None:
    assert refused("a cat --no", registry).option == "--no"
    assert refused("a cat --no , ,", registry).option == "--no"


@pytest.mark.parametrize("text", ["red::-0.5", "a::1 b::-1", "a::-2 b", "a::0"])
def test_weights_must_sum_positive(text: str, registry: Registry) -> None:
    err = refused(text, registry)
    assert "sum must be positive" in str(err)


def test_no_items_do_not_count_toward_the_sum(registry: Registry) -> None:
    # Midjourney's docs show `--no item1, item2, item3, item4`: four -0.5 items beside one weight-1 segment.
    job = one("a bowl --no item1, item2, item3, item4", registry)
    assert len(job.negative) == 4


def test_bad_weights(registry: Registry) -> None:
    assert "not a number" in str(refused("a::1.2.3 b", registry))
    assert "no text before it" in str(refused("::2 cat", registry))
    assert "out of range" in str(refused("a::5000 b", registry))


def test_empty_segments_are_skipped(registry: Registry) -> None:
    assert one("a::::::b", registry).prompts == (WeightedPrompt("a"), WeightedPrompt("b"))
    assert one("a" + "::" * 2999, registry).prompts == (WeightedPrompt("a"),)


def test_ten_thousand_double_colons_are_refused_quickly(registry: Registry) -> None:
    err = refused("a" + "::" * 10_000, registry)
    assert "characters" in str(err)


# --- where parameters start and end ------------------------------------------------------------------------------


def test_text_after_parameters(registry: Registry) -> None:
    err = refused("--ar 2:3 poppies", registry)
    assert err.value == "poppies"
    err = refused("poppies --ar 2:3 in a field", registry)
    assert err.option == "--ar"
    assert err.value == "in a field"
    assert "text goes before the parameters" in str(err)
    err = refused("poppies --tile field", registry)
    assert err.option == "--tile"
    assert err.value == "field"


def test_glued_and_split_dashes(registry: Registry) -> None:
    err = refused("poppies--ar 2:3", registry)
    assert err.option == "--ar"
    assert "space before --ar" in str(err)
    err = refused("poppies - - ar 2:3", registry)
    assert err.option == "--ar"
    assert "split" in str(err)


def test_double_dash_inside_words_is_text(registry: Registry) -> None:
    assert one("a well--known landmark", registry).prompts == (WeightedPrompt("a well--known landmark"),)
    assert one("a go--no-go decision", registry).prompts == (WeightedPrompt("a go--no-go decision"),)


def test_parse_is_deterministic(registry: Registry) -> None:
    text = "a {red, blue} bird::2 sky --ar 3:2 --no clouds"
    assert parse_imagine(text, registry=registry) == parse_imagine(text, registry=registry)
