"""Pure parts of the scale-out (no cluster started): which runner an engine gets, and which
addresses keep Ray on the loopback."""

import pytest

from tasks.simulate import scale_out


def test_loopback_addresses():
    for a in ("127.0.0.1:6379", "localhost:6379", "ray://127.0.0.1:10001", "[::1]:6379", "127.0.1.1:1"):
        assert scale_out.is_loopback(a), a
    for a in ("10.0.0.5:6379", "ray://head:10001", "192.0.2.2:6379"):
        assert not scale_out.is_loopback(a), a


def test_an_engine_gets_its_runner_and_a_local_one_stays_on_the_loopback(monkeypatch):
    for k in ("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "RAY_ENABLE_UV_RUN_RUNTIME_ENV", "RAY_USAGE_STATS_ENABLED",
              "RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.setenv(k, "x")  # recorded: put back as it was after the test
        monkeypatch.delenv(k)
    ray = scale_out.cluster_runner("ray")
    assert type(ray).__name__ == "RayTaskRunner" and ray.address is None
    assert ray.init_kwargs["num_cpus"] == 2 and ray.init_kwargs["include_dashboard"] is False
    import os

    assert os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] == "0" and os.environ["RAY_ENABLE_UV_RUN_RUNTIME_ENV"] == "0"
    remote = scale_out.cluster_runner("ray", "ray://head:10001")
    assert remote.address == "ray://head:10001"
    dask = scale_out.cluster_runner("dask", None, {"n_workers": 3})
    assert type(dask).__name__ == "DaskTaskRunner"
    with pytest.raises(ValueError, match="unknown engine 'spark'"):
        scale_out.cluster_runner("spark")


def test_a_driver_sends_a_token_when_one_is_there_as_ray_start_does(tmp_path, monkeypatch):
    for k in ("RAY_AUTH_MODE", "RAY_AUTH_TOKEN", "RAY_AUTH_TOKEN_PATH"):
        monkeypatch.setenv(k, "x")
        monkeypatch.delenv(k)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.ray/auth_token
    assert not scale_out.ray_token_available()
    scale_out.cluster_runner("ray", "127.0.0.1:6379")
    assert "RAY_AUTH_MODE" not in __import__("os").environ
    (tmp_path / "token").write_text("ab" * 32)
    monkeypatch.setenv("RAY_AUTH_TOKEN_PATH", str(tmp_path / "token"))
    assert scale_out.ray_token_available()
    scale_out.cluster_runner("ray", "127.0.0.1:6379")
    assert __import__("os").environ["RAY_AUTH_MODE"] == "token"


def test_a_dead_cluster_address_fails_at_once_in_one_line():
    import socket

    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens there now
    assert scale_out.cluster_endpoint("tcp://127.0.0.1:8786") == ("127.0.0.1", 8786)
    assert scale_out.cluster_endpoint("ray://head:10001") == ("head", 10001)
    assert scale_out.cluster_endpoint("[::1]:6379") == ("::1", 6379)
    assert scale_out.cluster_endpoint("auto") is None
    scale_out.check_reachable("ray", None)  # a local instance: nothing to check
    for engine, address in (("ray", f"127.0.0.1:{port}"), ("dask", f"tcp://127.0.0.1:{port}")):
        with pytest.raises(scale_out.ClusterUnreachable) as err:
            scale_out.check_reachable(engine, address)
        msg = str(err.value)
        assert "\n" not in msg and msg.startswith(f"no {engine} cluster answers at {address}: "), msg
