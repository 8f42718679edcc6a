"""Jupyter notebooks -> one Markdown string -> the Markdown parser.

Markdown cells stay Markdown (their headings start sections), code cells become fenced code and
text outputs fenced text cut to a budget; images, HTML and widget outputs are dropped. Both
nbformat 4 and the older 3 (worksheets, ``input``, ``pyout``) are read; missing fields are skipped.
"""

from __future__ import annotations

import json
import re
from typing import Any, Unpack

from ragline.errors import SourceError
from ragline.parse.anchors import AnchorStyle
from ragline.parse.drafts import Origin
from ragline.parse.markdown import parse_markdown, strip_mdx
from ragline.parse.rst import rst_to_text
from ragline.records import Document

KIND = "notebook"
TRUNCATION_MARK = "… [output truncated]"

_ANSI_RE = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_FRONT_MATTER_RE = re.compile(r"\A\s*---[ \t]*\n.*?\n---[ \t]*(?:\n|\Z)", re.DOTALL)
# A rich representation means text/plain is only a placeholder ("<Figure ...>", "HBox(...)").
_RICH_MIME_PREFIXES = ("image/", "text/html", "application/vnd.jupyter.widget", "application/javascript")
_V3_RICH_KEYS = ("png", "jpeg", "svg", "html", "javascript")


def _text(value: Any) -> str:
    """nbformat stores multi-line strings either as one string or as a list of lines."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(v for v in value if isinstance(v, str))
    return ""


def _fence(content: str, info: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", content)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{info}\n{content.rstrip()}\n{ticks}"


def _cut(text: str, limit: int) -> str:
    text = _ANSI_RE.sub("", text).strip("\n")
    return text if len(text) <= limit else text[:limit].rstrip() + "\n" + TRUNCATION_MARK


def _output_text(output: dict[str, Any]) -> str:
    kind = output.get("output_type")
    if kind == "stream":
        return _text(output.get("text"))
    if kind == "error" or kind == "pyerr":
        return f"{output.get('ename', 'Error')}: {output.get('evalue', '')}"
    if kind in ("execute_result", "display_data", "pyout"):
        data = output.get("data")
        if isinstance(data, dict):
            if any(str(m).startswith(_RICH_MIME_PREFIXES) for m in data):
                return ""
            return _text(data.get("text/plain"))
        if any(k in output for k in _V3_RICH_KEYS):  # nbformat 3 keeps mimetypes at the top level
            return ""
        return _text(output.get("text"))
    return ""


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _cells(notebook: dict[str, Any]) -> list[dict[str, Any]]:
    cells = _list(notebook.get("cells"))
    if "cells" not in notebook:  # nbformat 3
        cells = [c for ws in _list(notebook.get("worksheets")) for c in _list(_dict(ws).get("cells"))]
    return [c for c in cells if isinstance(c, dict)]


def _language(notebook: dict[str, Any]) -> str:
    meta = _dict(notebook.get("metadata"))
    for value in (
        _dict(meta.get("kernelspec")).get("language"),
        _dict(meta.get("language_info")).get("name"),
        meta.get("language"),
    ):
        if isinstance(value, str) and value.strip():
            return value.strip()
    return "python"


def _raw_cell(source: str, cell: dict[str, Any]) -> str:
    meta = _dict(cell.get("metadata"))
    fmt = str(meta.get("format") or meta.get("raw_mimetype") or "").lower()
    if "rst" in fmt or "restructuredtext" in fmt:
        return rst_to_text(source)
    if fmt and "markdown" not in fmt and "mdx" not in fmt:
        return ""  # LaTeX, HTML... for other exporters
    # Docusaurus renders raw cells verbatim as MDX.
    return strip_mdx(source)


def notebook_to_markdown(notebook: dict[str, Any], *, output_chars: int) -> str:
    """Render a notebook as Markdown: prose as is, code and text outputs fenced."""
    language = _language(notebook)
    front: str | None = None
    parts: list[str] = []
    for cell in _cells(notebook):
        kind = cell.get("cell_type")
        source = _text(cell.get("source", cell.get("input")))
        if kind == "markdown":
            parts.append(source)
        elif kind == "heading":  # nbformat 3
            level = cell.get("level")
            depth = min(max(level, 1), 6) if isinstance(level, int) else 1
            parts.append("#" * depth + " " + source.strip())
        elif kind == "raw":
            match = _FRONT_MATTER_RE.match(source)
            if match and front is None:
                front = match.group(0).strip()
                source = source[match.end() :]
            parts.append(_raw_cell(source, cell))
        elif kind == "code":
            if source.strip():
                parts.append(_fence(source, language))
            if output_chars > 0:
                for output in _list(cell.get("outputs")):
                    text = _output_text(output) if isinstance(output, dict) else ""
                    if text.strip():
                        parts.append(_fence(_cut(text, output_chars), "text"))
    body = "\n\n".join(p.strip("\n") for p in parts if p and p.strip())
    return f"{front}\n\n{body}" if front else body


def parse_notebook(
    text: str, *, output_chars: int = 500, style: AnchorStyle | None = None, **origin: Unpack[Origin]
) -> Document:
    """Parse an .ipynb document; raises SourceError when it is not a JSON notebook."""
    try:
        notebook = json.loads(text)
    except (ValueError, RecursionError) as exc:
        raise SourceError(f"invalid notebook JSON: {exc}") from None
    if not isinstance(notebook, dict):
        raise SourceError("invalid notebook: top level is not a JSON object")
    markdown = notebook_to_markdown(notebook, output_chars=output_chars)
    return parse_markdown(markdown, style=style, kind=KIND, **origin)
