"""Plans are configuration: a TOML file (``storage/plans.toml`` by default, ``IMPASTO_PLANS`` to override).

A plan says how many fast GPU-seconds a member may spend per month, whether relax is allowed, and how many jobs
they may have running, waiting and expanded from one prompt. ``Costs`` turns a job's size into the reservation held
while it waits. Loaded once in ``main()`` and injected into the job service.
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

DEFAULT_PLANS_PATH = Path(__file__).with_name("plans.toml")
PLANS_ENV = "IMPASTO_PLANS"


class PlanError(ValueError):
    """The plans file is malformed, or names a plan that does not exist."""


@dataclass(frozen=True)
class Plan:
    name: str
    fast_gpu_seconds: float  # per calendar month
    relax: bool
    max_concurrent_jobs: int
    max_queued_jobs: int
    max_permutations: int
    # Flood control (queue.ratelimit): commands and presses per minute sustained, how many at once, and one press of
    # the same button per this many seconds. 0 turns a limit off.
    commands_per_minute: float = 20.0
    command_burst: int = 5
    same_button_s: float = 2.0

    @property
    def fast_gpu_hours(self) -> float:
        return self.fast_gpu_seconds / 3600


@dataclass(frozen=True)
class Costs:
    gpu_seconds_per_megapixel_step: float = 0.05
    turbo_multiplier: float = 2.0

    def multiplier(self, mode: str) -> float:
        """What one measured GPU-second costs in this mode: relax is free, turbo costs more."""
        return {"relax": 0.0, "fast": 1.0, "turbo": self.turbo_multiplier}[mode]

    def estimate_gpu_seconds(self, *, width_px: int, height_px: int, steps: int, images: int) -> float:
        """The reservation for a render before its real GPU time is known: pixels × steps × images."""
        megapixels = width_px * height_px / 1_000_000
        return self.gpu_seconds_per_megapixel_step * megapixels * max(1, steps) * max(1, images)


@dataclass(frozen=True)
class RateLimits:
    """``[rate_limits]``: what one server (guild, group) may send in all, whatever its members' plans."""

    guild_commands_per_minute: float = 300.0
    guild_burst: int = 60


@dataclass(frozen=True)
class Plans:
    plans: Mapping[str, Plan]
    default: str
    operator: str
    costs: Costs
    rate_limits: RateLimits = RateLimits()

    def get(self, name: str) -> Plan:
        try:
            return self.plans[name]
        except KeyError:
            raise PlanError(f"unknown plan {name!r}; plans: {', '.join(sorted(self.plans))}") from None

    def best(self, names: Iterable[str]) -> Plan:
        """The most generous of ``names`` (by fast time, then concurrency), or the default plan when none is known."""
        known = [self.plans[n] for n in names if n in self.plans]
        if not known:
            return self.get(self.default)
        return max(known, key=lambda p: (p.fast_gpu_seconds, p.relax, p.max_concurrent_jobs, p.max_permutations))


def plans_path_from_env() -> Path | None:
    value = os.environ.get(PLANS_ENV)
    return Path(value) if value else None


def load_plans(path: Path | None = None) -> Plans:
    """Read a plans file; ``None`` reads the shipped defaults."""
    path = path or DEFAULT_PLANS_PATH
    try:
        raw = tomllib.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise PlanError(f"plans file {str(path)!r} does not exist (set by {PLANS_ENV})") from None
    except tomllib.TOMLDecodeError as exc:
        raise PlanError(f"plans file {str(path)!r} is not valid TOML: {exc}") from None
    return parse_plans(raw, source=str(path))


def parse_plans(raw: Mapping[str, Any], *, source: str = "plans") -> Plans:
    table = raw.get("plans")
    if not isinstance(table, dict) or not table:
        raise PlanError(f"{source}: needs at least one [plans.NAME] table")
    plans = {name: _plan(name, body, source) for name, body in table.items()}
    default = str(raw.get("default", next(iter(plans))))
    operator = str(raw.get("operator", default))
    for key, name in (("default", default), ("operator", operator)):
        if name not in plans:
            raise PlanError(f"{source}: {key} = {name!r} is not a plan; plans: {', '.join(sorted(plans))}")
    costs_raw = raw.get("costs", {})
    if not isinstance(costs_raw, dict):
        raise PlanError(f"{source}: [costs] must be a table")
    costs = Costs(
        gpu_seconds_per_megapixel_step=_number(costs_raw, "gpu_seconds_per_megapixel_step", 0.05, source, "costs"),
        turbo_multiplier=_number(costs_raw, "turbo_multiplier", 2.0, source, "costs"),
    )
    rates_raw = raw.get("rate_limits", {})
    if not isinstance(rates_raw, dict):
        raise PlanError(f"{source}: [rate_limits] must be a table")
    unknown = set(rates_raw) - {"guild_commands_per_minute", "guild_burst"}
    if unknown:
        raise PlanError(f"{source}: [rate_limits] has unknown keys {', '.join(sorted(unknown))}")
    rate_limits = RateLimits(
        guild_commands_per_minute=_number(rates_raw, "guild_commands_per_minute", 300, source, "rate_limits"),
        guild_burst=int(_number(rates_raw, "guild_burst", 60, source, "rate_limits")),
    )
    return Plans(plans=plans, default=default, operator=operator, costs=costs, rate_limits=rate_limits)


def _plan(name: str, body: Any, source: str) -> Plan:
    where = f"plans.{name}"
    if not isinstance(body, dict):
        raise PlanError(f"{source}: [{where}] must be a table")
    unknown = set(body) - {
        "fast_gpu_hours",
        "relax",
        "max_concurrent_jobs",
        "max_queued_jobs",
        "max_permutations",
        "commands_per_minute",
        "command_burst",
        "same_button_s",
    }
    if unknown:
        raise PlanError(f"{source}: [{where}] has unknown keys {', '.join(sorted(unknown))}")
    relax = body.get("relax", False)
    if not isinstance(relax, bool):
        raise PlanError(f"{source}: [{where}] relax must be true or false, not {relax!r}")
    permutations = int(_number(body, "max_permutations", 4, source, where))
    if not 1 <= permutations <= 40:
        raise PlanError(f"{source}: [{where}] max_permutations must be 1–40, not {permutations}")
    return Plan(
        name=name,
        fast_gpu_seconds=_number(body, "fast_gpu_hours", 0, source, where) * 3600,
        relax=relax,
        max_concurrent_jobs=max(1, int(_number(body, "max_concurrent_jobs", 3, source, where))),
        max_queued_jobs=int(_number(body, "max_queued_jobs", 10, source, where)),
        max_permutations=permutations,
        commands_per_minute=_number(body, "commands_per_minute", 20, source, where),
        command_burst=int(_number(body, "command_burst", 5, source, where)),
        same_button_s=_number(body, "same_button_s", 2, source, where),
    )


def _number(table: Mapping[str, Any], key: str, default: float, source: str, where: str) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise PlanError(f"{source}: [{where}] {key} must be a number >= 0, not {value!r}")
    return float(value)
