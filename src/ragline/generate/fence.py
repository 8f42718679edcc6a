"""The fence around quoted context, and what makes document text unable to forge it.

The context sits between two plain marker lines. Document text (and the question) is defused before it goes
inside: anything a model would read as one of those markers is rewritten so it no longer reads as one. What
counts is how a model reads the text, not its code points, so matching runs on a *skeleton* of the text:
compatibility forms folded (NFKC), accents dropped, invisible and tag characters removed, Cyrillic and Greek
look-alikes and digits such as ``0`` for ``O`` mapped to Latin letters, and line-drawing characters mapped to
``=``. Only the matched spans are rewritten; the rest of the line is kept as the document wrote it.
"""

from __future__ import annotations

import re
import unicodedata
from functools import cache

CONTEXT_OPEN, CONTEXT_CLOSE = "===== CONTEXT =====", "===== END OF CONTEXT ====="

# Characters that render as nothing (or only steer rendering) and so hide a marker from a plain match: every
# format character (soft hyphen, zero-width space/joiner/non-joiner, word joiner, BOM, bidi controls, the tag
# characters U+E0000-U+E007F) and the default-ignorable marks and fillers below.
_IGNORABLE = frozenset(
    [
        *(0x034F, 0x115F, 0x1160, 0x17B4, 0x17B5, 0x3164, 0xFFA0),
        *range(0x180B, 0x1810),  # Mongolian variation selectors
        *range(0xFE00, 0xFE10),  # variation selectors
        *range(0xE0100, 0xE01F0),  # their supplement
    ]
)


def invisible(ch: str) -> bool:
    """Whether ``ch`` shows nothing a reader sees (format characters and default-ignorable marks)."""
    return unicodedata.category(ch) == "Cf" or ord(ch) in _IGNORABLE


# Look-alikes NFKC leaves alone: Cyrillic and Greek letters drawn like Latin ones, small capitals, and the
# digits and signs that stand for letters in "C0NT3XT". Lower-case targets: the skeleton is lower case.
_CONFUSABLE_PAIRS = {
    "a": "АаΑα@ᴀ4",
    "b": "ВвΒʙ",
    "c": "СсϹϲᴄ",
    "d": "ԁᴅ",
    "e": "ЕеЁёΕεᴇ3",
    "f": "ꜰϜ",
    "g": "ɢ",
    "h": "НһΗʜ",
    "i": "ІіЇїΙιɪ1",
    "j": "Јјᴊ",
    "k": "КкΚκᴋ",
    "l": "Ӏӏʟ",
    "m": "МмΜᴍ",
    "n": "ΝηпɴП",
    "o": "ОоΟοσᴏ0",
    "p": "РрΡρᴘ",
    "q": "ԛ",
    "r": "ʀг",
    "s": "Ѕѕꜱ$5",
    "t": "ТтΤτᴛ7",
    "u": "υᴜ",
    "v": "νᴠ",
    "w": "ԜԝᴡѡωШ",
    "x": "ХхΧχ",
    "y": "УуΥγʏ",
    "z": "Ζᴢ",
    # Characters that draw a rule as "=" does.
    "=": "═╪╫╬‗⹀゠꓿᐀⩵⩶≡≣",
}
_CONFUSABLES = {ch: latin for latin, chars in _CONFUSABLE_PAIRS.items() for ch in chars}


@cache
def _skeleton_of(ch: str) -> str:
    """How one character reads: folded, unaccented, lower case, look-alikes as the Latin letter."""
    if invisible(ch):
        return ""
    if ch in _CONFUSABLES:
        return _CONFUSABLES[ch]
    out = []
    for part in unicodedata.normalize("NFKD", ch):
        if unicodedata.combining(part):
            continue
        part = part.lower()
        out.append(_CONFUSABLES.get(part, part))
    return "".join(out)


def skeleton(text: str) -> tuple[str, list[int]]:
    """The skeleton of ``text`` and, for each of its characters, the index in ``text`` it comes from."""
    chars: list[str] = []
    origin: list[int] = []
    for i, ch in enumerate(text):
        s = _skeleton_of(ch)
        chars.append(s)
        origin.extend([i] * len(s))
    return "".join(chars), origin


def _word(word: str, sep: str = r"[^a-z0-9\n=]{0,3}") -> str:
    """``word`` with up to a few separators between its letters ("c o n t e x t", "con-text")."""
    return r"(?<![a-z])" + sep.join(word) + r"(?![a-z])"


_GAP = r"[^a-z0-9\n=]{0,6}"  # between the words of a marker (none at all in "endofcontext")
_MARK = "(?:" + "|".join(_word(w) for w in ("context", "contexts", "evidence")) + ")"
_PHRASE = (
    "(?:" + "|".join(_word(w) for w in ("end", "start", "begin", "beginning")) + ")"
    rf"{_GAP}(?:{_word('of')}{_GAP})?(?:{_word('the')}{_GAP})?{_MARK}"
)
_RULE = r"(?:=+|[-~_]{3,})"
_WIDE_RULE = r"(?:={2,}|[-~_]{3,})"
_SP = r"[^\S\n]*"
# Anything a model reads as the opening or closing marker, on the skeleton.
_MARKER = re.compile(
    "|".join(
        [
            rf"(?:{_RULE}{_SP})?{_PHRASE}(?:{_SP}{_RULE})?",  # "END OF CONTEXT", with any rules around it
            rf"{_WIDE_RULE}{_SP}{_MARK}(?:{_SP}{_RULE})?",  # "===== CONTEXT =====", "== evidence"
            rf"(?m:^){_SP}{_MARK}{_SP}{_WIDE_RULE}",  # "CONTEXT =====" opening a line
            rf"={_SP}{_MARK}{_SP}=",  # "= CONTEXT ="
            rf"<{_SP}/?{_SP}{_MARK}{_SP}/?{_SP}>",  # "<context>", "</context>"
            "(?:" + "|".join(_word(w, r"[^a-z0-9\n]{1,3}") for w in ("context", "evidence")) + ")",  # spaced out
        ]
    )
)
_VOCABULARY = re.compile(r"beginning|begin|start|end|of|the|contexts?|evidence")


def defuse(text: str) -> str:
    """``text`` with every spelling of a context marker made inert, the rest of each line kept.

    Invisible characters are dropped and compatibility forms folded (full-width letters become plain ones);
    a marker becomes its words joined by dashes in brackets, e.g. ``(end-of-context)``, with no rule around it.
    """
    shape, origin = skeleton(text)
    out: list[str] = []
    done = 0
    for m in _MARKER.finditer(shape):
        start, end = origin[m.start()], origin[m.end() - 1] + 1
        words = _VOCABULARY.findall(re.sub(r"[^a-z]", "", m.group(0)))
        out += [_NON_ASCII.sub(_fold, text[done:start]), "(" + "-".join(words) + ")"]
        done = end
    return "".join(out) + _NON_ASCII.sub(_fold, text[done:])


_NON_ASCII = re.compile(r"[^\x00-\x7f]")


def _fold(m: re.Match[str]) -> str:
    """A character's NFKC form ("ｅ" is "e"), nothing for an invisible one; our truncation mark "…" stays."""
    ch = m.group(0)
    if invisible(ch):
        return ""
    return ch if ch == "…" else unicodedata.normalize("NFKC", ch)


def is_marker(text: str) -> bool:
    """Whether ``text`` holds anything a model would read as a context marker."""
    return _MARKER.search(skeleton(text)[0]) is not None


# Sentences that speak to the model rather than to a reader of the documentation.
_AIMED_AT_MODEL = re.compile(
    "|".join(
        [
            r"\b(?:ignore|disregard|forget|override|bypass)\b(?:\W+\w+){0,4}?\W+"
            r"(?:instructions?|rules|prompts?|guidelines|directions|directives)\b",
            r"\b(?:print|reveal|show|repeat|output|display|leak|dump|tell|give)\b(?:\W+\w+){0,3}?\W+"
            r"(?:system|hidden|initial|original|secret)\W+(?:prompt|instructions?|message)\b",
            r"\b(?:print|reveal|repeat|leak|dump)\W+(?:me\W+)?your\W+(?:prompt|instructions?|rules)\b",
            r"(?m:^)\W*(?:system|assistant)\W*:\W*(?:you|ignore|disregard|from\W+now|new\W+instructions?)\b",
            r"\byou\W+are\W+now\W+(?:an?\W+)?(?:unrestricted|jailbroken|unfiltered|\w+-bot|dan)\b",
            r"\b(?:reply|respond|answer)\W+(?:\w+\W+){0,3}?with\W+\w+\W+only\b",
            r"\b(?:reply|respond|answer)\W+only\W+with\b",
        ]
    )
)


def aimed_at_model(text: str) -> bool:
    """Whether ``text`` is a fence marker or an instruction addressed to a language model (never a fact)."""
    shape = skeleton(text)[0]
    return _MARKER.search(shape) is not None or _AIMED_AT_MODEL.search(shape) is not None
