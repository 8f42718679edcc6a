"""Files that a page pulls in (``literalinclude``, ``include``), read the way Sphinx reads them.

A rendered docs page shows the code of its ``literalinclude`` directives and the text of its ``include``
fragments; the page source holds only their paths. Sphinx resolves a path against the page's folder, or,
when it starts with ``/``, against the source folder. ``IncludeResolver`` does the same, and also looks in
``extra_roots``: folders that mirror the source tree (code kept apart from the pages). A page can read only
files under those folders, never above them and never hidden ones (``.env``, ``.git/``), and each read is bounded
in size and count. Whatever cannot be
read (missing, outside, binary, too big, not UTF-8) resolves to None: the directive shows nothing, as before.
The document's expanded size (its own bytes plus every file it includes, each time it includes it) is bounded
too: past ``max_expanded`` the whole document is refused (a SourceError), since what it shows is no longer
what its author wrote.
"""

from __future__ import annotations

import ast
import logging
import re
import textwrap
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ragline.errors import SourceError

log = logging.getLogger(__name__)

MAX_INCLUDE_BYTES = 1_000_000
MAX_INCLUDES_PER_DOCUMENT = 200  # also ends include cycles (a includes b includes a)
_LINE_SPEC_RE = re.compile(r"^\s*(\d*)\s*(?:(-)\s*(\d*))?\s*$")


@dataclass(slots=True)
class IncludeResolver:
    """Reads the files one document includes; ``root`` is the source folder (``/`` in an include path).

    Paths are expected resolved (``for_document`` does it)."""

    document: Path
    root: Path
    extra_roots: tuple[Path, ...] = ()
    max_bytes: int = MAX_INCLUDE_BYTES
    max_reads: int = MAX_INCLUDES_PER_DOCUMENT
    max_expanded: int = 0  # bytes of the document and all it includes; 0: no bound
    expanded: int = 0  # the document's own bytes, then each included file's added
    reads: int = field(default=0, init=False)

    @classmethod
    def for_document(
        cls,
        path: str | Path | None,
        root: str | Path | None,
        extra_roots: tuple[Path, ...] | list[Path] = (),
        *,
        size: int = 0,
        max_expanded: int = 0,
    ) -> IncludeResolver | None:
        """A resolver for a file of ``size`` bytes found under ``root``; None when the document is not a local file."""
        if not path:
            return None
        # Resolved once here (symlinks followed), so that every lookup compares resolved paths without I/O.
        document = Path(path).resolve()
        base = Path(root).resolve() if root else document.parent
        extra = tuple(Path(p).resolve() for p in extra_roots)
        return cls(document=document, root=base, extra_roots=extra, max_expanded=max_expanded, expanded=size)

    def locate(self, target: str) -> Path | None:
        """The file an include path names, within the source folder or a mirror of it; None if none."""
        target = target.strip()
        if not target or "\x00" in target:
            return None
        roots = (self.root, *self.extra_roots)
        if target.startswith("/"):
            relative = Path(target.lstrip("/"))
        else:
            try:
                relative = self.document.parent.relative_to(self.root) / target
            except ValueError:  # a document outside its root: only its own folder counts
                return _inside(self.document.parent / target, (self.document.parent,))
        for base in roots:
            found = _inside(base / relative, roots)
            if found is not None:
                return found
        return None

    def read(self, target: str) -> tuple[Path, str] | None:
        """The located file and its text, or None (not found, binary, too big, not UTF-8, too many reads).

        Raises SourceError when the file would take the document past ``max_expanded``."""
        if self.reads >= self.max_reads:
            return None
        path = self.locate(target)
        if path is None or path == self.document:
            return None
        self.reads += 1
        try:
            size = path.stat().st_size
            if size > self.max_bytes:
                log.info("include %s skipped: over %d bytes", path, self.max_bytes)
                return None
            self._expand(size)
            with path.open("rb") as handle:
                data = handle.read(self.max_bytes)  # the file may have grown since stat()
        except OSError:
            return None
        if b"\x00" in data[:8192]:
            return None
        try:
            return path, data.decode("utf-8-sig")
        except UnicodeDecodeError:
            return None

    def _expand(self, size: int) -> None:
        self.expanded += size
        if self.max_expanded and self.expanded > self.max_expanded:
            raise SourceError(f"too big: over max_file_bytes {self.max_expanded} with the files it includes")

    def literal(self, target: str, options: Mapping[str, str]) -> str | None:
        """The code a ``literalinclude`` shows, its Sphinx options applied; None when nothing is shown."""
        found = self.read(target)
        if found is None:
            return None
        text = select_lines(found[1], options)
        return text if text and text.strip() else None


def _inside(candidate: Path, roots: tuple[Path, ...]) -> Path | None:
    try:
        resolved = candidate.resolve()
    except (OSError, RuntimeError):
        return None
    if not resolved.is_file():
        return None
    for base in roots:
        try:
            relative = resolved.relative_to(base)
        except ValueError:
            continue
        # Hidden files and folders (.env, .git/, .ssh/) are skipped here as the folder walk skips them.
        if any(part.startswith(".") for part in relative.parts):
            log.info("include %s skipped: a hidden file", resolved)
            return None
        return resolved
    return None


def select_lines(text: str, options: Mapping[str, str]) -> str | None:
    """Apply ``literalinclude`` / ``include`` options: pyobject, lines, start/end markers, dedent, prepend/append."""
    lines = text.splitlines()
    if options.get("pyobject"):
        span = python_object_lines(text, options["pyobject"].strip())
        if span is None:
            return None
        lines = lines[span[0] : span[1]]
    if options.get("start-line") or options.get("end-line"):
        lines = lines[_int(options.get("start-line")) : _int(options.get("end-line")) or None]
    if options.get("lines"):
        lines = [lines[i] for i in line_numbers(options["lines"], len(lines))]
    for key, inclusive in (("start-after", False), ("start-at", True)):
        marker = options.get(key)
        if marker:
            at = next((i for i, line in enumerate(lines) if marker in line), None)
            if at is None:
                return None
            lines = lines[at if inclusive else at + 1 :]
    for key, inclusive in (("end-before", False), ("end-at", True)):
        marker = options.get(key)
        if marker:
            at = next((i for i, line in enumerate(lines) if marker in line), None)
            if at is not None:
                lines = lines[: at + 1 if inclusive else at]
    body = "\n".join(lines)
    if "dedent" in options:
        amount = _int(options["dedent"])
        body = (
            "\n".join(line[amount:] if line[:amount].isspace() else line.lstrip() for line in lines)
            if amount
            else textwrap.dedent(body)
        )
    parts = [options.get("prepend") or "", body, options.get("append") or ""]
    return "\n".join(p for p in parts if p)


def line_numbers(spec: str, count: int) -> list[int]:
    """Zero-based line indexes for a Sphinx ``:lines:`` spec (``1,3,5-10,20-``), within ``count`` lines."""
    out: list[int] = []
    for part in spec.split(","):
        match = _LINE_SPEC_RE.match(part)
        if not match or not (match.group(1) or match.group(3)):
            continue
        first = int(match.group(1)) if match.group(1) else 1
        last = first if not match.group(2) else int(match.group(3)) if match.group(3) else count
        out.extend(i for i in range(max(first, 1) - 1, min(last, count)))
    return out


def python_object_lines(source: str, name: str) -> tuple[int, int] | None:
    """The [start, end) line indexes of a class or function (``Outer.method`` too), decorators included."""
    try:
        tree: ast.AST = ast.parse(source)
    except (SyntaxError, ValueError):
        return None
    node: ast.AST | None = tree
    for part in name.split("."):
        body = getattr(node, "body", [])
        node = next(
            (
                child
                for child in body
                if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and child.name == part
            ),
            None,
        )
        if node is None:
            return None
    assert isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
    start = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    return start - 1, node.end_lineno or node.lineno


def _int(value: str | None) -> int:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return 0
