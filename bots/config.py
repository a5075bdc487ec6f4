"""Operator configuration: environment variables with the ``IMPASTO_`` prefix, or a ``.env`` file.

Built once in ``main()`` and passed down (never an import-time singleton), so tests set what they need explicitly.
Secrets are ``SecretStr``: they never show in logs or reprs.
"""

from __future__ import annotations

from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from impasto.bots.service.safe_fetch import AllowList
from impasto.engine.registry import Registry, load_registry

if TYPE_CHECKING:
    from impasto.queue.moderation.policy import Policy


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IMPASTO_", env_file=".env", extra="ignore")

    data_dir: Path = Path("./impasto-data")
    database_url: str | None = None  # unset: SQLite under data_dir
    redis_url: str | None = None  # unset: the console renders inline
    models: Path | None = None  # the model registry TOML; unset: the shipped engine/models.toml
    default_model: str | None = None
    lora_dir: Path | None = None  # unset: data_dir / "loras"

    # The command language.
    max_permutations: int = Field(4, ge=1, le=40)  # Midjourney allows up to 40 for its top plans

    # Platforms.
    telegram_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org"
    telegram_webhook_url: str | None = None
    telegram_webhook_secret: SecretStr | None = None
    discord_token: SecretStr | None = None
    discord_api_url: str | None = None  # unset: Discord's own REST root
    discord_gateway_url: str | None = None  # unset: Discord's own gateway
    discord_test_guild: int | None = None  # sync slash commands to this guild only (instant, for testing)
    discord_shards: int | None = None  # set: run discord.py's auto-sharded client

    # User files.
    max_upload_bytes: int = 10 * 1024 * 1024
    # Image links go to public addresses only; these hosts and CIDRs (comma-separated) are exempt: a private
    # deployment's LAN image server, or 127.0.0.1 in tests. See bots/service/safe_fetch.py.
    fetch_allow_hosts: str = ""

    @field_validator("fetch_allow_hosts")
    @classmethod
    def _allow_list_parses(cls, value: str) -> str:
        AllowList.parse(value)  # a typo is a start-up error naming the setting, not a silently open or shut door
        return value

    # The web front door (`impasto web`): region editor and galleries. Unset URL: Vary (Region) is not offered.
    web_url: str | None = None  # the public base URL put in links, e.g. https://impasto.example.org
    web_secret: SecretStr | None = None  # signs links; long and random, the same for every bot and web process
    web_host: str = "127.0.0.1"
    web_port: int = Field(8600, ge=1, le=65535)
    # Moderation (README "Moderation").
    moderation: Path | None = None  # the prompt policy TOML; unset: the shipped queue/moderation/default.toml
    moderation_retention_days: int = Field(30, ge=1)  # refused/flagged prompts and images are kept this long

    @property
    def database_url_or_default(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'impasto.db').resolve()}"

    @property
    def lora_dir_or_default(self) -> Path:
        return self.lora_dir or self.data_dir / "loras"

    @property
    def web_secret_value(self) -> str | None:
        return self.web_secret.get_secret_value() if self.web_secret is not None else None

    @property
    def mask_editor(self) -> bool:
        """Whether Vary (Region) can be offered: ``queue.actions.offered(action, mask_editor=settings.mask_editor)``."""
        return bool(self.web_url and self.web_secret)

    @cached_property
    def registry(self) -> Registry:
        return load_registry(self.models, self.default_model)

    @cached_property
    def moderation_policy(self) -> Policy:
        """The compiled prompt policy (raises ``PolicyError`` naming the file and key when it is unusable)."""
        from impasto.queue.moderation.policy import load_policy

        return load_policy(self.moderation)
