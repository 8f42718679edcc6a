"""The Ray engine on a real two-node Ray cluster (both nodes on 127.0.0.1) gives the in-process engine's index.

The head node has 1 CPU and the second node 2; the embedding actor asks for 2 CPUs, so it can only run on the
second node while parse tasks run on the head: chunks really cross nodes on their way to the driver.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from ragline.components import Components
from ragline.ingest import local, ray_engine
from ragline.ingest.report import IndexReport

from .conftest import components, points

pytestmark = pytest.mark.slow

ray = pytest.importorskip("ray")
from ray.cluster_utils import Cluster  # noqa: E402

LOOPBACK = "127.0.0.1"


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    from ray._common.utils import reset_ray_address
    from ray._private.utils import read_ray_address, write_ray_address

    previous = read_ray_address()
    c = Cluster(
        initialize_head=True,
        head_node_args={"num_cpus": 1, "node_ip_address": LOOPBACK, "include_dashboard": False},
    )
    # Cluster records itself as "the" local Ray; put back what was there so no other process joins ours.
    if previous:
        write_ray_address(previous)
    else:
        reset_ray_address()
    try:
        c.add_node(num_cpus=2, node_ip_address=LOOPBACK)
        c.wait_for_nodes()
        ray.init(address=c.address, _node_ip_address=LOOPBACK, log_to_driver=False)
        yield c
    finally:
        ray.shutdown()
        c.shutdown()
        if previous:
            write_ray_address(previous)


def _ray_components(data_dir: Path) -> Components:
    return components(data_dir, engine="ray", embed_actors=1, embed_cpus=2, parse_cpus=1, embed_batch=64)


def _summary(r: IndexReport) -> dict[str, Any]:
    return {k: v for k, v in r.to_json().items() if k not in ("seconds", "chunks_written")}


@pytest.fixture(scope="module")
def engines(cluster: Cluster, site: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Both engines' first ingest of the same folder, each into its own index."""
    base = tmp_path_factory.mktemp("engines")
    loc, ray_comp = components(base / "local"), _ray_components(base / "ray")
    out = {
        "local": loc,
        "ray": ray_comp,
        "local_report": local.ingest([site], loc),
        "ray_report": ray_engine.ingest([site], ray_comp),
    }
    yield out
    loc.close()
    ray_comp.close()


def test_cluster_has_two_live_nodes_on_loopback(cluster: Cluster) -> None:
    nodes = [n for n in ray.nodes() if n["Alive"]]
    assert len(nodes) == 2
    assert {n["NodeManagerAddress"] for n in nodes} == {LOOPBACK}


def test_same_point_ids_and_payloads_as_the_local_engine(engines: dict[str, Any]) -> None:
    local_points, ray_points = points(engines["local"]), points(engines["ray"])
    assert len(local_points) > 50
    assert ray_points.keys() == local_points.keys()
    assert ray_points == local_points


def test_same_report_as_the_local_engine(engines: dict[str, Any]) -> None:
    lr, rr = engines["local_report"], engines["ray_report"]
    assert _summary(rr) == _summary(lr)
    reasons = {Path(s.source).name: s.reason for s in rr.skipped}
    assert "not a text encoding" in reasons["broken.html"]  # the crashing page is reported, the rest indexed
    assert "empty" in reasons["empty.md"]
    assert reasons["binding.html"].startswith("same URL as another document")  # the later copy loses
    assert rr.added == rr.documents > 5


def test_vectors_agree_with_the_local_engine(engines: dict[str, Any]) -> None:
    """Different batches, same model: a question finds the same chunks in both indexes."""
    q = "How do I add fallbacks when the LLM API returns errors?"
    local_hits = engines["local"].retriever.search(q, k=5)
    ray_hits = engines["ray"].retriever.search(q, k=5)
    assert [h.chunk.id for h in ray_hits] == [h.chunk.id for h in local_hits]
    assert [h.score for h in ray_hits] == pytest.approx([h.score for h in local_hits], abs=1e-3)


def test_second_ray_run_writes_nothing(engines: dict[str, Any], site: Path) -> None:
    before = points(engines["ray"])
    r = ray_engine.ingest([site], engines["ray"])
    assert (r.added, r.updated, r.deleted) == (0, 0, 0)
    assert r.unchanged == engines["ray_report"].documents
    assert points(engines["ray"]) == before
    # Only a URL two files claim can cost work, and only when the later copy is parsed before the first
    # (parallel parse tasks): its chunks are written, then the first file's version is rewritten.
    contested = sum(p["source"].endswith("/binding") for p in before.values())
    assert contested and r.chunks_written in (0, *range(contested, 2 * contested + 2))


def test_changes_and_deletions_match_the_local_engine(engines: dict[str, Any], site: Path) -> None:
    page = site / "how_to" / "fallbacks" / "index.html"
    page.write_text(page.read_text(encoding="utf-8").replace("</article>", "<p>Quokkas fall back.</p></article>", 1))
    shutil.rmtree(site / "how_to" / "routing")
    rr = ray_engine.ingest([site], engines["ray"])
    lr = local.ingest([site], engines["local"])
    assert (rr.updated, rr.deleted, rr.added) == (1, 1, 0)
    assert _summary(rr) == _summary(lr)
    assert points(engines["ray"]) == points(engines["local"])
