"""The Sphinx vocabulary both the reStructuredText and the MyST (Markdown) parsers read: which directives
are dropped, which hold code, which name an API object, whose argument a reader sees, and what the page
shows for a cross-reference role.
"""

from __future__ import annotations

import re


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Directive families, shared with the MyST (Markdown) parser.
DROPPED_DIRECTIVES = _words(
    """
    toctree include literalinclude raw meta image contents tableofcontents currentmodule module
    highlight tabularcolumns index sectionauthor codeauthor moduleauthor todolist title click
    program-output command-output graphviz testsetup testcleanup bibliography glue glue:any
    automodsumm jsonschema literalinclude-code mdinclude
    """
)
CODE_DIRECTIVES = _words(
    """
    code-block sourcecode code code-cell testcode testoutput doctest jupyter-execute ipython prompt
    console code-tab mermaid math plot parsed-literal
    """
)
# The argument is a name worth keeping (API pages); the body is the docstring, if any.
SIGNATURE_DIRECTIVES = _words(
    """
    autoclass autofunction automethod autoattribute autodata autoexception automodule autoproperty
    autopydantic_model autopydantic_settings function method attribute data exception decorator
    classmethod staticmethod property option envvar confval
    """
)
# The argument is not something a reader sees (a path, a grid spec, a condition, a ref target).
HIDDEN_ARGUMENT_DIRECTIVES = _words(
    """
    tab-set grid only ifconfig button-ref button-link div container margin cssclass figure
    literalinclude include image raw highlight card-carousel tabs
    """
)
ICON_ROLES = frozenset({"octicon", "fa", "fab", "fas", "material-regular", "material-outlined", "icon"})

_TITLED_XREF_RE = re.compile(r"^(.*?)\s*<([^<>]*)>$", re.DOTALL)
_PATHLIKE_RE = re.compile(r"^(?:\S*/\S*|\S+\.[A-Za-z]{1,5}|[\d\s.,:;-]+)$")
# sphinx-design cards split header / body / footer with lines of ^^^ and +++.
CARD_SEPARATOR_RE = re.compile(r"^\s*(?:\^{3,}|\+{3,})\s*$")


def xref_text(text: str, role: str = "") -> str:
    """What Sphinx shows for a cross-reference role: the explicit title, or the target (``~``: last part)."""
    if role.split(":")[-1] in ICON_ROLES:
        return ""
    text = text.strip()
    match = _TITLED_XREF_RE.match(text)
    if match:
        if match.group(1).strip():
            return match.group(1).strip()
        text = match.group(2).strip()
    text = text.lstrip("!")
    if text.startswith("~"):
        return text[1:].rsplit(".", 1)[-1]
    return text


_VERSION_PHRASES = {
    "versionadded": "New in version",
    "versionchanged": "Changed in version",
    "deprecated": "Deprecated since version",
    "versionremoved": "Removed in version",
}


def visible_argument(name: str, argument: str) -> str:
    """A directive's argument as the rendered page shows it ("" when it is a path, a spec, a target)."""
    argument = " ".join(argument.split())
    base = name.split(":")[-1]
    if not argument or name in DROPPED_DIRECTIVES or name in CODE_DIRECTIVES or base in HIDDEN_ARGUMENT_DIRECTIVES:
        return ""
    if base in _VERSION_PHRASES:
        return f"{_VERSION_PHRASES[base]} {argument}"
    if name in SIGNATURE_DIRECTIVES or base in SIGNATURE_DIRECTIVES or base == "class":
        return argument
    return "" if _PATHLIKE_RE.match(argument) else argument
