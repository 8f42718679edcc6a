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
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from docutils import nodes, statemachine, utils
from docutils.frontend import get_default_settings
from docutils.parsers.rst import Directive, Parser, directives, roles
from docutils.parsers.rst.languages import en as _rst_en

from ragline.parse.anchors import AnchorRegistry, sphinx_id
from ragline.parse.includes import IncludeResolver, select_lines
from ragline.parse.sphinx import (
    CARD_SEPARATOR_RE,
    CODE_DIRECTIVES,
    DROPPED_DIRECTIVES,
    SIGNATURE_DIRECTIVES,
    visible_argument,
    xref_text,
)
from ragline.records import Document, Section

KIND = "rst"


_DIRECTIVE_NAME_RE = re.compile(r"^[ \t]*\.\.[ \t]+([A-Za-z][\w.+:-]*)::", re.MULTILINE)
_ROLE_NAME_RE = re.compile(r"(?<![\w`\\]):([A-Za-z][\w+.-]*(?::[A-Za-z][\w+.-]*)*):`")
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


class _AnyOptions(dict[str, Any]):
    """An option spec that accepts every option, so Sphinx options never make a directive fail."""

    def __missing__(self, key: str) -> Any:
        return directives.unchanged


_ANY_OPTIONS = _AnyOptions({"class": directives.class_option})


class _GenericDirective(Directive):
    """Keeps a visible argument as a line and the body as ordinary text."""

    optional_arguments = 1
    final_argument_whitespace = True
    has_content = True
    option_spec = _ANY_OPTIONS

    def _argument_nodes(self) -> list[nodes.Node]:
        shown = visible_argument(self.name, self.arguments[0]) if self.arguments else ""
        if not shown:
            return []
        inline, messages = self.state.inline_text(shown, self.lineno)
        return [nodes.paragraph(shown, "", *inline), *messages]

    def run(self) -> list[nodes.Node]:
        box = nodes.container()
        box.extend(self._argument_nodes())
        for i, line in enumerate(self.content):
            if CARD_SEPARATOR_RE.match(line):
                self.content[i] = ""
        if self.content:
            self.state.nested_parse(self.content, self.content_offset, box)
        return [box]


class _CodeDirective(_GenericDirective):
    def run(self) -> list[nodes.Node]:
        code = "\n".join(self.content)
        return [nodes.literal_block(code, code)] if code.strip() else []


class _DroppedDirective(_GenericDirective):
    def run(self) -> list[nodes.Node]:
        return []


class _SignatureDirective(_GenericDirective):
    def run(self) -> list[nodes.Node]:
        box = nodes.container()
        if self.arguments:
            box += nodes.paragraph(self.arguments[0], self.arguments[0])
        if self.content:
            self.state.nested_parse(self.content, self.content_offset, box)
        return [box]


class _AutosummaryDirective(_GenericDirective):
    """Lists API names: kept one per line, they are what an API index page is about."""

    def run(self) -> list[nodes.Node]:
        names = [line.strip() for line in self.content if line.strip() and not line.strip().startswith(":")]
        text = "\n".join(xref_text(n) for n in names)
        return [nodes.literal_block(text, text)] if text else []


class _ClickDirective(_GenericDirective):
    """sphinx-click documents a command as a section titled by its program name (``:prog:``).

    The help text comes from the code, which the page source does not hold; the section keeps the name and
    its anchor, so a question about ``ray stack`` can still find and cite ``#ray-stack``.
    """

    def run(self) -> list[nodes.Node]:
        prog = " ".join(str(self.options.get("prog") or "").split())
        if not prog and self.arguments:
            prog = self.arguments[0].rsplit(":", 1)[-1].strip()
        if not prog:
            return []
        section = nodes.section()
        section += nodes.title(prog, prog)
        section += nodes.literal_block(prog, prog)
        return [section]


def _resolver(directive: Directive) -> IncludeResolver | None:
    return getattr(directive.state.document.settings, "ragline_includes", None)


def _options(directive: Directive) -> dict[str, str]:
    return {key: "" if value is None else str(value) for key, value in directive.options.items()}


class _LiteralIncludeDirective(_GenericDirective):
    """The code a page includes from a file, as the rendered page shows it (with its caption)."""

    def run(self) -> list[nodes.Node]:
        resolver = _resolver(self)
        if resolver is None or not self.arguments:
            return []
        code = resolver.literal(self.arguments[0], _options(self))
        if code is None:
            return []
        caption = " ".join(str(self.options.get("caption") or "").split())
        shown: list[nodes.Node] = [nodes.paragraph(caption, caption)] if caption else []
        return [*shown, nodes.literal_block(code, code)]


class _IncludeDirective(_GenericDirective):
    """An included reStructuredText fragment is parsed in place, as if written in the page."""

    def run(self) -> list[nodes.Node]:
        resolver = _resolver(self)
        found = resolver.read(self.arguments[0]) if resolver is not None and self.arguments else None
        if found is None:
            return []
        path, text = found
        options = _options(self)
        selected = select_lines(text, options) or ""
        if "literal" in options or "code" in options:
            return [nodes.literal_block(selected, selected)] if selected.strip() else []
        if not selected.strip():
            return []
        fragment_parser = FRAGMENT_PARSERS.get(path.suffix.lower())
        if fragment_parser is not None:  # e.g. a MyST fragment (``:parser: myst_parser.sphinx_``)
            fragment = fragment_parser(selected, str(path), resolver)
            lines = [line for section in fragment.sections for line in (section.title, section.text) if line]
            return [nodes.paragraph(line, line) for line in lines]
        if path.suffix.lower() not in _RST_FRAGMENT_SUFFIXES:
            return []
        register_extensions(selected)
        lines = statemachine.string2lines(selected, 8, convert_whitespace=True)
        self.state_machine.insert_input(lines, str(path))
        return []


_RST_FRAGMENT_SUFFIXES = frozenset({".rst", ".rest", ".txt", ".inc"})
# Parsers of other formats an ``include`` may bring in, by suffix: each registers itself (parse.markdown does
# for MyST), so that this module imports none of them.
FRAGMENT_PARSERS: dict[str, Callable[[str, str, IncludeResolver | None], Document]] = {}


def _directive_class(name: str) -> type[Directive]:
    base = name.split(":")[-1]
    if name == "autosummary":
        return _AutosummaryDirective
    if name == "click":
        return _ClickDirective
    if name == "literalinclude":
        return _LiteralIncludeDirective
    if name == "include":
        return _IncludeDirective
    if name in DROPPED_DIRECTIVES:
        return _DroppedDirective
    if name in CODE_DIRECTIVES:
        return _CodeDirective
    if name in SIGNATURE_DIRECTIVES or (":" in name and (base in SIGNATURE_DIRECTIVES or base == "class")):
        return _SignatureDirective
    return _GenericDirective


def _xref_role(
    name: str,
    rawtext: str,
    text: str,
    lineno: int,
    inliner: Any,
    options: dict[str, Any] | None = None,
    content: list[str] | None = None,
) -> tuple[list[nodes.Node], list[nodes.system_message]]:
    shown = xref_text(utils.unescape(text), name.lower())
    return ([nodes.Text(shown)] if shown else []), []


# docutils knows these (or aliases them to ``code``) but rejects Sphinx's options (:linenos:,
# :emphasize-lines:, :caption:...), which would turn the whole block into a dropped error.
# docutils' own ``include`` reads files by itself; ours reads only through the document's IncludeResolver.
_REPLACED_BUILTINS = (CODE_DIRECTIVES - {"parsed-literal"}) | {"include"}


def _known_directive(name: str) -> bool:
    if name in _REPLACED_BUILTINS:
        return directives._directives.get(name) is _directive_class(name)
    return name in directives._directives or name in directives._directive_registry or name in _rst_en.directives


def _known_role(name: str) -> bool:
    return name in roles._roles or name in roles._role_registry or name in _rst_en.roles


def register_extensions(text: str) -> None:
    """Register a generic handler for every directive and role in ``text`` that docutils lacks.

    Registration is process-wide in docutils; only unknown names are added, each once, so
    documents parsed later (in any thread) see the same handlers.
    """
    for raw in set(_DIRECTIVE_NAME_RE.findall(text)):
        name = raw.lower()
        if len(name) <= 64 and not _known_directive(name):
            directives.register_directive(name, _directive_class(name))
    for raw in set(_ROLE_NAME_RE.findall(text)):
        name = raw.lower()
        if len(name) <= 64 and not _known_role(name):
            roles.register_local_role(name, _xref_role)


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


@dataclass(slots=True)
class _Draft:
    title: str
    anchor: str | None
    level: int
    lines: list[str] = field(default_factory=list)


def _leading_field_list(doc: nodes.document) -> nodes.Node | None:
    """File-wide metadata (``:orphan:``, ``:tocdepth:``) that sits before any content."""
    for child in doc.children:
        if isinstance(child, (nodes.comment, nodes.target, nodes.substitution_definition)):
            continue
        return child if isinstance(child, nodes.field_list) else None
    return None


def _drafts_from_doctree(doc: nodes.document) -> list[_Draft]:
    drafts = [_Draft(title="", anchor=None, level=1)]
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
        drafts.append(_Draft(title=title, anchor=anchor, level=depth))
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


def _drafts_from_plain_text(text: str) -> list[_Draft]:
    """Underlined (and overlined) lines are headings, levels in order of first appearance."""
    lines = text.splitlines()
    drafts = [_Draft(title="", anchor=None, level=1)]
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
                _Draft(title=title, anchor=registry.unique(slug) if slug else None, level=styles.index(style) + 1)
            )
            i += step
            continue
        if line.strip() and not over:
            drafts[-1].lines.append(line)
        i += 1
    return drafts


def _drafts(text: str, includes: IncludeResolver | None = None) -> list[_Draft]:
    try:
        return _drafts_from_doctree(_doctree(text, includes))
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


def parse_rst(
    text: str,
    *,
    source: str,
    fallback_title: str | None = None,
    path: str | None = None,
    includes: IncludeResolver | None = None,
) -> Document:
    """Parse reStructuredText into sections at its section titles, anchored as Sphinx anchors them.

    With ``includes``, ``literalinclude`` shows the included code and ``include`` parses the fragment in place;
    without, both show nothing.
    """
    drafts = _drafts(text, includes)
    first_title = next((d.title for d in drafts[1:] if d.title), None)
    title = first_title or fallback_title or source
    drafts[0].title = title
    sections = [
        Section(title=d.title or title, text="\n".join(d.lines), anchor=d.anchor, level=d.level) for d in drafts
    ]
    return Document.from_sections(source=source, title=title, kind=KIND, sections=sections, path=path)
