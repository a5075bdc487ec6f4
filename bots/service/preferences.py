"""A user's defaults: ``/settings`` (and /fast, /relax, /turbo, /stealth, /public, /prefer remix) and ``/prefer``."""

from __future__ import annotations

from dataclasses import replace

from impasto.bots.i18n.locale import choose_locale, negotiate
from impasto.bots.language.parser import parse_imagine
from impasto.bots.language.prefs import MAX_OPTIONS, validate_option, validate_suffix
from impasto.bots.service.admission import relax_refusal
from impasto.bots.service.base import ServiceBase
from impasto.bots.service.context import settings_text
from impasto.bots.service.errors import InvalidRequest
from impasto.bots.service.requester import Requester
from impasto.bots.service.views import SettingsView, Variation
from impasto.engine.registry import Registry, RegistryError
from impasto.storage import accounts, locales
from impasto.storage.models import Preference

MODES = ("fast", "relax", "turbo")
VISIBILITIES = ("public", "stealth")


class PreferencesMixin(ServiceBase):
    async def settings(self, who: Requester) -> SettingsView:
        """The /settings panel's current state."""
        ctx = await self._context(who)
        return settings_view(ctx.prefs, language=ctx.chosen_locale, locale=ctx.locale)

    async def reply_locale(self, who: Requester) -> str:
        """The language to answer ``who`` in: their /settings choice, else ``who.client_locale``, else their server's
        default, else English. Reads SQL without creating rows (a refusal before any row exists is answered too)."""
        async with self.sessions() as session:
            chosen, server = await locales.chosen_locales(session, who.platform, who.user_id, who.guild_id)
        return negotiate(chosen=chosen, platform=who.client_locale, server=server)

    async def set_language(self, who: Requester, text: str) -> SettingsView:
        """The reply language the user chose, by name or tag ("中文", "English", "zh_Hans"); "auto" clears the
        choice (the client's language decides again). An unknown one is refused with the choices."""
        ctx = await self._context(who)
        try:
            chosen = choose_locale(text, locale=ctx.locale)
        except ValueError as exc:
            raise InvalidRequest(str(exc)) from None
        async with self.sessions() as session, session.begin():
            await locales.set_user_locale(session, who.platform, who.user_id, chosen)
            prefs = await accounts.preferences(session, ctx.user_id)
            locale = negotiate(chosen=chosen, platform=who.client_locale, server=ctx.server_locale)
            return settings_view(prefs, language=chosen, locale=locale)

    async def update_settings(
        self,
        who: Requester,
        *,
        mode: str | None = None,
        visibility: str | None = None,
        remix: bool | None = None,
        raw: bool | None = None,
        stylize: int | None = None,
        clear_stylize: bool = False,
        model: str | None = None,
        clear_model: bool = False,
        variation: Variation | None = None,
        reset: bool = False,
    ) -> SettingsView:
        """Change /settings. Only given fields change; ``reset`` restores every default first. Relax is refused on
        plans without it."""
        ctx = await self._context(who)
        if mode is not None and mode not in MODES:
            raise InvalidRequest(f"mode {mode!r} is not one of {', '.join(MODES)}")
        if mode == "relax" and not ctx.plan.relax:
            raise relax_refusal(self.plans, ctx.plan)
        if visibility is not None and visibility not in VISIBILITIES:
            raise InvalidRequest(f"visibility {visibility!r} is not one of {', '.join(VISIBILITIES)}")
        if stylize is not None and not 0 <= stylize <= 1000:
            raise InvalidRequest(f"stylize {stylize} is out of range; allowed 0–1000 (presets 50, 100, 250, 750)")
        if variation is not None and variation not in ("high", "low"):
            raise InvalidRequest(f"variation {variation!r} is not one of high, low")
        if model is not None:
            model_parameter(self.registry, model)
        async with self.sessions() as session, session.begin():
            prefs = await accounts.preferences_for_update(session, ctx.user_id)
            if reset:
                prefs.mode, prefs.visibility, prefs.remix = "fast", "public", False
                prefs.raw, prefs.stylize, prefs.model, prefs.variation = False, None, None, "high"
            for name, value in (
                ("mode", mode),
                ("visibility", visibility),
                ("remix", remix),
                ("raw", raw),
                ("stylize", stylize),
                ("model", model),
                ("variation", variation),
            ):
                if value is not None:
                    setattr(prefs, name, value)
            if clear_stylize:
                prefs.stylize = None
            if clear_model:
                prefs.model = None
            return settings_view(prefs, language=ctx.chosen_locale, locale=ctx.locale)

    async def prefer_suffix(self, who: Requester, text: str) -> str:
        """``/prefer suffix``: parameters added to every prompt; empty resets. Returns the stored suffix."""
        suffix = validate_suffix(text)
        ctx = await self._context(who)
        # Parse a probe prompt so a bad --v / --niji name in the suffix is refused now, not at the next /imagine.
        parse_imagine("probe", registry=self.registry, preferences=replace(ctx.preferences, suffix=suffix))
        async with self.sessions() as session, session.begin():
            prefs = await accounts.preferences_for_update(session, ctx.user_id)
            prefs.suffix = suffix
        return suffix

    async def prefer_option_set(self, who: Requester, name: str, value: str) -> dict[str, str]:
        """``/prefer option set NAME VALUE``: a personal ``--NAME`` that expands to VALUE; empty VALUE deletes it.
        Returns every option after the change."""
        validate_option(name, value)
        bare = (name[2:] if name.startswith("--") else name).lower()
        ctx = await self._context(who)
        async with self.sessions() as session, session.begin():
            prefs = await accounts.preferences_for_update(session, ctx.user_id)
            options = dict(prefs.options)
            cleaned = " ".join(value.split())
            if cleaned:
                if bare not in options and len(options) >= MAX_OPTIONS:
                    raise InvalidRequest(f"you have {len(options)} custom options; at most {MAX_OPTIONS} allowed")
                options[bare] = cleaned
            else:
                options.pop(bare, None)
            prefs.options = options
            return dict(sorted(options.items()))

    async def prefer_option_list(self, who: Requester) -> dict[str, str]:
        """``/prefer option list``: your custom options, by name."""
        ctx = await self._context(who)
        return {str(k): str(v) for k, v in sorted(ctx.prefs.options.items())}


def settings_view(prefs: Preference, *, language: str | None = None, locale: str = "en") -> SettingsView:
    variation: Variation = "low" if prefs.variation == "low" else "high"
    return SettingsView(
        mode=prefs.mode,
        visibility=prefs.visibility,
        remix=prefs.remix,
        raw=prefs.raw,
        stylize=prefs.stylize,
        model=prefs.model,
        variation=variation,
        suffix=prefs.suffix,
        settings_text=settings_text(prefs),
        language=language,
        locale=locale,
    )


def model_parameter(registry: Registry, name: str) -> str:
    """The parameter that selects registry model ``name`` ("v6" → "--v 6", "niji6" → "--niji 6")."""
    try:
        registry.get(name)
    except RegistryError as exc:
        raise InvalidRequest(str(exc)) from None
    if name.startswith("niji"):
        return f"--niji {name[4:]}".rstrip()
    if name.startswith("v") and name[1:2].isdigit():
        return f"--v {name[1:]}"
    raise InvalidRequest(f"model {name!r} has no --v / --niji name; choose one of {', '.join(registry.names())}")
