"""Running the Ray Serve application: bound from settings, on a local Ray or a cluster, and stopped.

``app_builder`` is what a RayService names (``import_path: ragline.serve:app_builder``, kept as a re-export).
"""

from __future__ import annotations

import logging
import time
from typing import Any, cast

import ray
from ray import serve

from ragline.api.settings import ServeSettings
from ragline.config import Settings, load_settings
from ragline.ray_local import start_local_ray
from ragline.serving.data_plane import set_serve_data_plane
from ragline.serving.deployments import GeneratorDeployment, IngressDeployment, RetrieverDeployment

log = logging.getLogger(__name__)

APP_NAME = "ragline"


def build_app(settings: Settings) -> Any:
    """The bound Serve application: ingress -> (retriever, generator), each with its options from settings."""
    s = settings.serve
    settings = settings.model_copy(update={"data_dir": settings.data_dir.resolve()})  # replicas have other cwds
    common: dict[str, Any] = {"graceful_shutdown_timeout_s": s.graceful_shutdown_timeout}
    # The decorators make Deployments of the classes; mypy still sees the classes.
    generator = cast(Any, GeneratorDeployment).options(**s.generator.options(), **common).bind(settings)
    retriever = (  # None: retrieval runs in the ingress replicas
        cast(Any, RetrieverDeployment).options(**s.retriever.options(), **common).bind(settings)
        if s.retriever.placement == "deployment"
        else None
    )
    return cast(Any, IngressDeployment).options(**ingress_options(s), **common).bind(retriever, generator, settings)


def ingress_options(s: ServeSettings) -> dict[str, Any]:
    """The ingress's deployment options. When it retrieves itself, the retriever's replicas, CPUs and
    autoscaling size it, and it still takes requests and writes access lines as the ingress."""
    if s.retriever.placement != "ingress":
        return s.ingress.options()
    own = s.ingress.options()
    return {
        **s.retriever.options(),
        "max_ongoing_requests": own["max_ongoing_requests"],
        "logging_config": own["logging_config"],
    }


def app_builder(args: dict[str, Any]) -> Any:
    """The application for a Ray cluster: ``import_path: ragline.serve:app_builder`` in a RayService's
    serveConfigV2 (or ``serve run``). Settings come from the environment (``RAGLINE_*``) with ``args``,
    nested like the settings tree (e.g. ``{"retrieval": {"k": 8}}``), on top."""
    return build_app(load_settings(**args))


def run(settings: Settings, **ray_init: Any) -> str:
    """Start a local Ray on loopback (if needed), Serve on ``serve.host:port``, and the app; returns its URL."""
    start(settings, **ray_init)
    return deploy(settings)


def start(settings: Settings, **ray_init: Any) -> None:
    """A local Ray on loopback (unless this process joined one already) and Serve listening on the port."""
    s = settings.serve
    # Ray runs its workers at nice 15 by default, fine for batch jobs; replicas answering requests must not
    # lose the CPU to every other process on the machine.
    ray_init.setdefault("_system_config", {"worker_niceness": 0})
    hook = "ragline.serving.data_plane.serve_replicas_on_loopback"
    ray_init.setdefault("runtime_env", {"worker_process_setup_hook": hook})
    if ray.is_initialized():
        log.info("Ray is already running: Serve keeps the data plane it was started with")
    else:
        set_serve_data_plane(s.fast_path, s.drain_seconds)
    start_local_ray(num_cpus=s.num_cpus, **ray_init)
    serve.start(
        http_options={
            "host": s.host,
            "port": s.port,
            # a backstop above the app's own deadline, which answers first with a clear message
            "request_timeout_s": s.request_timeout + 30,
            "keep_alive_timeout_s": 30,
        }
    )


def deploy(settings: Settings) -> str:
    """Run the app on the started Serve and return its URL once the port routes to it."""
    s = settings.serve
    serve.run(build_app(settings), name=APP_NAME, route_prefix="/")
    url = f"http://{s.host}:{s.port}"
    _wait_for_routes(url.replace("0.0.0.0", "127.0.0.1"))
    return url


def _wait_for_routes(url: str, timeout: float = 60.0) -> None:
    """Return once the port routes to the app: HAProxy is listening before Serve has sent it the routes, and
    answers 404 for a moment after serve.run returns."""
    import httpx

    deadline = time.monotonic() + timeout
    while True:
        try:
            if httpx.get(f"{url}/healthz", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            log.warning("%s/healthz does not answer yet; serving anyway", url)
            return
        time.sleep(0.2)


def shutdown() -> None:
    """Stop the app, then Serve. Deleting the app first drains it: the proxy stays up while each replica
    finishes the requests it holds (within graceful_shutdown_timeout); serve.shutdown alone drops them."""
    try:
        serve.delete(APP_NAME)
    except Exception:  # not running (failed start): nothing to drain
        log.debug("no app to delete", exc_info=True)
    serve.shutdown()
