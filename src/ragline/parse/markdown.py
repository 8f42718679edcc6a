"""Markdown, MDX and MyST -> sections at headings, through markdown-it-py tokens.

Anchors follow the site that renders the file: GitHub / Docusaurus slugs by default, docutils ids
for MyST files that live in a Sphinx tree. MyST directives, MDX imports and JSX tags are reduced to
the text a reader sees; inline markup becomes plain text.
"""

from __future__ import annotations

import html
import re
from typing import Unpack

from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.colon_fence import colon_fence_plugin
from mdit_py_plugins.front_matter import front_matter_plugin
from mdit_py_plugins.myst_blocks import myst_block_plugin
from mdit_py_plugins.myst_role import myst_role_plugin

import ragline.parse.sphinx as sphinx
from ragline.parse.anchors import AnchorRegistry, AnchorStyle, slugify
from ragline.parse.drafts import Draft, Origin, preamble, title_for, to_document
from ragline.parse.includes import IncludeResolver, select_lines
from ragline.parse.rst import rst_to_text
from ragline.parse.rst_directives import FRAGMENT_PARSERS
from ragline.records import Document

KIND = "markdown"
MAX_NESTING = 16  # directive bodies are parsed recursively; hostile input must not recurse forever

# Signs of MyST (Markdown inside a Sphinx tree): (label)= targets, ```{directive} / :::{directive}
# fences, {role}`text` roles.
_MYST_RE = re.compile(
    r"^[ \t]*\([^()\s]+\)=[ \t]*$|^[ \t]*(?:`{3,}|:{3,})[ \t]*\{[\w:.-]+\}|\{[\w:.-]+\}`", re.MULTILINE
)
_CUSTOM_ID_RE = re.compile(r"\s*\{#([^\s{}]+)\}\s*$")
_FENCE_RE = re.compile(r"^[ \t]{0,3}(`{3,}|~{3,})")
_MDX_IMPORT_RE = re.compile(r"^(?:import|export)\s")
_MDX_COMMENT_RE = re.compile(r"\{/\*.*?\*/\}", re.DOTALL)
_HTML_COMMENT_RE = re.compile(r"<!--.*?(?:-->|$)", re.DOTALL)
_TAG_RE = re.compile(r"</?[A-Za-z][^<>]*>")
_DIRECTIVE_INFO_RE = re.compile(r"^\{([^{}\s]+)\}\s*(.*)$", re.DOTALL)
_OPTION_LINE_RE = re.compile(r"^\s*:[\w.-]+:(?:\s.*)?$")
_FRONT_TITLE_RE = re.compile(r"^title:\s*(.+?)\s*$", re.MULTILINE)
# Fenced ```{python} cells (Quarto, R Markdown) are code, not MyST directives.
_LANGUAGE_DIRECTIVES = frozenset({"python", "r", "bash", "sh", "julia", "sql", "js", "javascript", "ojs"})


def is_myst(text: str) -> bool:
    """Whether the text uses MyST syntax, i.e. it is rendered by Sphinx (docutils anchors)."""
    return _MYST_RE.search(text) is not None


def _make_parser(*, myst: bool) -> MarkdownIt:
    parser = (
        MarkdownIt("commonmark", {"html": True})
        .enable(["table", "strikethrough"])
        .use(front_matter_plugin)
        .use(colon_fence_plugin)  # MyST directives and Docusaurus admonitions alike
    )
    if myst:
        # Only for MyST: elsewhere a line starting with "%" is text, not a comment.
        parser.use(myst_block_plugin).use(myst_role_plugin)
    return parser


_PLAIN_PARSER = _make_parser(myst=False)
_MYST_PARSER = _make_parser(myst=True)


def strip_mdx(text: str) -> str:
    """Drop MDX ``import``/``export`` lines and ``{/* comments */}`` outside code fences."""
    out: list[str] = []
    fence: str | None = None
    for line in text.splitlines():
        match = _FENCE_RE.match(line)
        if match:
            marker = match.group(1)
            if fence is None:
                fence = marker
            elif marker[0] == fence[0] and len(marker) >= len(fence):
                fence = None
            out.append(line)
            continue
        if fence is None and _MDX_IMPORT_RE.match(line):
            continue
        out.append(line)
    result = "\n".join(out)
    return _MDX_COMMENT_RE.sub("", result)


def _html_text(fragment: str) -> str:
    """Text inside an HTML/JSX block: tags and comments dropped, entities decoded."""
    return html.unescape(_TAG_RE.sub(" ", _HTML_COMMENT_RE.sub("", fragment)))


def _split_options(body: str) -> tuple[dict[str, str], str]:
    """A directive's leading ``:option: value`` lines or ``---`` YAML option block, and the body after them."""
    lines = body.split("\n")
    options: dict[str, str] = {}
    if lines and lines[0].strip() == "---":
        for end in range(1, len(lines)):
            if lines[end].strip() == "---":
                for line in lines[1:end]:
                    key, sep, value = line.partition(":")
                    if sep and key.strip():
                        options[key.strip()] = value.strip().strip("'\"")
                lines = lines[end + 1 :]
                break
    start = 0
    while start < len(lines) and _OPTION_LINE_RE.match(lines[start]):
        key, _, value = lines[start].strip()[1:].partition(":")
        options[key] = value.strip()
        start += 1
    rest = "\n".join("" if sphinx.CARD_SEPARATOR_RE.match(ln) else ln for ln in lines[start:]).strip("\n")
    return options, rest


def _front_matter_title(content: str) -> str | None:
    match = _FRONT_TITLE_RE.search(content)
    if not match:
        return None
    value = match.group(1).strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
        value = value[1:-1]
    return value.strip() or None


class _Renderer:
    """Turns a token stream into drafts (split at headings) or, nested, into plain lines."""

    def __init__(
        self,
        parser: MarkdownIt,
        style: AnchorStyle,
        registry: AnchorRegistry,
        *,
        split: bool,
        depth: int = 0,
        includes: IncludeResolver | None = None,
    ) -> None:
        self.parser = parser
        self.includes = includes
        self.style = style
        self.registry = registry
        self.split = split
        self.depth = depth
        self.drafts: list[Draft] = [preamble()]
        self.front_title: str | None = None
        self._row: list[str] | None = None

    def line(self, text: str) -> None:
        if text.strip():
            self.drafts[-1].lines.append(text)

    def inline(self, token: Token) -> str:
        parts: list[str] = []
        for child in token.children or []:
            kind = child.type
            if kind in ("text", "code_inline", "math_inline"):
                parts.append(child.content)
            elif kind == "softbreak":
                parts.append(" ")
            elif kind == "hardbreak":
                parts.append("\n")
            elif kind == "image":
                parts.append(child.content)
            elif kind == "myst_role":
                parts.append(sphinx.xref_text(child.content, str(child.meta.get("name", ""))))
            elif kind == "html_inline":
                # JSX / HTML tags vanish; a <br> still separates words.
                parts.append(" " if child.content.lower().startswith("<br") else "")
        text = "".join(parts)
        return "\n".join(" ".join(seg.split()) for seg in text.split("\n")).strip()

    def _heading(self, tokens: list[Token], i: int) -> None:
        level = int(tokens[i].tag[1:]) if tokens[i].tag[1:].isdigit() else 1
        raw = self.inline(tokens[i + 1]) if i + 1 < len(tokens) else ""
        custom = _CUSTOM_ID_RE.search(raw)
        title = _CUSTOM_ID_RE.sub("", raw).strip() if custom else raw
        if not self.split:
            self.line(title)
            return
        if custom:
            anchor: str | None = self.registry.reserve(custom.group(1))
        else:
            slug = slugify(title, self.style, markdown=True)
            anchor = self.registry.unique(slug) if slug else None
        self.drafts.append(Draft(title=title, anchor=anchor, level=level))

    def _nested(self, body: str) -> None:
        if self.depth >= MAX_NESTING:
            self.line(body)
            return
        inner = _Renderer(
            self.parser, self.style, self.registry, split=False, depth=self.depth + 1, includes=self.includes
        )
        inner.render(self.parser.parse(body))
        for draft in inner.drafts:
            self.drafts[-1].lines.extend(draft.lines)

    def _include(self, name: str, argument: str, options: dict[str, str]) -> None:
        """``literalinclude`` shows the file's code; ``include`` renders a Markdown or rst fragment in place."""
        if self.includes is None:
            return
        if name == "literalinclude":
            code = self.includes.literal(argument, options)
            if code is not None:
                self.line(" ".join(options.get("caption", "").split()))
                self.line(code.rstrip())
            return
        found = self.includes.read(argument)
        selected = select_lines(found[1], options) if found is not None else None
        if found is None or not selected or not selected.strip():
            return
        suffix = found[0].suffix.lower()
        if "literal" in options or "code" in options:
            self.line(selected.rstrip())
        elif suffix in (".md", ".markdown", ".txt"):
            self._nested(selected)
        elif suffix in (".rst", ".rest"):
            self.line(rst_to_text(selected))

    def directive(self, name: str, argument: str, body: str) -> None:
        name = name.lower()
        options, body = _split_options(body)
        if name in ("literalinclude", "include"):
            self._include(name, argument.strip(), options)
        elif name == "eval-rst":
            self.line(rst_to_text(body))
        elif name in sphinx.DROPPED_DIRECTIVES:
            return
        elif name in sphinx.CODE_DIRECTIVES or name in _LANGUAGE_DIRECTIVES:
            self.line(body.rstrip())
        elif name in sphinx.SIGNATURE_DIRECTIVES or name == "autosummary":
            self.line(argument.strip())
            self.line(
                "\n".join(ln.strip() for ln in body.splitlines() if ln.strip() and not ln.strip().startswith(":"))
            )
        else:
            self.line(sphinx.visible_argument(name, _html_text(argument)))
            if body.strip():
                self._nested(body)

    def _fence(self, token: Token) -> None:
        info = token.info.strip()
        myst = _DIRECTIVE_INFO_RE.match(info)
        if myst:
            self.directive(myst.group(1), myst.group(2), token.content)
        elif token.type == "colon_fence":
            # Docusaurus admonitions (":::tip Title") and bare colon fences: the body is Markdown.
            name, _, argument = info.partition(" ")
            self.directive(name or "admonition", argument, token.content)
        else:
            self.line(token.content.strip("\n").rstrip())

    def render(self, tokens: list[Token]) -> None:
        i = 0
        while i < len(tokens):
            token = tokens[i]
            kind = token.type
            if kind == "heading_open":
                self._heading(tokens, i)
                i += 3
                continue
            if kind == "inline":
                text = self.inline(token)
                if self._row is not None:
                    self._row.append(text)
                else:
                    self.line(text)
            elif kind == "tr_open":
                self._row = []
            elif kind == "tr_close":
                if self._row is not None and any(self._row):
                    self.line(" | ".join(self._row))
                self._row = None
            elif kind in ("fence", "colon_fence"):
                self._fence(token)
            elif kind == "code_block":
                self.line(token.content.strip("\n").rstrip())
            elif kind == "html_block":
                self.line(
                    "\n".join(" ".join(ln.split()) for ln in _html_text(token.content).splitlines() if ln.strip())
                )
            elif kind == "front_matter":
                self.front_title = _front_matter_title(token.content)
            i += 1


def parse_markdown(
    text: str,
    *,
    style: AnchorStyle | None = None,
    mdx: bool = False,
    kind: str = KIND,
    includes: IncludeResolver | None = None,
    **origin: Unpack[Origin],
) -> Document:
    """Parse Markdown into sections at its headings.

    ``style`` picks the anchor scheme; None means GitHub/Docusaurus unless the text is MyST, whose
    pages Sphinx renders with docutils ids. ``mdx`` drops MDX imports, exports and comments.
    """
    if mdx:
        text = strip_mdx(text)
    myst = is_myst(text)
    parser = _MYST_PARSER if myst else _PLAIN_PARSER
    resolved: AnchorStyle = style or ("sphinx" if myst else "github")
    renderer = _Renderer(parser, resolved, AnchorRegistry(), split=True, includes=includes)
    renderer.render(parser.parse(text))
    drafts = renderer.drafts
    first_heading = next((d.title for d in drafts[1:] if d.level == 1), None) or next(
        (d.title for d in drafts[1:]), None
    )
    return to_document(drafts, origin, title=title_for(origin, renderer.front_title, first_heading), kind=kind)


def _markdown_fragment(text: str, source: str, includes: IncludeResolver | None) -> Document:
    return parse_markdown(text, source=source, includes=includes)


for _suffix in (".md", ".markdown"):  # an rST ``include`` of a Markdown file reads it as MyST
    FRAGMENT_PARSERS[_suffix] = _markdown_fragment
