"""/mod: a server's moderators keep impasto clean — bans and timeouts, the server's own words, each category's rule.

Members with Manage Messages see the group (``default_permissions``; a server may change who does, so the permission
is checked again on every use). Each subcommand is one call of ``bots/moderation/commands.py`` in one transaction;
the answer is for the moderator alone. The prompt check itself runs in the admission pipeline (``ModerationCheck``).
"""

from __future__ import annotations

from typing import Any

import discord
from discord import app_commands
from discord.ext import commands

from impasto.bots.discord import texts
from impasto.bots.discord.cogs.account import private
from impasto.bots.discord.cogs.errors import answer, report
from impasto.bots.discord.controls import Controls
from impasto.bots.discord.language import reply_locale
from impasto.bots.discord.review_queue import DiscordReview
from impasto.bots.discord.surface import PLATFORM
from impasto.bots.i18n.catalog import t
from impasto.bots.moderation import commands as mod_commands
from impasto.bots.moderation.review import log_text
from impasto.bots.service.errors import InvalidRequest
from impasto.bots.service.requester import Requester
from impasto.bots.web.links import LinkError, desk_link
from impasto.queue.moderation.policy import Policy
from impasto.storage import moderation

_Interaction = discord.Interaction[Any]
CHOICES = [app_commands.Choice(name=n, value=n) for n in ("block", "nsfw", "allow", "default")]


@app_commands.guild_only()
@app_commands.default_permissions(manage_messages=True)
class Moderation(commands.GroupCog, group_name="mod", group_description="Moderate impasto here (moderators only)"):
    def __init__(self, controls: Controls, policy: Policy, review: DiscordReview | None = None) -> None:
        self.sessions = controls.service.sessions
        self.policy = policy
        self.review = review
        self.web = controls.web  # the web front door: /mod desk links the moderators' desk
        super().__init__()

    async def cog_app_command_error(self, interaction: _Interaction, error: app_commands.AppCommandError) -> None:
        cause = error.original if isinstance(error, app_commands.CommandInvokeError) else error
        if isinstance(cause, mod_commands.ModerationCommandError):
            await answer(interaction, texts.refusal(str(cause)))  # written in the moderator's language
            return
        await report(interaction, error)

    async def interaction_check(self, interaction: _Interaction) -> bool:
        if not interaction.permissions.manage_messages:
            await answer(interaction, f"⚠️ {t('modcmd.needs_manage', await reply_locale(interaction))}")
            return False
        return True

    async def _ids(self, interaction: _Interaction, member: discord.abc.User | None = None) -> tuple[int, int, int]:
        """(server, moderator, member) SQL ids: rows are made on first sight, so a member who never painted can be
        banned before they try."""
        if interaction.guild_id is None:
            raise InvalidRequest("/mod works in a server, not in DMs")
        async with self.sessions() as session, session.begin():
            guild = await moderation.guild_id_for(session, PLATFORM, str(interaction.guild_id))
            moderator = await moderation.user_id_for(session, PLATFORM, str(interaction.user.id))
            target = await moderation.user_id_for(session, PLATFORM, str(member.id)) if member is not None else 0
        return guild, moderator, target

    async def _say(self, interaction: _Interaction, line: str) -> None:
        await answer(interaction, texts.escape(line))

    @app_commands.command(name="ban", description="Stop a member from painting here (for a while, or until lifted)")
    @app_commands.describe(member="Who", duration="How long: 30m, 12h, 7d (empty: until lifted)", reason="Why")
    async def ban(
        self, interaction: _Interaction, member: discord.Member, duration: str = "", reason: str = ""
    ) -> None:
        await private(interaction)
        guild, moderator, target = await self._ids(interaction, member)
        async with self.sessions() as session, session.begin():
            line = await mod_commands.ban_user(
                session,
                guild_id=guild,
                moderator_id=moderator,
                user_id=target,
                user_name=member.display_name,
                reason=reason,
                duration=duration or None,
                locale=await reply_locale(interaction),
            )
        await self._say(interaction, line)

    @app_commands.command(name="unban", description="Let a member paint here again")
    @app_commands.describe(member="The member")
    async def unban(self, interaction: _Interaction, member: discord.Member) -> None:
        await private(interaction)
        guild, moderator, target = await self._ids(interaction, member)
        async with self.sessions() as session, session.begin():
            line = await mod_commands.unban_user(
                session,
                guild_id=guild,
                moderator_id=moderator,
                user_id=target,
                user_name=member.display_name,
                locale=await reply_locale(interaction),
            )
        await self._say(interaction, line)

    @app_commands.command(name="word_add", description="Refuse prompts with this word or phrase here")
    @app_commands.describe(word="The word or phrase", category="Its category (default: custom, blocked)")
    async def word_add(self, interaction: _Interaction, word: str, category: str = "custom") -> None:
        await private(interaction)
        guild, moderator, _ = await self._ids(interaction)
        async with self.sessions() as session, session.begin():
            line = await mod_commands.add_word(
                session,
                self.policy,
                guild_id=guild,
                moderator_id=moderator,
                word=word,
                category=category,
                locale=await reply_locale(interaction),
            )
        await self._say(interaction, line)

    @app_commands.command(name="word_remove", description="Stop refusing this word here (locked categories stay)")
    @app_commands.describe(word="The word or phrase")
    async def word_remove(self, interaction: _Interaction, word: str) -> None:
        await private(interaction)
        guild, moderator, _ = await self._ids(interaction)
        async with self.sessions() as session, session.begin():
            line = await mod_commands.remove_word(
                session,
                self.policy,
                guild_id=guild,
                moderator_id=moderator,
                word=word,
                locale=await reply_locale(interaction),
            )
        await self._say(interaction, line)

    @app_commands.command(name="words", description="This server's own words")
    async def words(self, interaction: _Interaction) -> None:
        await private(interaction)
        guild, _, _ = await self._ids(interaction)
        async with self.sessions() as session, session.begin():
            line = await mod_commands.list_words(
                session, self.policy, guild_id=guild, locale=await reply_locale(interaction)
            )
        await self._say(interaction, line)

    @app_commands.command(name="policy", description="Each category's rule here; with both options, change one")
    @app_commands.describe(category="A category (see the list)", choice="block, nsfw (only NSFW channels), allow")
    @app_commands.choices(choice=CHOICES)
    async def policy_(
        self, interaction: _Interaction, category: str = "", choice: app_commands.Choice[str] | None = None
    ) -> None:
        await private(interaction)
        guild, moderator, _ = await self._ids(interaction)
        locale = await reply_locale(interaction)
        async with self.sessions() as session, session.begin():
            if category and choice is not None:
                line = await mod_commands.set_policy(
                    session,
                    self.policy,
                    guild_id=guild,
                    moderator_id=moderator,
                    category=category,
                    choice=choice.value,
                    locale=locale,
                )
            else:
                line = await mod_commands.show_policy(session, self.policy, guild_id=guild, locale=locale)
        await self._say(interaction, line)

    # -- the review queue, its channel, the audit log (``review_queue.py``) ------------------------------------------

    def _desk(self) -> DiscordReview:
        if self.review is None:
            raise InvalidRequest("the review queue is not running in this bot")
        return self.review

    @app_commands.command(name="channel", description="Where the review queue and the audit feed are posted")
    @app_commands.describe(channel="The moderators' channel (default: this one)", clear="Post them nowhere")
    async def channel(
        self, interaction: _Interaction, channel: discord.TextChannel | None = None, clear: bool = False
    ) -> None:
        await private(interaction)
        if interaction.guild_id is None or interaction.channel_id is None:
            raise InvalidRequest("/mod works in a server, not in DMs")
        chosen = None if clear else str(channel.id if channel is not None else interaction.channel_id)
        await self._desk().review.set_channel(PLATFORM, str(interaction.guild_id), str(interaction.user.id), chosen)
        locale = await reply_locale(interaction)
        line = (
            t("modcmd.channel_cleared", locale)
            if chosen is None
            else t("modcmd.channel_set", locale, channel=f"<#{chosen}>")
        )
        await answer(interaction, line)

    @app_commands.command(name="review", description="Held results and appeals waiting for a moderator")
    async def review_(self, interaction: _Interaction) -> None:
        await private(interaction)
        if interaction.guild_id is None:
            raise InvalidRequest("/mod works in a server, not in DMs")
        await self._desk().list_pending(interaction, str(interaction.guild_id))

    @app_commands.command(name="log", description="This server's recent moderation actions")
    @app_commands.describe(member="Only this member's rows")
    async def log(self, interaction: _Interaction, member: discord.Member | None = None) -> None:
        await private(interaction)
        if interaction.guild_id is None:
            raise InvalidRequest("/mod works in a server, not in DMs")
        rows = await self._desk().review.log(
            PLATFORM, str(interaction.guild_id), user=str(member.id) if member is not None else None
        )
        await self._say(interaction, log_text(rows, await reply_locale(interaction))[: texts.MAX_MESSAGE - 100])

    @app_commands.command(name="desk", description="A private link to the moderators' desk on the web")
    async def desk(self, interaction: _Interaction) -> None:
        await private(interaction)
        if interaction.guild_id is None:
            raise InvalidRequest("/mod works in a server, not in DMs")
        if self.web is None:
            raise InvalidRequest(
                "the moderators' desk needs the web front door, which this bot has not been set up with"
            )
        who = Requester(
            "discord", str(interaction.user.id), interaction.user.display_name, guild_id=str(interaction.guild_id)
        )
        try:
            url = desk_link(self.web, who, lang=(locale := await reply_locale(interaction)))
        except LinkError as exc:
            raise InvalidRequest(exc.message) from None
        await answer(interaction, t("modcmd.desk_link", locale, url=f"<{url}>"))
