"""The layout's promises (ARCHITECTURE.md): no top-level package shadows the standard library, bots never import
torch, lower layers never import higher ones."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _run(code: str) -> str:
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


def test_code_folders_carry_no_init() -> None:
    for folder in ("bots", "queue", "engine", "storage"):
        assert not (ROOT / folder / "__init__.py").exists(), folder


def test_queue_from_the_root_is_the_standard_library() -> None:
    # cwd is the repository root, which `python -c` puts first on sys.path.
    origin = _run("import queue, sys; print(queue.__file__)")
    assert not origin.startswith(str(ROOT)), origin
    assert _run("import queue; print(hasattr(queue, 'SimpleQueue'))") == "True"


def test_importing_every_bots_module_never_imports_torch() -> None:
    names = bots_modules()
    assert "impasto.bots.cli" in names
    code = (
        "import importlib, sys\n"
        f"for name in {names!r}:\n"
        "    importlib.import_module(name)\n"
        "heavy = sorted(n for n in ('torch', 'diffusers', 'transformers') if n in sys.modules)\n"
        "print(','.join(heavy) or 'clean')\n"
    )
    assert _run(code) == "clean"


def bots_modules() -> list[str]:
    """Every module under bots/, found on disk: pkgutil.walk_packages skips folders without __init__.py."""
    names = []
    for path in sorted((ROOT / "bots").rglob("*.py")):
        parts = path.relative_to(ROOT / "bots").with_suffix("").parts
        if parts[-1] != "__main__":
            names.append(".".join(("impasto", "bots", *parts)))
    return names


def test_cli_help_lists_commands() -> None:
    out = _run("from impasto.bots.cli import build_parser; print(build_parser().format_help())")
    assert "impasto" in out


# Dependencies point one way: bots → queue → engine, storage (migrations sit beside storage).
FORBIDDEN_IMPORTS = {
    "queue": ("impasto.bots",),
    "storage": ("impasto.bots", "impasto.queue", "impasto.engine"),
    "migrations": ("impasto.bots", "impasto.queue", "impasto.engine"),
    "engine": ("impasto.bots", "impasto.queue", "impasto.storage"),
}


def test_lower_layers_never_import_higher_ones() -> None:
    import ast

    offenders = []
    for folder, forbidden in FORBIDDEN_IMPORTS.items():
        for path in sorted((ROOT / folder).rglob("*.py")):
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                names = (
                    [alias.name for alias in node.names]
                    if isinstance(node, ast.Import)
                    else [node.module or ""]
                    if isinstance(node, ast.ImportFrom)
                    else []
                )
                offenders += [f"{path.relative_to(ROOT)}: {n}" for n in names if n.startswith(forbidden)]
    assert offenders == []


def test_the_top_level_is_the_design_cards() -> None:
    """The repository's top level is fixed: the five code folders, tests, the compose file, the docs and CI."""
    allowed = {"pyproject.toml", "bots", "engine", "queue", "storage", "migrations", "tests", "docker-compose.yml"}
    allowed |= {"README.md", "ARCHITECTURE.md", ".ci", ".env.example", ".gitignore", ".git"}
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, timeout=60, check=False
    ).stdout.split()
    if not tracked:
        pytest.skip("not a git checkout")
    assert {path.split("/")[0] for path in tracked} <= allowed
