"""Bounds on what a text parser is handed, checked in one linear pass before parsing.

markdown-it and docutils cost more than linear time or memory on some shapes of input: one very long line, or
reStructuredText indented level under level (docutils copies the rest of a block at every level: a 4.5 MB page
nested 3,000 deep took 1.4 GB). A document over a bound is refused with the reason; the ingest goes on.
"""

from __future__ import annotations

import io

from ragline.errors import SourceError

# The deepest real page in the Ray, LangChain and Debian docs nests 10 levels (code blocks included).
MAX_INDENT_DEPTH = 32


def check_lines(text: str, max_chars: int) -> None:
    """Refuse ``text`` when one of its lines is longer than ``max_chars`` characters."""
    # Lines keep their "\n" here; iterating a StringIO splits in C without copying the text into a list.
    if max(map(len, io.StringIO(text)), default=0) <= max_chars:
        return
    longest = max(len(line.rstrip("\n")) for line in io.StringIO(text))
    if longest > max_chars:
        raise SourceError(f"a line of {longest} characters > max_line_chars {max_chars}")


def check_indentation(text: str, limit: int = MAX_INDENT_DEPTH) -> None:
    """Refuse reStructuredText whose indentation nests deeper than ``limit`` levels (each deeper indent of a
    line below a shallower one is a level, as docutils nests block quotes)."""
    levels: list[int] = []
    for line in io.StringIO(text):
        body = line.lstrip(" \t")
        if not body.strip():
            continue
        width = len(line) - len(body)
        while levels and levels[-1] > width:
            levels.pop()
        if not levels or levels[-1] < width:
            levels.append(width)
            if len(levels) > limit:
                raise SourceError(f"indentation nested over {limit} levels deep")
