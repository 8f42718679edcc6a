"""A Ray on this machine, on loopback only: every Ray socket on 127.0.0.1, no token files, no dashboard.

Both engines start it: Ray Data ingest (ragline.ingest.ray_engine) and Ray Serve (ragline.serving, which adds
its data plane and keeps the replicas' own listeners on loopback, ragline.serving.data_plane).
"""

from __future__ import annotations

import logging
import os
from typing import Any

log = logging.getLogger(__name__)

LOOPBACK = "127.0.0.1"


def start_local_ray(num_cpus: int | None = 2, **init_kwargs: Any) -> None:
    """Start a local Ray bound to 127.0.0.1, or do nothing when this process already joined one.

    ``init_kwargs`` go to ``ray.init`` (e.g. ``log_to_driver=False``, ``object_store_memory``).
    """
    # Read by Ray when it starts, so they must be set first. Without the first one Ray binds to and talks over
    # the machine's external address; the second stops Ray 2.60 from turning token auth on (~/.ray/auth_token).
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    try:
        import ray
    except ImportError as e:
        from ragline.errors import MissingDependencyError

        raise MissingDependencyError("ray", "ray") from e
    if ray.is_initialized():
        return
    options: dict[str, Any] = {
        "address": "local",  # a new Ray here, even when RAY_ADDRESS names another cluster
        "_node_ip_address": LOOPBACK,
        "include_dashboard": False,
        "num_cpus": num_cpus,
        **init_kwargs,
    }
    log.info("starting a local Ray on %s (%s CPUs)", LOOPBACK, num_cpus or "all")
    ray.init(**options)


def stop_local_ray() -> None:
    """Shut down the Ray this process joined, if any."""
    import ray

    if ray.is_initialized():
        ray.shutdown()


# Ports for listeners that start later (HAProxy's side listeners, test servers) are drawn below the kernel's
# ephemeral range and above Ray's worker ports (10002-19999 by default). A port the kernel hands out for
# `bind(0)` or an outgoing connection comes from the ephemeral range, so between the draw and the real bind
# only another explicit bind can take it; Ray's processes open hundreds of sockets in that window.
_DRAW_FROM = 20000


def _ephemeral_start() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            return int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default; macOS starts at 49152


def free_port() -> int:
    """A loopback TCP port that nothing holds now and that the kernel will not hand out on its own."""
    import random
    import socket

    top = _ephemeral_start()
    draws = random.SystemRandom()
    for _ in range(200 if top - _DRAW_FROM >= 1000 else 0):
        port = draws.randrange(_DRAW_FROM, top)
        with socket.socket() as s:
            try:
                s.bind((LOOPBACK, port))
            except OSError:
                continue
            return port
    with socket.socket() as s:  # no room below the ephemeral range on this machine
        s.bind((LOOPBACK, 0))
        return int(s.getsockname()[1])
