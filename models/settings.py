"""The one settings class. Nothing else in Replay reads ``os.environ``."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DATA_DIR = PROJECT_ROOT / "data"
SAMPLES_DIR = DEFAULT_DATA_DIR / "samples"
# the bundled sample: its project, and the example agent (a dev build, and v2 with a prompt change)
SAMPLE_PROJECT = "support-agent"
SAMPLE_AGENT = "examples.support_agent:agent"
SAMPLE_AGENT_V2 = "examples.support_agent:agent_v2"


class Settings(BaseSettings):
    """Replay's settings, from ``REPLAY_*`` environment variables (and CLI flags)."""

    model_config = SettingsConfigDict(env_prefix="REPLAY_", extra="ignore")

    data_dir: Path | str = Field(DEFAULT_DATA_DIR, description="holds lake/ and replay.duckdb; or a URL "
                                 "(s3://bucket/prefix, any fsspec URL) that holds lake/, the catalog "
                                 "staying on this machine (catalog_dir)")
    catalog_dir: Path | None = Field(None, description="where the catalog (replay.duckdb), the writer lock, "
                                     "staging and reports live when the data dir is a URL; default "
                                     "~/.local/share/replay/<scheme>/<bucket>_<prefix>-<digest of the URL>")
    # ingest
    batch_rows: int = Field(20_000, ge=100, description="spans per lake part file")
    batch_bytes: int = Field(8 * 1024 * 1024, ge=1024 * 1024,
                             description="input bytes per extract batch (bounds memory)")
    workers: int = Field(0, ge=0, description="parallel file parsers; 0 = one per core, max 4")
    duckdb_memory_limit: str = Field("512MB", description="DuckDB's memory limit (it spills past it): "
                                     "bounds the catalog process whatever the input size")
    sessionize_batch: int = Field(2_000, ge=1, description="traces rebuilt per batch (bounds memory)")
    # compaction after an ingest: a day partition of turns or sessions (merge-on-read versions), or
    # a closed month of spans/turns/sessions, with this many part files or more is folded into one
    # part; 0 = only `replay compact` does
    compact_min_files: int = Field(8, ge=0, description="part files of a turns/sessions day partition or of a "
                                   "closed month that make an ingest compact it (0: never after an ingest)")
    reject_raw_chars: int = Field(2000, ge=100, description="raw record kept in a reject row")
    # another Replay process's writer lock, or the catalog it has open: how long a command waits
    lock_timeout_s: float = Field(600.0, ge=0, description="seconds a command waits for another process's "
                                  "writer lock or open catalog (it says so on stderr at once)")
    # phoenix
    phoenix_api_key: SecretStr | None = None
    phoenix_page_size: int = Field(500, ge=1, le=1000, description="spans per Phoenix page (its cap: 1000)")
    phoenix_commit_spans: int = Field(20_000, ge=1, description="spans stored per commit of a Phoenix pull")
    # an OpenAI-compatible model for scenario writing (and later the simulated user, the judge)
    llm_base_url: str | None = Field(None, description="e.g. http://127.0.0.1:8000/v1")
    llm_model: str | None = None
    llm_api_key: SecretStr | None = None
    llm_timeout_s: float = Field(60.0, gt=0)
    llm_max_retries: int = Field(3, ge=0, le=10)
    # the LLM judges (task_completion, csat, ground_truth_match): "auto" = the model above when one is
    # set, "heuristic" = never a model (e.g. when the model plays only the simulated user)
    judge: Literal["auto", "heuristic"] = "auto"
    llm_context_tokens: int | None = Field(
        None, ge=256, description="the model's context window in tokens; Replay's own prompts (judges, "
        "simulated user, scenario writer) are cut to fit it. Unset: learnt from the server's first refusal")
    local_llm_python: str | None = Field(
        None, description="the Python that has the local-llm group (llama.cpp's server and SmolLM2) for "
        "replay demo --simulate; unset: Replay's own")
    # USD per 1M tokens by model, for --dry-run and --budget-usd (None: the bundled table)
    prices_file: Path | None = Field(None, description="a JSON price table: {model: {input, output}}")
    agent_api_key: SecretStr | None = Field(None, description="bearer key of an OpenAI-compatible agent under test")
    # scenario redaction: extra named patterns, e.g. REPLAY_REDACT_PATTERNS='{"order": "A\\d{4}"}'
    redact_patterns: dict[str, str] = Field(default_factory=dict)
    # "is this answer the same as production's?": the embedding model (tasks/common/semantic.py);
    # wordllama ships its weights in its wheel, sentence-transformers needs a local model, none = lexical
    semantic_model: Literal["wordllama", "sentence-transformers", "none"] = "wordllama"
    # the similarity an answer needs to pass ground_truth_match (None: the model's calibrated one)
    semantic_threshold: float | None = Field(None, ge=0.0, le=1.0)
    # evaluate: the time an evaluator may take on one chat (all its turns); past it, its scores of
    # that chat are timeout failures and it is left behind in a thread the process does not wait for
    evaluator_timeout_s: float = Field(300.0, gt=0)
    # the characters of a text (an answer, a user message) the evaluators and the divergence
    # check read: a longer one is judged on its beginning, with a note in the score's detail
    eval_text_chars: int = Field(100_000, ge=1000)
    # replay run without a terminal: a progress line on stderr every this many seconds (a bar on a terminal)
    progress_interval_s: float = Field(10.0, gt=0, description="seconds between two progress lines of replay "
                                       "run when stderr is not a terminal")
    # prefect: set (like prefect's own PREFECT_API_URL) to run stage flows on a server
    prefect_api_url: str | None = Field(None, validation_alias="PREFECT_API_URL")
    # where the simulate flow runs its batches: this process (thread), a Dask cluster (dask) or a
    # Ray cluster (ray)
    task_runner: Literal["thread", "dask", "ray"] = "thread"
    dask_address: str | None = Field(None, description="tcp://host:8786 of a Dask scheduler; "
                                     "None = a local cluster of two worker processes")
    ray_address: str | None = Field(None, description="host:6379 of a Ray cluster (ray start --head) or "
                                    "ray://host:10001; None = a local Ray instance of two CPUs")
    # TEST ONLY: a crash point. "chat_turns:N" kills this process (SIGKILL) right after the Nth
    # batch it writes has its chat_turns part and before its chats part (N = 1 when omitted);
    # "compact-write:N" / "compact:N" after compaction wrote / switched in its Nth partition.
    test_crash_after: str | None = Field(None, description="test only: chat_turns[:N], a kill -9 between "
                                         "a batch's two parts; compact-write[:N], compact[:N]")

    @field_validator("data_dir", mode="before")
    @classmethod
    def _folder_or_url(cls, v: Any) -> Any:
        """A URL (``scheme://...``, not ``file://``) stays text, without a trailing slash; anything
        else is a folder."""
        if isinstance(v, str) and is_url(v):
            return v.rstrip("/")
        if isinstance(v, str) and v.lower().startswith("file://"):
            return Path(v[len("file://"):])
        return Path(v) if isinstance(v, str) else v

    @property
    def lake_url(self) -> str | None:
        """The data dir's URL when the lake is on object storage (None: a local folder)."""
        return self.data_dir if isinstance(self.data_dir, str) else None

    @property
    def home(self) -> Path:
        """The local folder of the catalog, the writer lock, staging and reports: the data dir,
        or ``catalog_dir`` (default: one per URL under ~/.local/share/replay) for a URL."""
        if self.lake_url is None:
            return self.data_dir  # (catalog_dir is for a URL: a folder keeps its own catalog)
        return self.catalog_dir or default_catalog_dir(self.lake_url)

    @property
    def lake_dir(self):
        """``<data dir>/lake``: a Path, or for a URL an fsspec path (``upath.UPath``) with the
        Path API (``/``, ``glob``, ``exists``, ``open``) over object storage."""
        if self.lake_url is None:
            return self.data_dir / "lake"
        from tasks.store.remote import lake_path

        return lake_path(f"{self.lake_url}/lake")

    @property
    def work_dir(self) -> Path:
        """This machine's folder for what a writer keeps beside the lake while it works (staging
        dirs, compaction journals): the lake itself when it is local, ``<home>/lake`` for a URL."""
        return self.lake_dir if self.lake_url is None else self.home / "lake"

    @property
    def catalog_path(self) -> Path:
        return self.home / "replay.duckdb"


_URL = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]*://")


def is_url(value: str) -> bool:
    """Whether a data dir is a URL of object storage (``s3://``, ``gs://``, ``memory://``, ...);
    ``file://`` is a folder."""
    return bool(_URL.match(value)) and not value.lower().startswith("file://")


def default_catalog_dir(url: str) -> Path:
    """~/.local/share/replay/<scheme>/<bucket>_<prefix>-<digest>: a readable name, and a digest of the
    whole URL (two URLs never share a catalog)."""
    scheme, rest = url.split("://", 1)
    slug = re.sub(r"[^A-Za-z0-9._-]+", "_", rest.strip("/"))[:80] or "root"
    digest = hashlib.sha256(url.encode()).hexdigest()[:8]
    return Path.home() / ".local" / "share" / "replay" / scheme / f"{slug}-{digest}"


def load_settings(**overrides) -> Settings:
    """Settings from the environment, with explicit (CLI) overrides that are not None."""
    return Settings(**{k: v for k, v in overrides.items() if v is not None})
