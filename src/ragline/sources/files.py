"""Local files and folders -> Documents, with public URLs built from a template.

A folder is listed in sorted relative-path order, skipping hidden entries; files no parser handles are skipped
silently, unless they were named explicitly, in which case loading them reports why. Only regular files inside the
folder are read: a link (to a file or a folder) is followed only when it stays inside the folder, unless
``follow_outside_links`` is set; one that leads out is listed, and loading it reports why it was skipped.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote

from ragline.config import ParseSettings
from ragline.errors import SourceError
from ragline.parse import kind_for, parse_bytes
from ragline.records import Document

# Dependencies, caches, Sphinx build output and Sphinx's Jinja templates: never pages to index.
SKIPPED_DIRS = frozenset({"node_modules", "__pycache__", "site-packages", "_build", "_templates"})
_PLACEHOLDER_RE = re.compile(r"\{(path|path_noext|name|stem)\}")


@dataclass(frozen=True, slots=True)
class LocalFile:
    """A file to ingest; ``relpath`` (POSIX) is relative to ``root``, the folder it was found under."""

    path: Path
    root: Path
    relpath: str
    explicit: bool = False  # named on its own: read where it leads, as asked


def _skipped(name: str) -> bool:
    return name.startswith(".") or name in SKIPPED_DIRS


def outside_reason(path: Path, root: Path) -> str | None:
    """Why ``path`` (found under ``root``) must not be read: it leads outside ``root`` or to a hidden file."""
    try:
        relative = path.resolve().relative_to(root.resolve())
    except ValueError:
        return "outside the folder: a link leading out of it"
    except (OSError, RuntimeError):  # a link loop
        return "unreadable: a link that cannot be resolved"
    if any(part.startswith(".") for part in relative.parts):
        return "outside the folder: a link to a hidden file"
    return None


def _walk(root: Path, follow_outside: bool) -> Iterator[Path]:
    """Files a parser reads under ``root``, and the folder links that lead out of it (to be reported).

    A folder link that stays inside is not walked: its files are listed under their real path. With
    ``follow_outside`` every folder link is walked, each real folder once (a link back up ends there)."""
    visited = {root.resolve()}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=follow_outside):
        kept = []
        for name in sorted(d for d in dirnames if not _skipped(d)):
            sub = Path(dirpath) / name
            if sub.is_symlink() and not follow_outside:
                if outside_reason(sub, root) is not None:
                    yield sub
                continue
            real = sub.resolve()
            if real not in visited:  # a link back up, or a second way to the same folder
                visited.add(real)
                kept.append(name)
        dirnames[:] = kept
        for name in sorted(filenames):
            if not name.startswith(".") and kind_for(name) is not None:
                yield Path(dirpath) / name


def iter_files(paths: Sequence[Path], *, follow_outside: bool = False) -> Iterator[LocalFile]:
    """Files to ingest under ``paths`` (files or folders), each once, in a stable order.

    A file named explicitly is always yielded, even with an unknown extension or when missing,
    so that ``load_document`` reports it instead of it vanishing without a word. So is a link that
    leads out of its folder (unless ``follow_outside``): ``load_document`` refuses it with the reason.
    """
    seen: set[Path] = set()
    for arg in paths:
        given = Path(arg).absolute()
        explicit = not given.is_dir()
        if not explicit:
            root = given
            found = sorted(_walk(given, follow_outside), key=lambda p: p.relative_to(root).as_posix())
        else:
            root, found = given.parent, [given]
        for path in found:
            try:
                key = path.resolve()
            except (OSError, RuntimeError):
                key = path
            if key in seen:
                continue
            seen.add(key)
            yield LocalFile(path=path, root=root, relpath=path.relative_to(root).as_posix(), explicit=explicit)


def source_url(relpath: str, url_template: str) -> str:
    """Fill ``{path}``, ``{path_noext}``, ``{name}`` and ``{stem}`` in a URL template.

    e.g. ``https://docs.ray.io/en/master/{path_noext}.html`` with ``serve/index.md`` ->
    ``https://docs.ray.io/en/master/serve/index.html``. Values are percent-encoded for http(s).
    """
    rel = PurePosixPath(relpath.replace("\\", "/"))
    values = {
        "path": rel.as_posix(),
        "path_noext": rel.with_suffix("").as_posix() if rel.suffix else rel.as_posix(),
        "name": rel.name,
        "stem": rel.stem,
    }
    is_url = url_template.lower().startswith(("http://", "https://"))

    def fill(match: re.Match[str]) -> str:
        value = values[match.group(1)]
        return quote(value, safe="/-._~") if is_url else value

    return _PLACEHOLDER_RE.sub(fill, url_template)


def _read(path: Path, limit: int) -> bytes:
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise SourceError(f"unreadable: {exc.strerror or exc}") from None
    if not path.is_file():
        raise SourceError("unreadable: not a regular file")
    if size == 0:
        raise SourceError("empty file")
    if size > limit:
        raise SourceError(f"too big: {size} bytes > max_file_bytes {limit}")
    try:
        with path.open("rb") as handle:
            data = handle.read(limit + 1)  # the file may have grown since stat()
    except OSError as exc:
        raise SourceError(f"unreadable: {exc.strerror or exc}") from None
    if len(data) > limit:
        raise SourceError(f"too big: over max_file_bytes {limit}")
    if not data:
        raise SourceError("empty file")
    return data


def load_document(file: LocalFile, settings: ParseSettings) -> Document:
    """Read and parse one local file; every problem is a SourceError with a short reason."""
    if not file.explicit and not settings.follow_outside_links:
        # Checked again here, at read time: the folder may have changed since it was listed.
        reason = outside_reason(file.path, file.root)
        if reason is not None:
            raise SourceError(reason)
    kind = kind_for(file.path)
    if kind is None:
        raise SourceError(f"unsupported file type {file.path.suffix or '(no extension)'!r}")
    data = _read(file.path, settings.max_file_bytes)
    source = (
        source_url(file.relpath, settings.url_template) if settings.url_template else file.path.absolute().as_posix()
    )
    try:
        doc = parse_bytes(data, source=source, kind=kind, settings=settings, path=str(file.path), root=str(file.root))
    except SourceError:
        raise
    except Exception as exc:  # parse_bytes already wraps parser failures; this is the last guard
        raise SourceError(f"parser failed: {type(exc).__name__}: {exc}") from exc
    if not doc.sections:
        raise SourceError("empty: no text after parsing")
    doc.path = str(file.path)
    doc.metadata["path"] = file.relpath
    return doc
