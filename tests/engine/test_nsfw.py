"""The image classifier: the tiny model through the real loading path; the threshold decides the verdict."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from impasto.engine.nsfw import ClassifierError, NsfwConfig, ensure_tiny_classifier, load_classifier


def _images() -> list[Image.Image]:
    return [Image.new("RGB", (64, 48), color) for color in ("red", "navy", "white")] + [Image.new("L", (20, 20), 128)]


def test_none_loads_nothing(tmp_path: Path) -> None:
    assert load_classifier("none", tmp_path) is None


def test_the_tiny_classifier_scores_deterministically_and_the_threshold_decides(tmp_path: Path) -> None:
    classifier = load_classifier("tiny", tmp_path)
    assert classifier is not None
    scores = classifier.scores(_images())
    assert len(scores) == 4
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert len(set(scores)) > 1  # the images differ, so do their scores
    again = load_classifier("tiny", tmp_path)  # loaded from the saved folder this time
    assert again is not None
    assert again.scores(_images()) == pytest.approx(scores, abs=1e-6)

    assert all(v.flagged for v in classifier.check(_images(), 0.0))  # 0 flags everything
    assert not any(v.flagged for v in classifier.check(_images(), 1.0))
    middle = sorted(scores)[1]
    verdicts = classifier.check(_images(), middle)
    assert [v.flagged for v in verdicts] == [s >= middle for s in scores]
    assert classifier.scores([]) == []


def test_a_model_without_an_nsfw_label_or_that_is_missing_is_refused(tmp_path: Path) -> None:
    from transformers import ViTForImageClassification

    folder = ensure_tiny_classifier(tmp_path)
    model = ViTForImageClassification.from_pretrained(folder)
    model.config.id2label = {0: "cat", 1: "dog"}
    model.config.label2id = {"cat": 0, "dog": 1}
    other = tmp_path / "pets"
    model.save_pretrained(other)
    (other / "preprocessor_config.json").write_text((folder / "preprocessor_config.json").read_text())
    with pytest.raises(ClassifierError, match="no NSFW-like label \\(its labels: cat, dog\\)"):
        load_classifier(str(other), tmp_path)
    with pytest.raises(ClassifierError, match="cannot be loaded"):
        load_classifier(str(tmp_path / "missing"), tmp_path)


def test_config_reads_the_environment(monkeypatch: pytest.MonkeyPatch, clean_env: None) -> None:
    monkeypatch.setenv("IMPASTO_NSFW_MODEL", "tiny")
    monkeypatch.setenv("IMPASTO_NSFW_THRESHOLD", "0.8")
    config = NsfwConfig(_env_file=None)  # type: ignore[call-arg]
    assert (config.model, config.threshold) == ("tiny", 0.8)
    monkeypatch.setenv("IMPASTO_NSFW_THRESHOLD", "1.5")
    with pytest.raises(ValueError, match="less than or equal to 1"):
        NsfwConfig(_env_file=None)  # type: ignore[call-arg]


def _tiny_safety_checker(folder: Path, concept_threshold: float) -> Path:
    """diffusers' safety checker at a tiny CLIP config, saved as the real one is; its concepts are random."""
    import torch
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPConfig, CLIPImageProcessor

    torch.manual_seed(7)
    vision = {"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2}
    config = CLIPConfig(
        vision_config={**vision, "image_size": 32, "patch_size": 8},
        text_config={"hidden_size": 16, "intermediate_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2},
        projection_dim=8,
    )
    checker = StableDiffusionSafetyChecker(config).eval()
    with torch.no_grad():
        checker.concept_embeds.normal_()
        checker.special_care_embeds.normal_()
        checker.concept_embeds_weights.fill_(concept_threshold)
        checker.special_care_embeds_weights.fill_(1.0)  # nothing is "special care"
    checker.save_pretrained(folder, safe_serialization=True)
    CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32}).save_pretrained(folder)
    return folder


@pytest.mark.parametrize("concept_threshold", [-1.5, 0.0, 1.5])
def test_the_safety_checker_scores_agree_with_diffusers_verdict(tmp_path: Path, concept_threshold: float) -> None:
    import numpy as np
    import torch
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPImageProcessor

    folder = _tiny_safety_checker(tmp_path / "checker", concept_threshold)
    checker = load_classifier(f"safety-checker:{folder}", tmp_path)
    assert checker is not None
    scores = checker.scores(_images())
    assert all(0.0 <= s <= 1.0 for s in scores)

    # diffusers' own forward on the same pictures: flagged exactly where our score is at least 0.5.
    model = StableDiffusionSafetyChecker.from_pretrained(folder).eval()
    pixels = CLIPImageProcessor.from_pretrained(folder)(
        images=[i.convert("RGB") for i in _images()], return_tensors="pt"
    )["pixel_values"]
    with torch.no_grad():
        _, has_nsfw = model(clip_input=pixels, images=np.zeros((4, 8, 8, 3)))
    assert [s >= 0.5 for s in scores] == list(has_nsfw)
    if concept_threshold == -1.5:  # every cosine is above -1.5: every picture is flagged
        assert all(has_nsfw)
    if concept_threshold == 1.5:
        assert not any(has_nsfw)


def test_a_missing_safety_checker_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ClassifierError, match=r"safety checker .* cannot be loaded"):
        load_classifier(f"safety-checker:{tmp_path / 'missing'}", tmp_path)
