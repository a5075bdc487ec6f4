"""Operator configuration: environment variables with the ``IMPASTO_`` prefix, or a ``.env`` file.

Built once in ``main()`` and passed down (never an import-time singleton), so tests set what they need explicitly.
Secrets are ``SecretStr``: they never show in logs or reprs.
"""

from __future__ import annotations

import re
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from impasto.bots.service.safe_fetch import AllowList
from impasto.engine.registry import Registry, load_registry

if TYPE_CHECKING:
    from impasto.queue.moderation.policy import Policy
    from impasto.storage.images import ImageStore, RemoteStore


_BYTE_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(?:([kmgt])(i?))?b?\s*", re.IGNORECASE)


def parse_byte_size(text: str) -> int:
    """``"25769803776"``, ``"24GiB"`` (binary), ``"24G"`` or ``"24GB"`` (decimal) → bytes. Raises ValueError."""
    match = _BYTE_SIZE.fullmatch(text)
    if match is None:
        raise ValueError(f"{text!r} is not a size in bytes (e.g. 25769803776, 24GiB, 16G, 8000MB)")
    number, unit, binary = match.groups()
    power = "kmgt".index(unit.lower()) + 1 if unit else 0
    return int(float(number) * (1024 if binary else 1000) ** power)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="IMPASTO_", env_file=".env", extra="ignore")

    data_dir: Path = Path("./impasto-data")
    database_url: str | None = None  # unset: SQLite under data_dir
    redis_url: str | None = None  # unset: the console renders inline
    models: Path | None = None  # the model registry TOML; unset: the shipped engine/models.toml
    default_model: str | None = None
    lora_dir: Path | None = None  # unset: data_dir / "loras"
    # A worker's budget of resident model weights: bytes, or with a unit ("24GiB", "16G", "8000MB"). Unset: the
    # device's memory less a margin (engine/loading.py).
    model_cache_bytes: str | None = None
    # False: a worker refuses to download a model at start-up (`impasto models pull` fetches it beforehand).
    model_downloads: bool = True
    # The image store's shared bucket (README "Running on several machines"): set, IMPASTO_DATA_DIR/images becomes
    # this host's cache of it. Credentials: boto3's chain (AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a role).
    s3_bucket: str | None = None
    s3_prefix: str = ""  # e.g. "impasto/images/"
    s3_endpoint_url: str | None = None  # MinIO, R2, Ceph: their URL; unset: AWS
    s3_region: str | None = None

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

    @field_validator("model_cache_bytes")
    @classmethod
    def _byte_size_parses(cls, value: str | None) -> str | None:
        if value is not None and value.strip():
            parse_byte_size(value)  # a typo is a start-up error naming the setting
        return value

    @property
    def model_cache_budget(self) -> int | None:
        """IMPASTO_MODEL_CACHE_BYTES in bytes; None: the device's default."""
        return (
            parse_byte_size(self.model_cache_bytes)
            if self.model_cache_bytes and self.model_cache_bytes.strip()
            else None
        )

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
    # How long a link to a result's full-resolution PNG works (delivery posts it when the PNG does not fit the chat).
    web_download_days: float = Field(7, gt=0, le=365)
    # Moderation (README "Moderation").
    moderation: Path | None = None  # the prompt policy TOML; unset: the shipped queue/moderation/default.toml
    moderation_retention_days: int = Field(30, ge=1)  # refused/flagged prompts and images are kept this long

    @property
    def database_url_or_default(self) -> str:
        return self.database_url or f"sqlite:///{(self.data_dir / 'impasto.db').resolve()}"

    def image_remote(self) -> RemoteStore | None:
        """The bucket behind the image store (IMPASTO_S3_BUCKET), or None: the local folder (or a shared mount)."""
        if not self.s3_bucket:
            return None
        from impasto.storage.s3 import S3Bucket

        return S3Bucket(self.s3_bucket, prefix=self.s3_prefix, endpoint_url=self.s3_endpoint_url, region=self.s3_region)

    def image_store(self) -> ImageStore:
        """``IMPASTO_DATA_DIR/images``, a cache of the bucket when IMPASTO_S3_BUCKET is set."""
        from impasto.storage.images import ImageStore

        return ImageStore.in_data_dir(self.data_dir, remote=self.image_remote())

    @property
    def lora_dir_or_default(self) -> Path:
        return self.lora_dir or self.data_dir / "loras"

    @property
    def web_secret_value(self) -> str | None:
        return self.web_secret.get_secret_value() if self.web_secret is not None else None

    @property
    def web_download_seconds(self) -> int:
        return int(self.web_download_days * 24 * 3600)

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
