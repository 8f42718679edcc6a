"""The local Ray's settings: which data plane Serve gets, and HAProxy's side listeners kept on loopback."""

from __future__ import annotations

import os

import pytest

from ragline import ray_local
from ragline.serving import data_plane

SERVE_VARS = (*data_plane._FAST_PATH, *data_plane._HAPROXY_PORTS)


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SERVE_VARS:
        monkeypatch.delenv(name, raising=False)


def test_the_fast_path_turns_on_serves_throughput_mode_with_a_short_drain() -> None:
    data_plane.set_serve_data_plane(True, 2.5)
    assert os.environ["RAY_SERVE_THROUGHPUT_OPTIMIZED"] == "1"
    assert os.environ["RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S"] == "2.5"
    assert os.environ["RAY_SERVE_REQUEST_PATH_LOG_BUFFER_SIZE"] == "1"


def test_with_haproxy_its_side_listeners_get_free_ports(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data_plane, "haproxy_available", lambda: True)
    data_plane.set_serve_data_plane(True, 2)
    assert os.environ["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
    ports = [int(os.environ[name]) for name in data_plane._HAPROXY_PORTS]
    assert len(set(ports)) == 2 and all(1024 < p < 65536 for p in ports)


def test_without_haproxy_serves_python_proxy_keeps_the_port(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(data_plane, "haproxy_available", lambda: False)
    data_plane.set_serve_data_plane(True, 2)
    assert "RAY_SERVE_ENABLE_HA_PROXY" not in os.environ
    assert os.environ["RAY_SERVE_THROUGHPUT_OPTIMIZED"] == "1"


def test_the_classic_path_clears_what_an_earlier_start_set() -> None:
    data_plane.set_serve_data_plane(True, 2)
    data_plane.set_serve_data_plane(False, 2)
    assert not [name for name in SERVE_VARS if name in os.environ]


def test_haproxys_statistics_and_metrics_listeners_bind_loopback(monkeypatch: pytest.MonkeyPatch) -> None:
    haproxy = pytest.importorskip("ray.serve._private.haproxy")
    monkeypatch.setattr(haproxy, "HAPROXY_CONFIG_TEMPLATE", haproxy.HAPROXY_CONFIG_TEMPLATE)
    before = [line.strip() for line in haproxy.HAPROXY_CONFIG_TEMPLATE.splitlines() if "bind " in line]
    assert any(line.startswith(("bind :", "bind *:")) for line in before), "the template changed: review the patch"
    data_plane._haproxy_on_loopback()
    after = [line.strip() for line in haproxy.HAPROXY_CONFIG_TEMPLATE.splitlines() if "bind " in line]
    assert len(after) == len(before)
    assert not [line for line in after if line.startswith(("bind :", "bind *:"))], after
    assert "bind 127.0.0.1:{{ config.metrics_port }}" in after and "bind 127.0.0.1:{{ config.stats_port }}" in after


def test_free_ports_come_from_below_the_kernels_ephemeral_range() -> None:
    """A port the kernel could hand to a Ray socket between the draw and the server's bind would collide."""
    start = ray_local._ephemeral_start()
    if start - ray_local._DRAW_FROM < 1000:
        pytest.skip(f"this machine's ephemeral range starts at {start}: no room below it")
    ports = {ray_local.free_port() for _ in range(50)}
    assert all(ray_local._DRAW_FROM <= p < start for p in ports), sorted(ports)
    assert len(ports) > 40  # drawn at random, not one port handed to every caller
