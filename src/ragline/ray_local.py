"""A Ray on this machine, on loopback only: every Ray socket on 127.0.0.1, no token files, no dashboard."""

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


def serve_replicas_on_loopback() -> None:
    """A ``worker_process_setup_hook`` for Ray Serve: replicas bind their gRPC server on 127.0.0.1.

    Ray Serve 2.60 starts an inter-deployment gRPC server in every replica on ``[::]:0``, every interface,
    whatever the node address; this rebinds it to loopback. Harmless in workers that never run a replica.
    """
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


def stop_local_ray() -> None:
    """Shut down the Ray this process joined, if any."""
    import ray

    if ray.is_initialized():
        ray.shutdown()
