"""Contracts of the nightly replay (flows/nightly.py): its parameters and its manifest. No I/O.

``NightlyParams`` is the one parameter of the ``nightly`` flow (and of its Prefect deployment,
see prefect.yaml). Secrets are never parameters: a parameter is stored in clear on the Prefect
server, shown in its UI and copied into every flow run. A key comes from a Prefect ``Secret``
block whose *name* is a parameter (``*_api_key_block``), or else from the worker's environment
(``REPLAY_PHOENIX_API_KEY``, ``REPLAY_AGENT_API_KEY``, ``REPLAY_LLM_API_KEY``, read by
``models.settings.Settings``).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl, urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from models.simulate import Mode, RunOptions, ToolMode

# yesterday's sessions (UTC days: the catalog's times are UTC) that had an error
DEFAULT_SELECT_WHERE = ("error_count > 0 and started_at >= current_date - interval 1 day "
                        "and started_at < current_date")
# the Settings field each secret goes to, and the environment variable it otherwise comes from
SECRET_FIELDS = {"phoenix_api_key_block": "phoenix_api_key", "agent_api_key_block": "agent_api_key",
                 "llm_api_key_block": "llm_api_key"}
_SECRETISH = ("key", "token", "password", "secret")
# a Prefect block name: lowercase letters, digits and dashes
_BLOCK_NAME = r"^[a-z0-9][a-z0-9-]*$"


def _has_credentials(url: str) -> bool:
    """A user or password in the URL, or a query parameter named like a secret."""
    parts = urlsplit(url)
    if "@" in parts.netloc:
        return True
    return any(w in name.lower() for name, _ in parse_qsl(parts.query) for w in _SECRETISH)


class NightlyParams(BaseModel):
    """What the nightly replays, against which agent, and where it writes."""

    model_config = ConfigDict(extra="forbid")

    # where new spans come from (optional: without a source the nightly replays what the lake has)
    paths: list[str] | None = Field(None, description="OTLP/JSON files or folders to ingest (re-ingesting "
                                    "a file adds nothing: spans are deduplicated)")
    phoenix_url: str | None = Field(None, description="a Phoenix server to pull from, resuming at the stored cursor")
    phoenix_project: str | None = Field(None, description="the Phoenix project (default: project)")
    # what to replay
    project: str = Field(..., min_length=1, description="the project whose sessions are replayed")
    select_where: str = Field(DEFAULT_SELECT_WHERE, min_length=1,
                              description="a predicate over the sessions view (replays create --where)")
    regression_scenario_id: str | None = Field(None, description="a fixed scenario also run every night")
    # against what, how
    agent: str = Field(..., min_length=1, description="the dev agent: module:function or an http(s) URL")
    agent_name: str | None = Field(None, description="the agent definition's name (default: {project}_agent)")
    rows: int = Field(20, ge=1, le=1000, description="scenario rows")
    mode: Mode = "replay"
    tools: ToolMode = "recorded"
    concurrency: int = Field(32, ge=1, le=10_000)
    repeat: int = Field(1, ge=1, le=1000)
    batch_size: int = Field(100, ge=1, le=10_000, description="chats per Prefect task run")
    max_failure_rate: float = Field(0.2, ge=0, le=1)
    evaluators: list[str] = Field(default_factory=list, description="extra evaluators, module:Class")
    # where it writes
    report_dir: str | None = Field(None, description="HTML reports (default: {data_dir}/reports/nightly)")
    data_dir: str | None = Field(None, description="the lake and catalog (default: REPLAY_DATA_DIR or ./data)")
    # secrets: the NAMES of Prefect Secret blocks, never the values
    phoenix_api_key_block: str | None = Field(None, pattern=_BLOCK_NAME)
    agent_api_key_block: str | None = Field(None, pattern=_BLOCK_NAME)
    llm_api_key_block: str | None = Field(None, pattern=_BLOCK_NAME)

    @model_validator(mode="before")
    @classmethod
    def _no_secret_values(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for k in data:
                name = str(k).lower()
                if any(w in name for w in _SECRETISH) and not name.endswith("_block"):
                    raise ValueError(
                        f"{k!r}: secrets are never parameters (they are stored and shown in clear); "
                        "save it as a Prefect Secret block and pass the block's name "
                        "(phoenix_api_key_block, agent_api_key_block, llm_api_key_block), or set "
                        "REPLAY_PHOENIX_API_KEY / REPLAY_AGENT_API_KEY / REPLAY_LLM_API_KEY for the worker")
        return data

    @field_validator("select_where")
    @classmethod
    def _one_predicate(cls, where: str) -> str:
        """Refused here, when the parameters are set, as ``replays create --where`` refuses it:
        DuckDB must parse it as exactly one expression (what it may read is decided where it
        runs: the project's sessions, in a sandbox)."""
        import duckdb

        try:
            duckdb.SQLExpression(where)
        except duckdb.Error as exc:
            first = " ".join((str(exc).splitlines() or [type(exc).__name__])[0].split())
            raise ValueError(f"select_where must be one predicate over the sessions view: {first}") from None
        return where

    @model_validator(mode="after")
    def _one_source(self) -> NightlyParams:
        if self.paths and self.phoenix_url:
            raise ValueError("give paths or phoenix_url, not both")
        if self.phoenix_project and not self.phoenix_url:
            raise ValueError("phoenix_project needs phoenix_url")
        if self.phoenix_url and not self.phoenix_url.startswith(("http://", "https://")):
            raise ValueError(f"phoenix_url must be an http(s) URL, not {self.phoenix_url!r}")
        if self.phoenix_url and _has_credentials(self.phoenix_url):
            raise ValueError("phoenix_url carries credentials (a user and password, or a key parameter): secrets "
                             "are never parameters; save the key as a Prefect Secret block and pass its name as "
                             "phoenix_api_key_block, or set REPLAY_PHOENIX_API_KEY for the worker")
        return self

    @property
    def source(self) -> str | None:
        return "phoenix" if self.phoenix_url else ("files" if self.paths else None)

    @property
    def phoenix_project_name(self) -> str:
        return self.phoenix_project or self.project

    @property
    def agent_definition_name(self) -> str:
        return self.agent_name or f"{self.project}_agent"

    def run_name(self, regression: bool = False) -> str:
        """The run test's name: stable from night to night (the previous night's execution of
        the same name is the baseline), whatever the agent ref or the scenario of the night."""
        return (f"nightly regression: {self.regression_scenario_id}" if regression
                else f"nightly: {self.project}")

    @classmethod
    def sample(cls) -> NightlyParams:
        """A night on the bundled sample (its sessions are dated 2026-11-20..22: every session
        with an error, not only yesterday's)."""
        from models.settings import SAMPLE_AGENT, SAMPLE_PROJECT, SAMPLES_DIR

        return cls(paths=[str(SAMPLES_DIR / "otlp")], project=SAMPLE_PROJECT, agent=SAMPLE_AGENT,
                   select_where="error_count > 0")

    def run_options(self, regression: bool = False) -> RunOptions:
        return RunOptions(name=self.run_name(regression), mode=self.mode, tool_mode=self.tools,
                          concurrency=self.concurrency, repeat=self.repeat, batch_size=self.batch_size,
                          max_failure_rate=self.max_failure_rate)


class MetricDelta(BaseModel):
    """One KPI tonight against the baseline."""

    metric: str
    baseline: float | None = None
    tonight: float | None = None
    delta: float | None = None
    change: str = "unchanged"  # better, worse, unchanged, n/a; "different scenario, not comparable"
    significant: bool | None = None  # paired comparison only (same scenario): CI excludes 0 beyond noise


class Comparison(BaseModel):
    """Tonight's execution against the previous night's execution of the same run-test name."""

    baseline_execution_id: str | None = None  # None: the first night of this run-test name
    baseline_started_at: str | None = None
    kind: str = "none"  # none (first night), paired (same scenario: bootstrap CIs too), kpi (another scenario)
    kpis: list[MetricDelta] = Field(default_factory=list)  # execution_metrics, tonight - baseline
    paired: list[MetricDelta] = Field(default_factory=list)  # per-row metrics, paired bootstrap (same scenario)
    significant_regressions: list[str] = Field(default_factory=list)
    flaky_rows: list[int] = Field(default_factory=list)
    diverged_chats: int = 0  # against production
    first_divergent_turn: int | None = None


class NightlyRun(BaseModel):
    """One execution of the night: the selection's, or the regression scenario's."""

    kind: str  # selection, regression
    run_name: str
    scenario_id: str
    replay_id: str | None = None
    execution_id: str
    status: str
    total_chats: int = 0
    completed_chats: int = 0
    failed_chats: int = 0
    metrics: dict[str, Any] = Field(default_factory=dict)
    comparison: Comparison = Field(default_factory=Comparison)
    report_path: str | None = None


class NightlyResult(BaseModel):
    """What the nightly flow returns (and summarises in its markdown artifact)."""

    project: str
    night: str  # the UTC date of the run
    data_dir: str
    source: str | None = None
    ingest: dict[str, Any] | None = None
    selected_sessions: int = 0
    replay_id: str | None = None
    skipped: str | None = None  # why the selection was not replayed
    runs: list[NightlyRun] = Field(default_factory=list)
    secret_sources: dict[str, str] = Field(default_factory=dict)  # field -> "block:<name>" / "environment"
    artifact_key: str | None = None
