"""The nightly flow: yesterday's interesting production sessions, replayed against the dev agent.

Wiring only: the night is :func:`tasks.nightly.run_nightly` (pull -> select -> scenario -> run
-> evaluate -> compare with the previous night -> report -> summary artifact), its steps run
as Prefect task runs; the keys come from Prefect Secret blocks. Deployed by prefect.yaml (cron
``0 2 * * *`` UTC); ``python flows/nightly.py [PARAMS_JSON]`` runs one night (default: the
sample); ``replay nightly`` runs it from the CLI (in process without a Prefect server).
"""

from __future__ import annotations

import sys
from typing import Any

from prefect import flow

from models.nightly import SECRET_FIELDS, NightlyParams
from models.settings import Settings, load_settings
from tasks.common.runner import PREFECT
from tasks.nightly import run_nightly
from tasks.nightly.stage import failures


def nightly_settings(params: NightlyParams) -> tuple[Settings, dict[str, str]]:
    """REPLAY_* settings with the params' data dir, each key from its Prefect Secret block when
    one is named; returns where each key came from (a block's name or "environment"), never a value."""
    from prefect.blocks.system import Secret
    from pydantic import SecretStr

    blocks = {field: getattr(params, param) for param, field in SECRET_FIELDS.items() if getattr(params, param)}
    settings = load_settings(data_dir=params.data_dir,
                             **{f: SecretStr(str(Secret.load(b).get())) for f, b in blocks.items()})
    sources = {f: f"block:{b}" for f, b in blocks.items()}
    sources.update({f: "environment" for f in SECRET_FIELDS.values() if f not in sources and getattr(settings, f)})
    return settings, sources


@flow(name="nightly", log_prints=True)
def nightly_flow(params: NightlyParams) -> dict[str, Any]:
    """Replay the night's selected production sessions (and the regression scenario) against the
    dev agent; compare with the previous night; write the reports; publish a summary artifact."""
    settings, secret_sources = nightly_settings(params)
    result = run_nightly(settings, params, PREFECT, secret_sources)
    failed = failures(result)
    if failed:  # published first: the summary says what failed
        raise RuntimeError(failed)
    return result.model_dump(mode="json")


if __name__ == "__main__":
    nightly_flow(NightlyParams.model_validate_json(sys.argv[1]) if len(sys.argv) > 1 else NightlyParams.sample())
