"""Crawled pages on disk: one file per page, named from its URL, and a ``manifest.jsonl`` describing them.

Each manifest line holds a page's canonical ``url``, the ``final_url`` that served it, the ``origin`` (the canonical
start URL of the crawl that owns it), HTTP ``status`` and validators (``headers``: content-type, etag,
last-modified, x-robots-tag), ``fetched_at`` (when the body was downloaded), ``checked_at`` (when it was last
confirmed), ``file`` (relative to the folder), ``sha256`` and ``kind`` (the parser that reads it: ``html``,
``markdown``...). Several crawls (origins) can share one folder; each rewrites only its lines.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from ragline.config import ParseSettings
from ragline.errors import SourceError
from ragline.parse import parse_bytes
from ragline.records import Loaded
from ragline.sources.urls import fallback_file, page_file

log = logging.getLogger(__name__)

MANIFEST = "manifest.jsonl"
KEPT_HEADERS = ("content-type", "etag", "last-modified", "content-language", "x-robots-tag")
Change = Literal["new", "changed", "unchanged"]


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


@dataclass(slots=True)
class PageEntry:
    url: str  # canonical URL: the page's identity
    final_url: str  # the URL that served the body (after redirects)
    origin: str
    status: int
    headers: dict[str, str]
    fetched_at: str
    checked_at: str
    file: str
    sha256: str
    bytes: int
    last_status: int | None = None  # what the last check answered (304, or the error kept this copy stale)
    stale: str | None = None  # why this copy could not be confirmed by the last crawl
    kind: str = "html"  # the parse kind, chosen from the response's Content-Type or URL
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> PageEntry:
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in obj.items() if k in known})


def read_manifest(out_dir: Path) -> list[PageEntry]:
    """Entries of a crawl folder's manifest (none when there is no manifest); unreadable lines are skipped."""
    path = out_dir / MANIFEST
    if not path.is_file():
        return []
    entries: list[PageEntry] = []
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            entries.append(PageEntry.from_json(json.loads(line)))
        except (ValueError, TypeError) as exc:
            log.warning("%s line %d unreadable: %s", path, n, exc)
    return entries


def _write_atomic(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class PageStore:
    """One crawl's view of a crawl folder: the previous copies of its pages and the ones this crawl keeps."""

    def __init__(self, out_dir: Path, origin: str) -> None:
        self.dir = out_dir
        self.origin = origin
        entries = read_manifest(out_dir)
        self.previous = {e.url: e for e in entries if e.origin == origin}
        self._others = [e for e in entries if e.origin != origin]
        self.current: dict[str, PageEntry] = {}
        self._owner = {e.file: e.url for e in entries}  # file -> URL, so two URLs never share a file

    def conditional_headers(self, url: str) -> dict[str, str]:
        prev = self.previous.get(url)
        if prev is None or not (self.dir / prev.file).is_file():
            return {}
        out: dict[str, str] = {}
        if etag := prev.headers.get("etag"):
            out["If-None-Match"] = etag
        if modified := prev.headers.get("last-modified"):
            out["If-Modified-Since"] = modified
        return out

    def save(
        self, url: str, final_url: str, status: int, headers: Mapping[str, str], body: bytes, kind: str = "html"
    ) -> Change:
        """Store a downloaded page; says whether it is new, changed or the same as the previous copy."""
        prev = self.previous.get(url)
        digest = hashlib.sha256(body).hexdigest()
        name = self._name(url)
        same = prev is not None and prev.sha256 == digest and prev.file == name and (self.dir / name).is_file()
        if not same:
            try:
                _write_atomic(self.dir / name, body)
            except (NotADirectoryError, IsADirectoryError, FileExistsError):  # a folder and a file want one name
                name = fallback_file(url)
                self._owner[name] = url
                _write_atomic(self.dir / name, body)
        stamp = now_iso()
        self.current[url] = PageEntry(
            url=url,
            final_url=final_url,
            origin=self.origin,
            status=status,
            headers={k: headers[k] for k in KEPT_HEADERS if k in headers},
            fetched_at=stamp,
            checked_at=stamp,
            file=name,
            sha256=digest,
            bytes=len(body),
            last_status=status,
            kind=kind,
        )
        return "new" if prev is None else "unchanged" if prev.sha256 == digest else "changed"

    def keep(self, url: str, *, last_status: int | None = None, stale: str | None = None) -> PageEntry | None:
        """Keep the previous copy: confirmed unchanged (304), or kept stale because the page failed this time."""
        prev = self.previous.get(url)
        if prev is None or not (self.dir / prev.file).is_file():
            return None
        checked = prev.checked_at if stale else now_iso()
        entry = replace(prev, checked_at=checked, last_status=last_status, stale=stale)
        self.current[url] = entry
        return entry

    def read(self, entry: PageEntry) -> bytes:
        return (self.dir / entry.file).read_bytes()

    def commit(self, *, drop_unseen: bool) -> int:
        """Write the manifest; pages of this origin not seen by this crawl are dropped (and their files removed)
        when ``drop_unseen``, else kept as they were (an interrupted crawl loses nothing). Returns how many went."""
        kept = dict(self.current)
        if not drop_unseen:
            for url, prev in self.previous.items():
                kept.setdefault(url, prev)
        lines = [json.dumps(asdict(e), ensure_ascii=False, sort_keys=True) for e in [*self._others, *kept.values()]]
        _write_atomic(self.dir / MANIFEST, ("\n".join(lines) + "\n" if lines else "").encode("utf-8"))
        used = {e.file for e in self._others} | {e.file for e in kept.values()}
        dropped = [p for u, p in self.previous.items() if u not in kept]
        for prev in dropped:
            if prev.file not in used:
                (self.dir / prev.file).unlink(missing_ok=True)
        return len(dropped)

    def _name(self, url: str) -> str:
        prev = self.previous.get(url)
        if prev is not None:
            return prev.file
        name = page_file(url)
        if self._owner.setdefault(name, url) != url:
            name = fallback_file(url)
            self._owner[name] = url
        return name


def load_crawled(out_dir: Path, settings: ParseSettings, origin: str | None = None) -> Iterator[Loaded]:
    """The pages of a crawl folder as loaded documents (of one ``origin`` when given), for the ingest engine.

    A page's source is its ``<link rel=canonical>`` when it declares one, else the URL that served it.
    """

    for entry in read_manifest(out_dir):
        if origin is not None and entry.origin != origin:
            continue
        path = out_dir / entry.file
        try:
            data = path.read_bytes()
        except OSError as exc:
            yield Loaded(entry.final_url, error=f"stored page unreadable: {exc.strerror or exc}")
            continue
        try:
            # No path: the fallback title should come from the URL, not from "index.html".
            doc = parse_bytes(data, source=entry.final_url, kind=entry.kind, settings=settings)
        except SourceError as exc:
            yield Loaded(entry.final_url, error=str(exc))
            continue
        if not doc.sections:
            yield Loaded(entry.final_url, error="empty: no text after parsing")
            continue
        if doc.source != entry.final_url and not _canonical_in_scope(doc.source, entry.origin or entry.final_url):
            # A canonical link outside the crawl's scope (another host or prefix, maybe another tenant's
            # pages) would let this page stand in for one it is not: it keeps the URL that served it.
            log.info("%s: canonical link %s is outside the crawl's scope; ignored", entry.final_url, doc.source)
            doc.source = entry.final_url
        doc.path = str(path)
        yield Loaded(entry.final_url, document=doc)


def _canonical_in_scope(canonical: str, origin: str) -> bool:
    from ragline.sources.urls import Scope, normalize_url

    try:
        return Scope.from_start(origin).contains(normalize_url(canonical))
    except ValueError:
        return False


def remove_pages(out_dir: Path, prefix: str) -> int:
    """Forget every stored page whose URL (canonical or served) starts with ``prefix``: its manifest line and
    its file. Returns how many pages went. Not for use while a crawl writes to the same folder."""
    if not prefix:
        raise ValueError("an empty prefix would forget every page")
    entries = read_manifest(out_dir)
    gone = [e for e in entries if e.url.startswith(prefix) or e.final_url.startswith(prefix)]
    if not gone:
        return 0
    kept = [e for e in entries if not (e.url.startswith(prefix) or e.final_url.startswith(prefix))]
    lines = [json.dumps(asdict(e), ensure_ascii=False, sort_keys=True) for e in kept]
    _write_atomic(out_dir / MANIFEST, ("\n".join(lines) + "\n" if lines else "").encode("utf-8"))
    used = {e.file for e in kept}
    root = out_dir.resolve()
    for entry in gone:
        path = (out_dir / entry.file).resolve()
        if entry.file in used or not path.is_relative_to(root):  # shared, or a manifest pointing outside
            continue
        path.unlink(missing_ok=True)
    log.info("forgot %d stored pages under %s", len(gone), prefix)
    return len(gone)
