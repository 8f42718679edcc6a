"""Sphinx's directives and roles, made harmless for plain docutils.

docutils does not know Sphinx's directives (``code-block``, ``toctree``, ``tab-set``...) or roles (``:ref:``,
``:py:class:``...). Before a text is parsed, ``register_extensions`` gives every unknown name in it a handler
that keeps what a reader sees on the rendered page (code, signatures, captions, included files read through
the document's IncludeResolver) and drops the rest.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from docutils import nodes, statemachine, utils
from docutils.parsers.rst import Directive, directives, roles
from docutils.parsers.rst.languages import en as _rst_en

from ragline.parse.includes import IncludeResolver, select_lines
from ragline.parse.sphinx import (
    CARD_SEPARATOR_RE,
    CODE_DIRECTIVES,
    DROPPED_DIRECTIVES,
    SIGNATURE_DIRECTIVES,
    visible_argument,
    xref_text,
)
from ragline.records import Document

_ROLE_NAME_RE = re.compile(r"(?<![\w`\\]):([A-Za-z][\w+.-]*(?::[A-Za-z][\w+.-]*)*):`")
_DIRECTIVE_NAME_RE = re.compile(r"^[ \t]*\.\.[ \t]+([A-Za-z][\w.+:-]*)::", re.MULTILINE)


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
