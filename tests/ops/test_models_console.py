"""``impasto models list`` and ``pull``, offline: tiny models are built locally, a Hugging Face id goes through a
monkeypatched huggingface_hub (asserting what would be fetched), local folders and files are checked for presence;
``IMPASTO_MODEL_DOWNLOADS=false`` stops a worker whose model is not here, naming the pull to run."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import huggingface_hub
import pytest
from huggingface_hub import constants

from impasto.bots import cli
from impasto.bots.console import models
from impasto.engine.registry import load_registry

SDXL = "stabilityai/stable-diffusion-xl-base-1.0"
TRANSLATOR = "Helsinki-NLP/opus-mt-zh-en"  # the shipped registry's [translation] model
SDXL_INDEX = {
    "_class_name": "StableDiffusionXLPipeline",
    "_diffusers_version": "0.19.0.dev0",
    "force_zeros_for_empty_prompt": True,
    "scheduler": ["diffusers", "EulerDiscreteScheduler"],
    "text_encoder": ["transformers", "CLIPTextModel"],
    "text_encoder_2": ["transformers", "CLIPTextModelWithProjection"],
    "tokenizer": ["transformers", "CLIPTokenizer"],
    "tokenizer_2": ["transformers", "CLIPTokenizer"],
    "unet": ["diffusers", "UNet2DConditionModel"],
    "vae": ["diffusers", "AutoencoderKL"],
    "image_encoder": [None, None],
}


@pytest.fixture
def env(clean_env: None, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    monkeypatch.setenv("IMPASTO_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # nothing here may reach the Hub (restored after the test)
    hub = tmp_path / "hub"
    real = {name: getattr(huggingface_hub, name) for name in HUB_CALLS}
    real["HF_HUB_CACHE"] = constants.HF_HUB_CACHE
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(hub))

    def no_network(*args: object, **kwargs: object) -> None:
        pytest.fail(f"the Hub was called: {args} {kwargs}")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", no_network)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", no_network)
    yield hub
    _unbind_stand_ins(real, cache=str(hub))


#: What the tests replace on huggingface_hub (each test may put its own stand-ins there too).
HUB_CALLS = ("hf_hub_download", "snapshot_download")


def _unbind_stand_ins(real: dict[str, Any], *, cache: str) -> None:
    """Put huggingface_hub's own functions (and Hub cache) back in every module that took a stand-in of this file.

    monkeypatch restores what it set on huggingface_hub, but a module first imported during a test (diffusers,
    transformers and peft, when a tiny model is built) bound the stand-in of that moment with ``from huggingface_hub
    import hf_hub_download`` and would keep it: a later test of another file loading a model by a name that is not a
    folder would then fail with "the Hub was called" (or reach the fake of a test that has ended)."""
    for module in list(sys.modules.values()):
        names = getattr(module, "__dict__", None)
        if not isinstance(names, dict):
            continue
        for name, original in real.items():
            bound = names.get(name)
            if bound is None or bound is original:
                continue
            ours = bound == cache if name == "HF_HUB_CACHE" else getattr(bound, "__module__", None) == __name__
            if ours:
                setattr(module, name, original)


def impasto(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    rc = cli.main(list(argv))
    out, err = capsys.readouterr()
    return rc, out, err


def _snapshot(hub: Path, repo: str) -> Path:
    """The Hub cache's layout for one repository at one revision (as huggingface_hub writes it)."""
    root = hub / f"models--{repo.replace('/', '--')}"
    (root / "refs").mkdir(parents=True, exist_ok=True)
    (root / "refs" / "main").write_text("0123456789abcdef")
    snapshot = root / "snapshots" / "0123456789abcdef"
    snapshot.mkdir(parents=True, exist_ok=True)
    return snapshot


def test_list_shows_sources_what_is_here_and_its_size(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, _ = impasto(capsys, "models", "list")
    assert rc == 0
    rows = {line.split()[0]: line for line in out.splitlines()[1:] if line and not line.startswith("*")}
    assert {"v6", "v5", "niji6", "tiny-sdxl", "tiny-sd15"} <= set(rows)
    assert rows["v6"].split()[1:] == ["*", SDXL, "hub", "no", "-"]
    rc, out, _ = impasto(capsys, "models", "--list", "--json")
    states = {s["name"]: s for s in map(json.loads, out.splitlines())}
    assert states["tiny-sdxl"] == {
        "name": "tiny-sdxl",
        "source": "builtin:tiny-sdxl",
        "kind": "builtin",
        "present": False,
        "size_bytes": None,
        "path": None,
        "default": False,
    }


def test_pulling_a_tiny_model_builds_it_here(env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, out, err = impasto(capsys, "models", "pull", "tiny-sd15")
    assert rc == 0, err
    assert "building builtin:tiny-sd15" in err
    folder = tmp_path / "data" / "models" / "tiny-sd15"
    assert (folder / "model_index.json").is_file()
    assert out.strip().startswith("tiny-sd15: ")
    assert out.strip().endswith(f" MB in {folder}")
    rc, out, _ = impasto(capsys, "models", "list", "--json")
    [state] = [s for s in map(json.loads, out.splitlines()) if s["name"] == "tiny-sd15"]
    assert state["present"] is True
    assert state["size_bytes"] == models.folder_bytes(folder) > 0


def test_pulling_a_hub_model_fetches_what_from_pretrained_reads(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    calls: list[tuple[str, dict[str, Any]]] = []
    snapshot = _snapshot(env, SDXL)

    def hf_hub_download(repo_id: str, filename: str, **kwargs: Any) -> str:
        calls.append(("index", {"repo_id": repo_id, "filename": filename, **kwargs}))
        (snapshot / filename).write_text(json.dumps(SDXL_INDEX))
        return str(snapshot / filename)

    def snapshot_download(repo_id: str, **kwargs: Any) -> str:
        calls.append(("snapshot", {"repo_id": repo_id, **kwargs}))
        if repo_id == TRANSLATOR:
            translator = _snapshot(env, TRANSLATOR)
            for path in ("config.json", "model.safetensors"):
                (translator / path).write_bytes(b"{}")
            return str(translator)
        for path in ("unet/diffusion_pytorch_model.safetensors", "vae/diffusion_pytorch_model.safetensors"):
            (snapshot / path).parent.mkdir(parents=True, exist_ok=True)
            (snapshot / path).write_bytes(b"\0" * 1500)
        return str(snapshot)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", hf_hub_download)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", snapshot_download)
    rc, out, err = impasto(capsys, "models", "pull")  # the default model: v6
    assert rc == 0, err
    assert f"v6: downloading {SDXL}" in err
    [(_, index), (_, snap), (_, translator)] = calls
    # The prompt translator a worker loads at start-up comes with the model: configs, tokenizer, safetensors only.
    assert translator["repo_id"] == TRANSLATOR
    assert translator["cache_dir"] == env
    assert "model.safetensors" in translator["allow_patterns"]
    assert "*.spm" in translator["allow_patterns"]
    assert not any(p.endswith((".bin", ".h5", ".msgpack")) for p in translator["allow_patterns"])
    assert index == {"repo_id": SDXL, "filename": "model_index.json", "cache_dir": env}
    assert snap["repo_id"] == SDXL
    assert snap["cache_dir"] == env  # HF_HOME's hub cache, where from_pretrained looks
    patterns = set(snap["allow_patterns"])
    for wanted in (
        "model_index.json",
        "unet/diffusion_pytorch_model.safetensors",
        "vae/diffusion_pytorch_model.safetensors",
        "text_encoder/model.safetensors",
        "text_encoder_2/model.safetensors",
        "tokenizer/*.json",
        "tokenizer_2/*.txt",
        "scheduler/*.json",
    ):
        assert wanted in patterns, wanted
    # Only the pipeline's components, and no variant, pickle or ONNX weights: SDXL's repository holds ~80 GB of them.
    assert {p.split("/")[0] for p in patterns if "/" in p} == {
        "scheduler",
        "text_encoder",
        "text_encoder_2",
        "tokenizer",
        "tokenizer_2",
        "unet",
        "vae",
    }
    assert not any(p.endswith((".bin", ".ckpt", ".onnx", ".fp16.safetensors")) for p in patterns)
    assert out.strip() == f"v6: {models.human_bytes(models.folder_bytes(snapshot))} in {snapshot}"
    rc, out, _ = impasto(capsys, "models", "list", "--json")
    [v6] = [s for s in map(json.loads, out.splitlines()) if s["name"] == "v6"]
    assert (v6["present"], v6["path"], v6["size_bytes"]) == (True, str(snapshot), models.folder_bytes(snapshot))


def test_local_folders_and_files_are_checked_not_fetched(
    env: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder, file = tmp_path / "mine", tmp_path / "ckpt" / "mine.safetensors"
    registry = tmp_path / "models.toml"
    registry.write_text(
        f'default = "mine"\n[models.mine]\nfamily = "sd15"\nsource = "{folder}"\nnative_px = 512\nsteps = 20\n'
        f'guidance = 7.0\n[models.single]\nfamily = "sdxl"\nsource = "{file}"\nnative_px = 1024\nsteps = 20\n'
        "guidance = 7.0\n"
    )
    for name, missing in (("mine", "is not a folder with a model_index.json"), ("single", "is not a .safetensors")):
        rc, _, err = impasto(capsys, "models", "pull", name, "--model-registry", str(registry))
        assert rc == 1
        assert missing in err
    folder.mkdir()
    (folder / "model_index.json").write_text("{}")
    file.parent.mkdir()
    file.write_bytes(b"\0" * 2048)
    rc, out, err = impasto(capsys, "models", "--model-registry", str(registry), "pull", "mine")
    assert rc == 0, err
    assert "mine: checking" in err
    assert out.strip() == f"mine: 2 B in {folder}"
    rc, out, _ = impasto(capsys, "models", "pull", "single", "--model-registry", str(registry))
    assert out.strip() == f"single: 2.0 KB in {file}"
    rc, out, _ = impasto(capsys, "models", "list", "--model-registry", str(registry))
    assert [line.split()[-4:] for line in out.splitlines() if line.startswith(("mine", "single"))] == [
        ["folder", "yes", "2", "B"],
        ["file", "yes", "2.0", "KB"],
    ]


def test_an_unknown_model_is_one_line(env: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc, _, err = impasto(capsys, "models", "pull", "v99")
    assert rc == 2
    assert err.strip().startswith("impasto models: no model 'v99' (known: ")


def test_a_worker_without_downloads_names_the_pull_to_run(
    env: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("IMPASTO_MODEL_DOWNLOADS", "false")
    monkeypatch.setenv("IMPASTO_REDIS_URL", "redis://127.0.0.1:1/0")  # never reached: it stops before
    monkeypatch.setenv("HF_HUB_OFFLINE", "0")
    rc, _, err = impasto(capsys, "worker")
    assert rc == 2
    assert err.strip() == (
        f"impasto worker: model v6 ({SDXL}) is not on this machine and IMPASTO_MODEL_DOWNLOADS=false: "
        "run `impasto models pull v6` first"
    )
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1"  # nothing downloads later either
    rc, _, err = impasto(capsys, "worker", "--model", "niji6")
    assert "`impasto models pull niji6`" in err
    # The model is here but not its prompt translator (loaded at start-up too): the same pull fetches it.
    snapshot = _snapshot(env, SDXL)
    (snapshot / "model_index.json").write_text(json.dumps(SDXL_INDEX))
    (snapshot / "unet").mkdir()
    (snapshot / "unet" / "diffusion_pytorch_model.safetensors").write_bytes(b"\0")
    rc, _, err = impasto(capsys, "worker")
    assert rc == 2
    assert err.strip() == (
        f"impasto worker: the prompt translator of model v6 ({TRANSLATOR}) is not on this machine and "
        "IMPASTO_MODEL_DOWNLOADS=false: run `impasto models pull v6` first"
    )
    # A tiny model is built locally: not a download, so it passes this check.
    assert models.downloads_refused(load_registry(None, None).get("tiny-sdxl"), env) is None
