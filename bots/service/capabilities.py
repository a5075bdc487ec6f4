"""Step 3 of admission: what the engine can do. A pure check, before any credit is held.

The command language accepts Midjourney's whole syntax; the engine honours most of it. Anything it would refuse or
silently ignore is refused here, with the usual one-line reason, so nothing is charged, queued and then failed on
the GPU (or painted without the option the user paid for).

What a model can do comes from the model registry (``impasto.engine.registry``, pure Python: no torch on bot hosts):
the entry of the model that will paint (its few-step variant under ``--draft``) says whether it has an IP-Adapter.
"""

from __future__ import annotations

from impasto.bots.i18n.catalog import t
from impasto.bots.language.errors import PromptError
from impasto.bots.language.job import Job
from impasto.bots.service.errors import InvalidRequest
from impasto.engine.registry import Registry, RegistryError
from impasto.queue.actions import Action


def paints_from_text(action: Action, job: Job) -> bool:
    """Text-to-image from noise: /imagine and 🔄 without image prompts. Everything else starts from images."""
    return action in (Action.IMAGINE, Action.REROLL) and not job.image_prompts


def check_capabilities(action: Action, job: Job, registry: Registry | None = None) -> None:
    """Raise ``PromptError`` for an option the engine would refuse or ignore for this action. ``registry``: the
    model registry the workers paint with (None: the model checks are skipped)."""
    if action is Action.DESCRIBE:
        # /describe paints nothing: what it needs is the model's captioner (the registry's ``describer``).
        entry = registry.models.get(job.model) if registry is not None else None
        if registry is not None and (entry is None or entry.describer is None):
            raise InvalidRequest(t("describe.refusal.no_captioner", "en", model=job.model))
        return
    if job.weird:
        raise PromptError(
            f"--weird {job.weird} is not supported by this engine; only --weird 0 is allowed",
            option="--weird",
            value=str(job.weird),
        )
    if job.stop != 100 and not paints_from_text(action, job):
        what = "image prompts" if job.image_prompts else action.label
        raise PromptError(
            f"--stop works only when painting from text (/imagine without image prompts, 🔄), not with {what}; "
            "remove --stop",
            option="--stop",
            value=str(job.stop),
        )
    if job.style_references and registry is not None:
        painter = _painter(registry, job)
        if painter is None or registry.get(painter).ip_adapter is None:
            which = f"{painter} (the few-step model --draft paints with)" if painter != job.model else job.model
            raise PromptError(
                f"--sref needs an IP-Adapter and model {which} has none in this server's registry; "
                "remove --sref (image prompts still work)",
                option="--sref",
                value=" ".join(job.style_references)[:200],
            )


def _painter(registry: Registry, job: Job) -> str | None:
    """The registry name of the model that will paint ``job``; None when it is not in the registry."""
    try:
        return registry.for_render(job.model, job.draft)[0].name
    except RegistryError:
        return None
