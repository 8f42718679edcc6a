"""The cluster deployment files (deploy/) parse and point at the project's real entry points, flags and settings."""

from __future__ import annotations

import importlib
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import typer
import yaml
from pydantic import BaseModel

from ragline.cli import app as cli_app
from ragline.config import Settings

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
RAYSERVICE = DEPLOY / "kuberay" / "rayservice.yaml"
RAYJOB = DEPLOY / "kuberay" / "rayjob.yaml"
QDRANT_VALUES = DEPLOY / "qdrant" / "values.yaml"
DOCKERFILE = DEPLOY / "Dockerfile"


def load(path: Path) -> dict[str, Any]:
    docs = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d is not None]
    assert len(docs) == 1, f"{path} should hold one document"
    assert isinstance(docs[0], dict)
    return docs[0]


def cluster_spec(manifest: dict[str, Any]) -> dict[str, Any]:
    spec = manifest["spec"]
    return spec["rayClusterConfig"] if manifest["kind"] == "RayService" else spec["rayClusterSpec"]


def pod_specs(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    cluster = cluster_spec(manifest)
    groups = [cluster["headGroupSpec"], *cluster["workerGroupSpecs"]]
    return [g["template"]["spec"] for g in groups]


def containers(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for spec in pod_specs(manifest) for c in spec["containers"]]


def ragline_env(manifest: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for c in containers(manifest) for e in c.get("env", []) if e["name"].startswith("RAGLINE_")]


def serve_config() -> dict[str, Any]:
    config = yaml.safe_load(load(RAYSERVICE)["spec"]["serveConfigV2"])
    assert isinstance(config, dict)
    return config


def settings_field(name: str) -> bool:
    """Does RAGLINE_A__B name a field of the settings tree (as pydantic-settings reads it)?"""
    model: type[BaseModel] = Settings
    parts = name.removeprefix("RAGLINE_").lower().split("__")
    for i, part in enumerate(parts):
        field = model.model_fields.get(part)
        if field is None:
            return False
        annotation = field.annotation
        if i < len(parts) - 1:
            if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
                return False
            model = annotation
    return True


def ray_pin() -> str:
    match = re.search(r"^ray==(\S+)$", (ROOT / "constraints.txt").read_text(), re.MULTILINE)
    assert match, "constraints.txt pins no ray version"
    return match.group(1)


# -- every file -------------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", sorted(DEPLOY.rglob("*.yaml")), ids=lambda p: str(p.relative_to(DEPLOY)))
def test_yaml_parses(path: Path) -> None:
    assert load(path)


@pytest.mark.parametrize(("path", "kind"), [(RAYSERVICE, "RayService"), (RAYJOB, "RayJob")])
def test_kuberay_kinds_and_ray_version(path: Path, kind: str) -> None:
    manifest = load(path)
    assert manifest["apiVersion"] == "ray.io/v1"
    assert manifest["kind"] == kind
    assert manifest["metadata"]["name"]
    # The image installs Ray from constraints.txt: the operator must start the same version.
    assert cluster_spec(manifest)["rayVersion"] == ray_pin()
    names = [c["name"] for c in containers(manifest)]
    assert names[0] == "ray-head" and all(n == "ray-worker" for n in names[1:])
    assert all(c["image"].startswith("ragline:") for c in containers(manifest))


@pytest.mark.parametrize("path", [RAYSERVICE, RAYJOB], ids=lambda p: p.name)
def test_gpu_worker_group(path: Path) -> None:
    groups = {g["groupName"]: g for g in cluster_spec(load(path))["workerGroupSpecs"]}
    gpu = groups["gpu"]["template"]["spec"]
    for container in gpu["containers"]:
        assert int(container["resources"]["limits"]["nvidia.com/gpu"]) >= 1
    assert any(t["key"] == "nvidia.com/gpu" for t in gpu["tolerations"])
    for g in groups.values():
        assert g["minReplicas"] <= g["replicas"] <= g["maxReplicas"]


@pytest.mark.parametrize("path", [RAYSERVICE, RAYJOB], ids=lambda p: p.name)
def test_env_names_are_settings(path: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = ragline_env(load(path))
    names = {e["name"] for e in env}
    assert "RAGLINE_QDRANT__URL" in names
    unknown = sorted(n for n in names if not settings_field(n))
    assert not unknown, f"not settings fields: {unknown}"
    # The literal values validate as the settings would read them in the pods.
    for e in env:
        if "value" in e:
            monkeypatch.setenv(e["name"], str(e["value"]))
    (tmp_path / "empty.toml").write_text("")  # no ragline.toml of the working directory
    monkeypatch.setenv("RAGLINE_CONFIG", str(tmp_path / "empty.toml"))
    s = Settings()
    values = QDRANT_VALUES_SERVICE
    assert s.qdrant.url == f"http://{values}.qdrant.svc.cluster.local:6333"


QDRANT_VALUES_SERVICE = "qdrant"  # fullnameOverride in deploy/qdrant/values.yaml: the Service's name


def test_settings_field_rejects_unknown_names() -> None:
    assert settings_field("RAGLINE_QDRANT__URL")
    assert settings_field("RAGLINE_SERVE__RETRIEVER__MAX_REPLICAS")
    assert not settings_field("RAGLINE_QDRANT__NO_SUCH")
    assert not settings_field("RAGLINE_QDRANT__URL__X")


# -- serving ----------------------------------------------------------------------------------------------


def test_serve_import_path_builds_the_app(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from ray.serve import Application

    config = serve_config()
    assert config["http_options"]["port"] == 8000
    (application,) = config["applications"]
    module_name, _, attr = application["import_path"].partition(":")
    builder = getattr(importlib.import_module(module_name), attr)
    monkeypatch.setenv("RAGLINE_QDRANT__URL", "http://qdrant.qdrant.svc.cluster.local:6333")
    (tmp_path / "empty.toml").write_text("")  # no ragline.toml of the working directory
    monkeypatch.setenv("RAGLINE_CONFIG", str(tmp_path / "empty.toml"))
    built = builder(application.get("args", {}))
    assert isinstance(built, Application)
    # Each deployment the config tunes exists in the code under that name.
    serve_module = importlib.import_module(module_name)
    known = {d.name for d in vars(serve_module).values() if type(d).__name__ == "Deployment"}
    tuned = {d["name"] for d in application["deployments"]}
    assert tuned <= known, f"unknown deployments: {tuned - known}"


def test_serve_args_are_settings_and_gpu_consistent() -> None:
    (application,) = serve_config()["applications"]
    s = Settings(**application["args"])
    retriever = next(d for d in application["deployments"] if d["name"] == "Retriever")
    # a tuned Retriever deployment exists only when retrieval does not run in the ingress
    assert s.serve.retriever.placement == "deployment"
    if retriever["ray_actor_options"].get("num_gpus", 0) > 0:
        assert s.embedding.device.startswith("cuda")
        assert s.embedding.backend == "sentence-transformers"


# -- ingestion --------------------------------------------------------------------------------------------


def test_rayjob_entrypoint_is_the_real_cli() -> None:
    argv = shlex.split(load(RAYJOB)["spec"]["entrypoint"])
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert argv[0] in scripts
    group: Any = typer.main.get_command(cli_app)
    command = group.commands[argv[1]]
    known = {opt for p in command.params for opt in (*p.opts, *p.secondary_opts)}
    flags = [a for a in argv[2:] if a.startswith("--")]
    assert {"--engine", "--ray-address", "--num-gpus"} <= set(flags)
    assert not [f for f in flags if f not in known], f"unknown flags: {set(flags) - known}"
    # Click parses the whole line (types, values) without running the command.
    ctx = command.make_context(argv[1], argv[2:])
    assert ctx.params["engine"] == "ray"
    assert ctx.params["ray_address"] == "auto"
    assert ctx.params["num_gpus"] > 0
    assert ctx.params["paths"]


def test_rayjob_data_dir_is_writable_on_every_pod() -> None:
    """The job runs as user ray: its RAGLINE_DATA_DIR must be a writable volume (or a folder ray owns)."""
    manifest = load(RAYJOB)
    dockerfile = (ROOT / "deploy" / "Dockerfile").read_text()
    data_dir = re.search(r"RAGLINE_DATA_DIR=(\S+)", dockerfile).group(1)  # type: ignore[union-attr]
    assert re.search(rf"chown ray:ray {re.escape(data_dir)}\b", dockerfile), "the image's data dir is ray's"
    for spec in pod_specs(manifest):
        env = {e["name"]: e.get("value") for c in spec["containers"] for e in c.get("env", [])}
        wanted = env.get("RAGLINE_DATA_DIR") or data_dir
        mounts = {m["mountPath"]: m for c in spec["containers"] for m in c.get("volumeMounts", [])}
        assert wanted in mounts and not mounts[wanted].get("readOnly"), wanted
        volume = next(v for v in spec["volumes"] if v["name"] == mounts[wanted]["name"])
        assert "emptyDir" in volume or not volume.get("persistentVolumeClaim", {}).get("readOnly")


def test_rayjob_mounts_the_documents_on_every_pod() -> None:
    manifest = load(RAYJOB)
    path = shlex.split(manifest["spec"]["entrypoint"])[2]
    for spec in pod_specs(manifest):
        mounts = [m["mountPath"] for c in spec["containers"] for m in c.get("volumeMounts", [])]
        assert any(path.startswith(m) for m in mounts), "workers read the files: every pod needs the volume"
        claims = [v["persistentVolumeClaim"]["claimName"] for v in spec["volumes"] if "persistentVolumeClaim" in v]
        assert claims


# -- Qdrant -----------------------------------------------------------------------------------------------


def test_qdrant_values_make_a_cluster() -> None:
    values = load(QDRANT_VALUES)
    assert values["replicaCount"] == 3
    assert values["config"]["cluster"]["enabled"] is True
    assert values["fullnameOverride"] == QDRANT_VALUES_SERVICE
    assert values["persistence"]["size"]
    assert values["resources"]["limits"]["memory"]


# -- the image --------------------------------------------------------------------------------------------


def test_dockerfile_uses_real_files_extras_and_entrypoint() -> None:
    text = DOCKERFILE.read_text(encoding="utf-8")
    copies = [line.split()[1:-1] for line in text.splitlines() if line.startswith("COPY ") and "--from" not in line]
    sources = [s for c in copies for s in c]
    assert "pyproject.toml" in sources and "src" in sources
    for source in sources:
        assert (ROOT / source).exists(), f"the Dockerfile copies {source}, which is not in the repository"
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extras = re.search(r"^ARG EXTRAS=(\S+)$", text, re.MULTILINE)
    assert extras
    assert set(extras.group(1).split(",")) <= set(pyproject["project"]["optional-dependencies"])
    assert 'ENTRYPOINT ["ragline"]' in text and "ragline" in pyproject["project"]["scripts"]
    assert "-c constraints.txt torch" in text  # torch pinned, never a floating CUDA build
    # the int8 embedding model is built into the image, in the cache folder the image points ragline at
    cache = re.search(r"RAGLINE_EMBEDDING__CACHE_DIR=(\S+)", text)
    assert cache and "warm_up()" in text.split(cache.group(0), 1)[1]
