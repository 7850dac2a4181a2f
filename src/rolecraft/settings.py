"""One settings model for the whole program.

`Settings` is the single source of truth for configuration: its fields are
validated by pydantic, read from `ROLECRAFT_*` environment variables and an
optional TOML config file, and turned into CLI flags (with the field
descriptions as help) by `rolecraft.cli.options`.
Precedence: flags > environment > config file > defaults.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)


def _default_home() -> Path:
    return Path(os.environ.get("ROLECRAFT_HOME", Path.home() / ".rolecraft")).expanduser()


def env_offline() -> bool:
    """Offline by the environment: ROLECRAFT_OFFLINE or Hugging Face's HF_HUB_OFFLINE set to a true value.
    The default of `Settings.offline`, and the one rule for code that runs without settings at hand."""
    flags = (os.environ.get(name, "").strip().lower() for name in ("HF_HUB_OFFLINE", "ROLECRAFT_OFFLINE"))
    return any(flag in {"1", "true", "yes", "on"} for flag in flags)


def config_path() -> Path:
    """Where the TOML config file is read from (ROLECRAFT_CONFIG overrides)."""
    explicit = os.environ.get("ROLECRAFT_CONFIG")
    return Path(explicit).expanduser() if explicit else _default_home() / "config.toml"


class Settings(BaseSettings):
    """Every knob rolecraft reads. Env var: ROLECRAFT_<FIELD>; flag: --<field-with-dashes>."""

    model_config = SettingsConfigDict(env_prefix="ROLECRAFT_", extra="forbid", validate_default=True)

    home: Path = Field(default_factory=_default_home, description="Data folder (database, imported cards, caches).")
    offline: bool = Field(
        default_factory=env_offline, description="Never touch the network: no hub downloads, no remote pictures "
        "(also on when HF_HUB_OFFLINE=1)."
    )
    database_url: str | None = Field(
        None, description="SQLAlchemy database URL; default is SQLite at <home>/rolecraft.db."
    )
    backend: str = Field("llama_cpp", description="Generation backend: llama_cpp, transformers or openai_compat.")
    model: str = Field(
        "smollm2",
        description="Model: 'smollm2' (bundled), a local .gguf path, 'hf:REPO/FILE.gguf' (online), "
        "or the model name on an OpenAI-compatible server.",
    )
    mmproj: str | None = Field(
        None, description="llama_cpp: multimodal projector GGUF (path or hf:...) so the model reads images itself."
    )
    adapter: str | None = Field(
        None, description="LoRA adapter for every character without its own: a .gguf (llama_cpp) or a PEFT "
        "folder (transformers); relative paths are resolved against <home>/adapters; 'off' disables all "
        "adapters, cards' included (the base model, for comparisons).",
    )
    device: str = Field("auto", description="transformers: torch device (auto, cpu, cuda, cuda:1, mps).")
    vision: bool = Field(False, description="openai_compat: the server's model reads images (send image_url parts).")
    base_url: str = Field("http://127.0.0.1:8000/v1", description="openai_compat: server URL ending in /v1.")
    api_key: str = Field("none", description="openai_compat: API key sent to the server.")
    n_ctx: int = Field(2048, ge=256, le=1_048_576, description="Context window in tokens (llama_cpp).")
    n_threads: int | None = Field(None, ge=1, description="CPU threads for llama_cpp (default: all cores but one).")
    max_tokens: int = Field(160, ge=1, le=32_768, description="Most tokens in one reply.")
    temperature: float = Field(0.8, ge=0.0, le=2.0, description="Sampling temperature (0 = greedy).")
    top_p: float = Field(0.95, gt=0.0, le=1.0, description="Nucleus sampling mass.")
    top_k: int = Field(40, ge=0, description="Top-k sampling (0 = off).")
    repeat_penalty: float = Field(1.1, ge=0.0, description="Penalty for repeating recent tokens.")
    seed: int | None = Field(None, description="Sampling seed for reproducible replies.")
    catchphrase_bias: float = Field(
        2.0, ge=0.0, le=20.0, description="Logit bias toward the character's catchphrase tokens (0 = off)."
    )
    anti_copy: bool = Field(True, description="Forbid replies from reciting the character card verbatim (llama_cpp; "
                            "measured: card copying 0.6% -> 0.1%, no other probe changed).")
    anti_copy_tokens: int = Field(6, ge=1, le=64, description="Longest verbatim run of card tokens a reply may have.")
    dry_multiplier: float = Field(
        0.8, ge=0.0, le=100.0, description="DRY repetition penalty for characters' replies (0 = off): penalises "
        "extending any run of tokens already in the conversation, so a reply does not repeat an earlier one "
        "(measured, greedy: near-identical replies 56% -> 26%)."
    )
    banned_phrases: list[str] = Field(
        default_factory=list, description="Extra phrases the character must never say (comma separated)."
    )
    user_name: str = Field("User", min_length=1, max_length=64, description="Your name in the conversation.")
    persona: str = Field("", description="A short description of you, shown to the character.")
    character: str = Field("ember", description="Default character id for `rolecraft chat`.")
    state_tracking: Literal["off", "rules", "model"] = Field(
        "rules",
        description="Dialogue state updates: 'rules' (deterministic), 'model' (rules + schema-constrained "
        "model extraction), or 'off'; default: 'model' for catalog models that passed the extraction benchmark "
        "(benchmarks/state_tracking.py), else 'rules'.",
    )
    summary: Literal["off", "extractive", "model"] = Field(
        "model", description="Rolling summary of messages that no longer fit: 'model', 'extractive' or 'off'."
    )
    long_term_memory: bool = Field(
        True, description="Embed finished turns and recall relevant old ones once they leave the context "
        "(needs the 'embeddings' extra; skipped without it)."
    )
    memory_results: int = Field(3, ge=0, le=20, description="Most remembered exchanges recalled per turn.")
    recall_template: str = Field(
        "[{{char}} remembers]\n{{memories}}",
        description="How recalled old exchanges enter the prompt, right before the reply ({{memories}}: the "
        "exchanges, a line per message; {{said}}: what {{user}} said in them; {{char}}, {{user}}).",
    )
    author_note: str = Field("", description="Author's note inserted into the conversation.")
    author_note_depth: int = Field(4, ge=0, le=100, description="Messages from the end where the note goes.")
    author_note_every: int = Field(1, ge=1, le=100, description="Insert the author's note every N user turns.")
    group_order: Literal["mention", "talkative", "list"] = Field(
        "mention", description="Who answers in a group scene: those mentioned (else by talkativeness), "
        "by talkativeness, or everyone present in list order."
    )
    action_max_tokens: int = Field(64, ge=8, le=1024, description="Most tokens of a scene reply's action choice "
                                   "(the JSON generated after its text).")
    lorebook_scan_depth: int | None = Field(None, ge=0, description="Messages scanned for lorebook keys.")
    lorebook_token_budget: int | None = Field(None, ge=0, description="Most tokens of lorebook entries per turn.")
    image_max_pixels: int = Field(40_000_000, ge=1, description="Refuse images with more pixels than this.")
    image_template: str = Field(
        "[{{user}} shows {{char}} a picture. {{char}} sees {{content}}.]",
        description="How a picture enters the prompt for text-only models ({{content}}: what it shows in words; "
        "{{observation}}: the full description with size and scores; {{labels}}, {{faces}}, {{colours}}, {{size}}, "
        "{{char}}, {{user}}).",
    )
    max_context_images: int = Field(2, ge=0, description="Pictures described in full in the prompt (latest first).")
    image_reminder: str = Field(
        "[{{char}} looks at the picture: {{content}}. {{char}} says what it is.]",
        description="Repeated right before the reply for the picture just shown (empty = off); same macros as "
        "image_template.",
    )
    system_prompt: str = Field(
        "", description="The instructions that open every character's definition when its card has none (empty: "
        "the built-in ones; {{char}} and {{user}} are expanded)."
    )
    audio_max_seconds: float = Field(600.0, gt=0, description="Refuse audio clips longer than this.")
    stt_backend: str = Field("auto", description="Speech recognition: auto (whisper if installed, else "
                             "pocketsphinx), whisper or pocketsphinx.")
    stt_model: str | None = Field(None, description="Whisper model folder, size or hub id (default: the bundled base).")
    voice: str | None = Field(None, description="Default TTS voice, e.g. 'piper:en_US-joe-medium' or 'espeak:cmn'.")
    expressions: Literal["lexicon", "llm", "off"] = Field(
        "lexicon", description="How each reply gets its expression label (lexicon measured best on the bundled model)."
    )
    kv_cache_mb: int = Field(
        512, ge=0, description="Memory for saved KV caches of sessions not in use (llama_cpp), in MiB."
    )
    kv_disk_mb: int = Field(2048, ge=0, description="Disk for saved KV caches spilled from memory, in MiB.")
    batch_streams: int = Field(
        1, ge=1, le=64, description="Model jobs served at once (1 = one at a time): llama_cpp decodes their streams "
        "together in one batch, in a second context that reserves n_ctx of KV cache per stream; openai_compat sends "
        "them to the engine concurrently (benchmarks/batched_decode.py, benchmarks/server_load.py).",
    )
    kv_prefix_mb: int = Field(
        1024, ge=0, description="Disk for saved KV caches of character prefixes shared by new chats (0 = off), "
        "in MiB.",
    )
    host: str = Field("127.0.0.1", description="Address `rolecraft serve` listens on.")
    port: int = Field(8765, ge=1, le=65535, description="Port `rolecraft serve` listens on.")
    workers: int = Field(1, ge=1, le=64, description="Server processes (each loads its own model).")
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, description="Origins allowed to call the API from a browser (comma separated; * = any)."
    )
    max_body_bytes: int = Field(32 * 1024 * 1024, ge=1024, description="Largest request body accepted, in bytes.")
    rate_limit_per_minute: int = Field(
        120, ge=0, description="Requests a minute per API key (0 = no limit; a key may carry its own)."
    )
    rate_limit_shared: bool = Field(
        False, description="Count rate limits in the database, so a key's limit holds across replicas sharing it."
    )
    replica_name: str | None = Field(
        None, max_length=64, description="This server's name behind a load balancer (sent as X-Rolecraft-Replica)."
    )
    max_reply_tokens: int = Field(
        4096, ge=1, le=1_048_576, description="Most tokens one API request may ask for."
    )
    require_api_key: bool | None = Field(
        None, description="Demand an API key on every request (default: only when not on a loopback address)."
    )
    max_card_bytes: int = Field(20 * 1024 * 1024, ge=1024, description="Largest card file accepted, in bytes.")
    max_message_chars: int = Field(100_000, ge=1, description="Most characters in one message of an API request.")
    max_request_chars: int = Field(
        1_000_000, ge=1, description="Most characters in all the messages of one API request together."
    )
    strict_api: bool = Field(
        False, description="Refuse request fields the server does not understand (default: ignore them, log each "
        "name once and list them in the X-Rolecraft-Ignored response header, as llama.cpp and vLLM do)."
    )

    @model_validator(mode="after")
    def _per_model_defaults(self) -> Settings:
        """Defaults that depend on the model (state_tracking), unless given; they stay out of fields_set, so a
        copy with another model gets that model's default."""
        if "state_tracking" not in self.model_fields_set:
            from rolecraft.backends.catalog import default_state_tracking

            self.state_tracking = default_state_tracking(self.model)
            self.model_fields_set.discard("state_tracking")
        return self

    @field_validator("banned_phrases", "cors_origins", mode="before")
    @classmethod
    def _split_commas(cls, value: object) -> object:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    @property
    def db_url(self) -> str:
        """The database URL in force."""
        return self.database_url or f"sqlite:///{self.home / 'rolecraft.db'}"

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings, env_settings, TomlConfigSettingsSource(settings_cls, toml_file=config_path()))
