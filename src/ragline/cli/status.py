"""``ragline status``: what the index holds and where."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ragline.cli.app import DataDir, JsonOut, app, components, emit_json, out
from ragline.config import LLMSettings
from ragline.errors import RaglineError


def _served(comp: Any) -> Path:
    from ragline.store.generations import Generations

    return Generations(comp.settings.data_dir).published_path()


def _generation(store: Any) -> dict[str, Any] | None:
    """The generation this command reads, and the readers that record what they serve (Ray Serve replicas)."""
    from ragline.store.following import served_generation
    from ragline.store.readers import live_readers, summarise

    report = served_generation(store)
    if report is not None:
        readers = live_readers(store.generations.root)
        if readers:
            report["readers"] = summarise(readers, report["published"])["replicas"]
    return report


def _disk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def _llm(llm: LLMSettings) -> str:
    """The generator's name, as answers carry it (building one is cheap: no model loads)."""
    from ragline.generate import make_generator

    try:
        return make_generator(llm).name
    except RaglineError as e:
        return f"unusable: {e}"


def _site(source: str) -> str:
    parts = urlsplit(source)
    if parts.scheme in ("http", "https"):
        return f"{parts.scheme}://{parts.netloc}/"
    return str(Path(source).parent) + "/"


@app.command()
def status(data_dir: DataDir = None, as_json: JsonOut = False) -> None:
    """Index size, embedding model, sources, last ingest and disk use."""
    comp = components(data_dir)
    s = comp.settings
    try:
        info = comp.store.info()
        docs = list(comp.store.documents()) if info else []
        chunks = comp.store.count() if info else 0
        generation = _generation(comp.store)
    finally:
        comp.close()
    report: dict[str, Any] = {
        "index": s.qdrant.url or s.qdrant.path or str(_served(comp).resolve()),
        "generation": generation,
        "backend": "qdrant-server" if s.qdrant.url else ("qdrant-local" if s.qdrant.path else "qdrant-edge"),
        "model": info.model if info else None,
        "dimension": info.dimension if info else None,
        "documents": len({d.doc_id for d in docs}),
        "chunks": chunks,
        "sites": dict(Counter(_site(d.source) for d in docs).most_common(20)),
        "last_ingest": s.layout.read_last_ingest(),
        "disk_bytes": _disk_bytes(s.data_dir),
        "llm": _llm(s.llm),
    }
    if as_json:
        emit_json(report)
        return
    if info is None:
        out.print(f"no index at {report['index']}: run `ragline ingest PATH` first")
        return
    out.print(f"index       {report['index']} ({report['backend']})")
    if report["generation"]:
        out.print(f"generation  {report['generation']['served']} (published {report['generation']['published']})")
        for r in report["generation"].get("readers", []):
            refused = f", refused {r['refused']['generation']}: {r['refused']['error']}" if "refused" in r else ""
            out.print(f"  replica   {r['replica']} serves {r['served']} since {r.get('loaded', '?')}{refused}")
    out.print(f"model       {report['model']} ({report['dimension']} dims)")
    out.print(f"contents    {report['documents']} documents, {report['chunks']} chunks")
    out.print(f"llm         {report['llm']}")
    out.print(f"disk        {report['disk_bytes'] / 1e6:.1f} MB")
    if report["last_ingest"]:
        li = report["last_ingest"]
        out.print(
            f"last ingest {li.get('finished', '?')}: {li.get('added', 0)} added, {li.get('updated', 0)} updated, "
            f"{li.get('deleted', 0)} deleted, {len(li.get('skipped', []))} skipped"
        )
    for site, n in report["sites"].items():
        out.print(f"  {n:6d}  {site}")
