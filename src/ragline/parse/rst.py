"""reStructuredText -> sections, through docutils, with Sphinx's directives and roles made harmless.

Plain docutils does not know Sphinx's directives (``code-block``, ``toctree``, ``tab-set``...) or
roles (``:ref:``, ``:py:class:``...); left alone they come out as error text full of markup. Before
parsing, every unknown directive or role name in the text is registered with a generic handler
that keeps what a reader sees on the rendered page and drops the rest. If docutils fails anyway,
a plain-text reading with underline-detected headings takes over: arbitrary input never raises.
"""

from __future__ import annotations

import copy
import re
from typing import Any, Unpack

from docutils import nodes
from docutils.frontend import get_default_settings
from docutils.parsers.rst import Parser

from ragline.errors import SourceError
from ragline.parse.anchors import AnchorRegistry, sphinx_id
from ragline.parse.drafts import Draft, Origin, preamble, title_for, to_document
from ragline.parse.includes import IncludeResolver
from ragline.parse.rst_directives import register_extensions
from ragline.records import Document

KIND = "rst"


_ADORNMENT_RE = re.compile(r"^([!-/:-@\[-`{-~])\1{2,}\s*$")

_SETTINGS_OVERRIDES: dict[str, Any] = {
    "report_level": 5,  # never write messages anywhere
    "halt_level": 5,  # never stop on an error: keep what parsed
    "warning_stream": False,
    "file_insertion_enabled": False,  # documents must not read other files
    "raw_enabled": False,
    "doctitle_xform": False,  # keep the top section (and its id) as a section
    "sectsubtitle_xform": False,
    "syntax_highlight": "none",
    "traceback": True,  # raise instead of sys.exit
    "_disable_config": True,
    "input_encoding": "unicode",
}


_BASE_SETTINGS: Any = None


def _settings() -> Any:
    global _BASE_SETTINGS
    if _BASE_SETTINGS is None:
        base = get_default_settings(Parser)
        for key, value in _SETTINGS_OVERRIDES.items():
            setattr(base, key, value)
        _BASE_SETTINGS = base
    return copy.copy(_BASE_SETTINGS)


def _doctree(text: str, includes: IncludeResolver | None = None) -> nodes.document:
    from docutils.core import publish_doctree

    register_extensions(text)
    settings = _settings()
    settings.ragline_includes = includes
    return publish_doctree(text, settings=settings)


# ---------------------------------------------------------------- doctree -> text

_SKIPPED = (
    nodes.comment,
    nodes.system_message,
    nodes.target,
    nodes.substitution_definition,
    nodes.pending,
    nodes.raw,
    nodes.image,
    nodes.decoration,
    nodes.docinfo,
    nodes.meta,
)
_VERBATIM = (nodes.literal_block, nodes.doctest_block, nodes.math_block)


def _inline_text(node: nodes.Node) -> str:
    parts: list[str] = []
    stack: list[nodes.Node] = [node]
    while stack:
        current = stack.pop()
        if isinstance(current, nodes.Text):
            parts.append(str(current))
        elif isinstance(current, _SKIPPED):
            continue
        elif isinstance(current, nodes.Element):
            stack.extend(reversed(current.children))
    return " ".join("".join(parts).split())


def _block_lines(node: nodes.Node) -> list[str]:
    if isinstance(node, _SKIPPED):
        return []
    if isinstance(node, nodes.topic) and "contents" in node.get("classes", []):
        return []
    if isinstance(node, _VERBATIM):
        text = node.astext().strip("\n").rstrip()
        return [text] if text.strip() else []
    if isinstance(node, nodes.table):
        rows = []
        for row in node.findall(nodes.row):
            cells = [_inline_text(entry) for entry in row.children]
            if any(cells):
                rows.append(" | ".join(cells))
        return rows
    if isinstance(node, nodes.field):
        name = _inline_text(node[0]) if len(node) else ""
        body = [line for child in node.children[1:] for line in _block_lines(child)]
        return [f"{name}: {' '.join(body)}".strip(": ")] if name or body else []
    if isinstance(node, nodes.Text):
        text = " ".join(str(node).split())
        return [text] if text else []
    if isinstance(node, nodes.TextElement):
        text = _inline_text(node)
        return [text] if text else []
    if isinstance(node, nodes.Element):
        return [line for child in node.children for line in _block_lines(child)]
    return []


def _leading_field_list(doc: nodes.document) -> nodes.Node | None:
    """File-wide metadata (``:orphan:``, ``:tocdepth:``) that sits before any content."""
    for child in doc.children:
        if isinstance(child, (nodes.comment, nodes.target, nodes.substitution_definition)):
            continue
        return child if isinstance(child, nodes.field_list) else None
    return None


def _drafts_from_doctree(doc: nodes.document) -> list[Draft]:
    drafts = [preamble()]
    registry = AnchorRegistry()
    skip = _leading_field_list(doc)

    def visit(section: nodes.section, depth: int) -> None:
        children = section.children
        title = _inline_text(children[0]) if children and isinstance(children[0], nodes.title) else ""
        # Sphinx shows the title-derived id on the <section>; labels only add <span> anchors.
        slug = sphinx_id(title) if title else ""
        if slug:
            anchor: str | None = registry.unique(slug)
        else:
            ids = [i for i in section.get("ids", []) if i not in registry]
            anchor = registry.reserve(ids[0]) if ids else None
        drafts.append(Draft(title=title, anchor=anchor, level=depth))
        for child in children[1:] if title else children:
            if isinstance(child, nodes.section):
                visit(child, depth + 1)
            else:
                drafts[-1].lines.extend(_block_lines(child))

    for child in doc.children:
        if child is skip:
            continue
        if isinstance(child, nodes.section):
            visit(child, 1)
        else:
            drafts[0].lines.extend(_block_lines(child))
    return drafts


# ------------------------------------------------------------ fallback: plain text


def _drafts_from_plain_text(text: str) -> list[Draft]:
    """Underlined (and overlined) lines are headings, levels in order of first appearance."""
    lines = text.splitlines()
    drafts = [preamble()]
    styles: list[str] = []
    registry = AnchorRegistry()
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        nxt = lines[i + 1].rstrip() if i + 1 < len(lines) else ""
        over = bool(_ADORNMENT_RE.match(line))
        title_line, under_line, step = (
            (nxt, lines[i + 2].rstrip() if i + 2 < len(lines) else "", 3)
            if over
            else (
                line,
                nxt,
                2,
            )
        )
        title = title_line.strip()
        if (
            title
            and not _ADORNMENT_RE.match(title_line)
            and _ADORNMENT_RE.match(under_line)
            and len(under_line.strip()) >= len(title)
            and (not over or line.strip()[0] == under_line.strip()[0])
        ):
            style = ("o" if over else "u") + under_line.strip()[0]
            if style not in styles:
                styles.append(style)
            slug = sphinx_id(title)
            drafts.append(
                Draft(title=title, anchor=registry.unique(slug) if slug else None, level=styles.index(style) + 1)
            )
            i += step
            continue
        if line.strip() and not over:
            drafts[-1].lines.append(line)
        i += 1
    return drafts


def _drafts(text: str, includes: IncludeResolver | None = None) -> list[Draft]:
    try:
        return _drafts_from_doctree(_doctree(text, includes))
    except SourceError:  # a bound was passed (the includes' expanded size): the document is refused
        raise
    except (Exception, SystemExit):  # docutils on hostile input: keep the text, lose the markup
        return _drafts_from_plain_text(text)


def rst_to_text(text: str) -> str:
    """Plain text of an reStructuredText fragment (MyST ``{eval-rst}`` blocks), headings as lines."""
    out: list[str] = []
    for draft in _drafts(text):
        if draft.title:
            out.append(draft.title)
        out.extend(draft.lines)
    return "\n".join(out)


def parse_rst(text: str, *, includes: IncludeResolver | None = None, **origin: Unpack[Origin]) -> Document:
    """Parse reStructuredText into sections at its section titles, anchored as Sphinx anchors them.

    With ``includes``, ``literalinclude`` shows the included code and ``include`` parses the fragment in place;
    without, both show nothing.
    """
    drafts = _drafts(text, includes)
    first_title = next((d.title for d in drafts[1:] if d.title), None)
    return to_document(drafts, origin, title=title_for(origin, first_title), kind=KIND)
