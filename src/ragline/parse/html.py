"""HTML pages -> sections split at h1-h6, with the anchors the page itself uses.

The content is taken from the configured CSS selector, else ``<article>`` inside ``<main>``,
``<main>``, ``<article>`` or ``<body>``; site chrome (navigation, sidebars, footers, cookie banners,
permalink markers, pagination, tables of contents) is removed before the text is read.
"""

from __future__ import annotations

import codecs
import re
from typing import Unpack

from selectolax.lexbor import LexborHTMLParser, LexborNode

from ragline.parse.anchors import AnchorRegistry, github_slug
from ragline.parse.drafts import Draft, Origin, preamble, title_for, to_document
from ragline.records import Document

KIND = "html"


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


_HEADINGS = {"h1": 1, "h2": 2, "h3": 3, "h4": 4, "h5": 5, "h6": 6}
# Elements that start a new line of text; everything else flows inline.
_BLOCKS = _words(
    """
    address article aside blockquote body caption center dd details dialog dir div dl dt fieldset
    figcaption figure footer form h1 h2 h3 h4 h5 h6 header hgroup hr html li listing main menu nav
    ol p plaintext pre section summary table tbody td tfoot th thead tr ul label option
    """
)
# Never content, wherever they appear.
_JUNK = (
    "script, style, noscript, template, svg, canvas, iframe, object, embed, form, button, input, select, "
    "textarea, nav, aside, footer, dialog, [role=navigation], [role=banner], [role=contentinfo], "
    "[role=search], [role=dialog], [hidden], [aria-hidden=true], [style*='display:none'], "
    "[style*='display: none'], [style*='visibility:hidden'], [style*='visibility: hidden']"
)
# Permalink markers, cookie banners and Sphinx / Docusaurus / pydata-theme chrome.
_CHROME = (
    ".headerlink, .hash-link, .anchorjs-link, .linenos, .copybtn, .viewcode-link, .sd-hide-link-text, "
    "[class*=cookie], [id*=cookie], [class*=consent], [id*=consent], .skip-link, .skipToContent, "
    ".theme-edit-this-page, .edit-this-page, .editthispage, .theme-doc-footer, .theme-doc-breadcrumbs, "
    ".breadcrumbs, .theme-doc-toc-mobile, .theme-doc-toc-desktop, .table-of-contents, .tableOfContents, "
    ".theme-doc-version-banner, .theme-doc-version-badge, .pagination-nav, .prev-next-area, "
    ".prev-next-footer, .bd-toc, .toctree-wrapper, .contents.topic, div.contents, .sphinxsidebar, "
    "div.related, .bd-sidebar, .bd-header-article, .bd-footer, .bd-footer-article, .footer-article, "
    ".navbar, .bottom-right-promo-banner"
)
_CHARSET_RE = re.compile(rb"""<meta[^>]{0,200}?charset\s*=\s*["']?\s*([A-Za-z0-9_.:-]+)""", re.IGNORECASE)
# "Page — Site 2.x" / "Page | Site": only clear separators, a plain hyphen is too often part of a title.
_TITLE_SEPARATORS = (" — ", " – ", " | ", " · ", " :: ")
_PERMALINK_MARKS = "¶§\u200b\ufeff"


# Browsers flatten the DOM below a few hundred levels too. lexbor checks element scopes by walking the stack
# of open elements on every block tag, so nesting N deep costs O(N^2): 200k nested <div>s took minutes.
MAX_DEPTH = 256
_VOID_TAGS = _words(
    "area base basefont bgsound br col embed frame hr img input keygen link meta param source track wbr"
)
_IMPLICITLY_CLOSED = _words("p li dt dd option tr td th")  # a second one closes the first
# Comments and raw-text elements are skipped whole (an unclosed one runs to the end, still in linear time);
# a "<" inside a tag ends the match, so unclosed tags cannot make the scan quadratic either.
_TAG_RE = re.compile(
    r"<!--(?:.*?-->|.*\Z)"
    r"|<(?:script|style|textarea|title|xmp)\b(?:.*?</(?:script|style|textarea|title|xmp)\s*>|.*\Z)"
    r"|<(/?)([A-Za-z][^\s/<>]*)[^<>]*>",
    re.DOTALL | re.IGNORECASE,
)


def cap_depth(text: str, limit: int = MAX_DEPTH) -> str:
    """``text`` with the tags nested deeper than ``limit`` (and their end tags) replaced by a space.

    Linear time; a page within the limit comes back unchanged (the same object).
    """
    if text.count("<") <= limit:
        return text
    stack: list[str] = []
    dropped: dict[str, int] = {}
    cuts: list[tuple[int, int]] = []
    for m in _TAG_RE.finditer(text):
        name = m.group(2)
        if name is None:
            continue
        name = name.lower()
        if m.group(1):  # an end tag
            if dropped.get(name):
                dropped[name] -= 1
                cuts.append(m.span())
            elif name in stack:
                while stack.pop() != name:
                    pass
            continue
        if name in _VOID_TAGS or m.group(0).endswith("/>"):
            continue
        if name in _IMPLICITLY_CLOSED and stack and stack[-1] == name:
            stack.pop()
        if len(stack) >= limit:
            dropped[name] = dropped.get(name, 0) + 1
            cuts.append(m.span())
        else:
            stack.append(name)
    if not cuts:
        return text
    parts: list[str] = []
    pos = 0
    for start, end in cuts:
        parts.append(text[pos:start])
        parts.append(" ")
        pos = end
    parts.append(text[pos:])
    return "".join(parts)


def declared_charset(data: bytes) -> str | None:
    """The charset an HTML page declares in a ``<meta>`` tag near its start, if Python knows it."""
    match = _CHARSET_RE.search(data[:4096])
    if not match:
        return None
    name = match.group(1).decode("ascii", "ignore")
    try:
        return codecs.lookup(name).name
    except LookupError:
        return None


def clean_title(title: str) -> str:
    """Drop a site suffix such as `` — Ray 3.0`` or `` | 🦜️🔗 Langchain`` from a ``<title>``."""
    title = " ".join(title.split())
    for sep in _TITLE_SEPARATORS:
        head, found, _site = title.rpartition(sep)
        if found and head.strip():
            return head.strip()
    return title


class _TextCollector:
    """Accumulates inline text into lines and lines into sections, in document order."""

    def __init__(self) -> None:
        self.drafts: list[Draft] = [preamble()]
        self._inline: list[str] = []

    def text(self, value: str) -> None:
        self._inline.append(value)

    def cell(self) -> None:
        if "".join(self._inline).strip():
            self._inline.append(" | ")

    def newline(self) -> None:
        if self._inline:
            line = " ".join("".join(self._inline).split())
            self._inline.clear()
            if line:
                self.drafts[-1].lines.append(line)

    def block(self, value: str) -> None:
        self.newline()
        if value.strip():
            self.drafts[-1].lines.append(value)

    def heading(self, title: str, anchor: str | None, level: int) -> None:
        self.newline()
        self.drafts.append(Draft(title=title, anchor=anchor, level=level))


def _strip_chrome(root: LexborNode) -> None:
    for selector in (_JUNK, _CHROME):
        for node in root.css(selector):
            node.decompose()
    # A <header> around the page's h1 (Docusaurus) is content; any other header is a banner.
    for node in root.css("header"):
        if node.css_first("h1, h2, h3, h4, h5, h6") is None:
            node.decompose()


def _inside_article(node: LexborNode, stop: LexborNode) -> bool:
    """Whether ``node`` sits in another <article> below ``stop`` (Docusaurus doc cards do)."""
    parent = node.parent
    while parent is not None and parent.mem_id != stop.mem_id:
        if parent.tag == "article":
            return True
        parent = parent.parent
    return False


def _content_root(tree: LexborHTMLParser, selector: str | None) -> LexborNode | None:
    if selector:
        chosen = tree.css_first(selector)
        if chosen is not None:
            return chosen
    main = tree.css_first("main") or tree.css_first("[role=main]")
    if main is not None:
        # Docusaurus <main> also holds breadcrumbs, pagination and a TOC; its <article> does not.
        articles = [a for a in main.css("article") if not _inside_article(a, main)]
        return articles[0] if len(articles) == 1 else main
    return tree.css_first("article") or tree.body


def _heading_text(node: LexborNode) -> str:
    return " ".join((node.text(deep=True) or "").split()).strip(_PERMALINK_MARKS + " ")


def _id_of(node: LexborNode | None) -> str | None:
    if node is None or not node.is_element_node:
        return None
    attrs = node.attributes
    value = attrs.get("id") or (attrs.get("name") if node.tag == "a" else None)
    return value.strip() if value and value.strip() else None


def _prev_element(node: LexborNode) -> LexborNode | None:
    prev = node.prev
    while prev is not None and (prev.is_text_node and not (prev.text_content or "").strip()):
        prev = prev.prev
    return prev if prev is not None and prev.is_element_node else None


def _first_heading_child(container: LexborNode) -> LexborNode | None:
    for child in container.iter():
        if child.tag in _HEADINGS:
            return child
        if child.tag not in ("span", "a"):
            return None
    return None


def _explicit_anchor(heading: LexborNode) -> str | None:
    """The id the page gives this heading: its own, its Sphinx section's, or a marker beside it."""
    own = _id_of(heading)
    if own:
        return own
    parent = heading.parent
    if parent is not None and (
        parent.tag == "section" or (parent.tag == "div" and "section" in (parent.attributes.get("class") or "").split())
    ):
        first = _first_heading_child(parent)
        if first is not None and first.mem_id == heading.mem_id and _id_of(parent):
            return _id_of(parent)
    prev = _prev_element(heading)
    if prev is not None and prev.tag in ("a", "span") and not (prev.text() or "").strip():
        marker = _id_of(prev)
        if marker:
            return marker
    inner = heading.css_first("a[id], a[name], span[id]")
    return _id_of(inner)


_OUTPUT_CLASSES = frozenset({"output", "cell_output", "output_area", "output_html", "text_html", "jp-OutputArea"})


def _in_notebook_output(node: LexborNode, stop: LexborNode) -> bool:
    """Headings printed by a notebook cell (Tune's status tables) are output, not the page outline."""
    parent = node.parent
    while parent is not None and parent.mem_id != stop.mem_id:
        classes = (parent.attributes.get("class") or "").split() if parent.is_element_node else []
        if _OUTPUT_CLASSES.intersection(classes):
            return True
        parent = parent.parent
    return False


def _walk(root: LexborNode, out: _TextCollector, registry: AnchorRegistry) -> None:
    # Iterative on purpose: pathological pages nest thousands of levels deep.
    stack: list[tuple[LexborNode, bool]] = [(root, False)]
    while stack:
        node, leaving = stack.pop()
        if leaving:
            out.newline()
            continue
        if node.is_text_node:
            out.text(node.text_content or "")
            continue
        tag = node.tag
        if not node.is_element_node or tag is None:
            continue
        level = _HEADINGS.get(tag)
        if level is not None:
            title = _heading_text(node)
            if title and _in_notebook_output(node, root):
                out.block(title)
            elif title:
                anchor = _explicit_anchor(node)
                if anchor:
                    registry.reserve(anchor)
                else:
                    slug = github_slug(title)
                    anchor = registry.unique(slug) if slug else None
                out.heading(title, anchor, level)
            continue
        if tag == "pre":
            out.block((node.text(deep=True) or "").strip("\n").rstrip())
            continue
        if tag == "br":
            out.newline()
            continue
        if tag in ("td", "th"):
            out.cell()
        elif tag in _BLOCKS:
            out.newline()
            stack.append((node, True))
        children = list(node.iter(include_text=True))
        stack.extend((child, False) for child in reversed(children))


def _canonical(tree: LexborHTMLParser) -> str | None:
    for link in tree.css("link[rel]"):
        rels = (link.attributes.get("rel") or "").lower().split()
        href = (link.attributes.get("href") or "").strip()
        if "canonical" in rels and href.startswith(("http://", "https://")):
            return href
    return None


def parse_html(text: str, *, selector: str | None = None, **origin: Unpack[Origin]) -> Document:
    """Parse an HTML page; ``source`` is replaced by the page's absolute canonical URL if it has one."""
    tree = LexborHTMLParser(cap_depth(text))
    canonical = _canonical(tree)
    head_title = tree.css_first("title")
    page_title = clean_title(head_title.text()) if head_title is not None else ""

    root = _content_root(tree, selector)
    out = _TextCollector()
    if root is not None:
        _strip_chrome(root)
        _walk(root, out, AnchorRegistry())
    out.newline()

    first_h1 = next((d.title for d in out.drafts[1:] if d.level == 1), None)
    title = title_for(origin, first_h1, page_title)
    return to_document(out.drafts, origin, title=title, kind=KIND, source=canonical)
