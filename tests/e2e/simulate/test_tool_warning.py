"""An agent that never calls any tool its definition declares, over a whole run, is warned about
(stderr and `warnings` in --json); one that does is not."""

import json

from cli_helpers import ROOT, replay, replay_env, sample_scenario


def test_never_used_a_declared_tool_warns(tmp_path):
    d = tmp_path / "d"
    sid = sample_scenario(d)["scenario_id"]
    env = replay_env(PYTHONPATH=str(ROOT / "tests" / "support"))
    r = replay(d, "--json", "run", "--scenario", sid, "--agent", "agents_lib:sync_echo", env=env)
    assert r.returncode == 0, r.stderr
    (w,) = json.loads(r.stdout)["warnings"]
    assert "never called a tool in 38 turns" in w and "lookup_order" in w
    assert "replay: warning: the agent never called a tool" in r.stderr
    r = replay(d, "--json", "run", "--scenario", sid, "--agent", "examples.support_agent:agent")
    assert json.loads(r.stdout)["warnings"] == [] and "warning" not in r.stderr
