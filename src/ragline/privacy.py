"""Privacy helpers: redaction of personal data and secrets at ingest, and query text kept out of logs.

Redaction replaces e-mail addresses, phone numbers, IP addresses and secrets (API keys, tokens, private
keys) with typed placeholders such as ``[EMAIL]``. It runs on a parsed document's titles and section
texts before offsets, content hashes, chunks and embeddings are computed, so nothing downstream ever
holds the original values; only counts by kind are reported. The patterns favour precision on
documentation text: version numbers, dates, ports, loopback addresses and placeholders such as
``YOUR_API_KEY`` are left alone.
"""

from __future__ import annotations

import hashlib
import ipaddress
import re
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass

from ragline.records import Document, Section

__all__ = [
    "KINDS",
    "PLACEHOLDERS",
    "Redactor",
    "add_counts",
    "query_ref",
    "redact_document",
    "redact_text",
]

KINDS = ("secret", "email", "ip", "phone")
PLACEHOLDERS = {"secret": "[SECRET]", "email": "[EMAIL]", "ip": "[IP]", "phone": "[PHONE]"}

# Tokens with a recognisable shape, redacted whole.
_TOKEN_RE = re.compile(
    r"-----BEGIN (?:[A-Z0-9]+ )*PRIVATE KEY-----[\s\S]{0,20000}?-----END (?:[A-Z0-9]+ )*PRIVATE KEY-----"
    r"|(?<![\w-])(?:"
    r"sk-(?:proj-|ant-|live-|test-)?[A-Za-z0-9_-]{20,}"  # OpenAI, Anthropic, Stripe-style keys
    r"|(?:AKIA|ASIA)[0-9A-Z]{16}"  # AWS access key ids
    r"|gh[pousr]_[A-Za-z0-9]{30,}"  # GitHub tokens
    r"|github_pat_[A-Za-z0-9_]{22,}"
    r"|xox[abposr]-[A-Za-z0-9-]{10,}"  # Slack
    r"|glpat-[A-Za-z0-9_-]{20,}"  # GitLab
    r"|AIza[0-9A-Za-z_-]{35}"  # Google API keys
    r"|eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"  # JWTs
    r")(?![\w-])"
)
# "Bearer <token>" and "api_key = '<value>'": the name stays, the value goes.
_BEARER_RE = re.compile(r"\b(Bearer|Basic|Token)(\s+)([A-Za-z0-9._~+/=-]{16,})", re.IGNORECASE)
_ASSIGNMENT_RE = re.compile(
    r"""(?ix)
    \b([\w.-]{0,40}(?:api[_-]?key|secret|token|passw(?:or)?d|access[_-]?key|auth)[\w-]{0,40})  # the name
    (["']?\s*[:=]\s*)                     # = or : (JSON keys keep their closing quote here)
    (["']?)([^\s"'`,;()\[\]{}<>$]{12,})\3   # the value, quoted or bare
    """
)
_EMAIL_RE = re.compile(
    r"(?<![\w.+%-])[A-Za-z0-9][A-Za-z0-9._%+-]{0,63}@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"[A-Za-z]{2,24}(?![\w-])"
)
_IPV4_RE = re.compile(r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w]|\.\d)")
_IPV6_RE = re.compile(r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:[0-9A-Fa-f]{1,4}|(?:\d{1,3}\.){3}\d{1,3})?(?![\w:])")
# International (+CC ...) or North American (555) 123-4567 / 555-123-4567 numbers only: plain digit runs,
# dates, versions and ports are not phone numbers often enough to be worth the damage.
_PHONE_RE = re.compile(
    r"(?<![\w+])\+\d{1,3}(?:[ .-]?\(?\d{1,5}\)?){2,6}(?![\w-])"
    r"|(?<![\w(])\(\d{3}\) ?\d{3}[ .-]\d{4}(?![\w-])"
    r"|(?<![\w.-])\d{3}([.-])\d{3}\1\d{4}(?![\w-]|\.\d)"
)
_NOT_EMAIL_LOCALS = frozenset({"git"})  # git@github.com:org/repo is an SSH remote, not a person
_PLACEHOLDER_WORDS = ("your", "xxxx", "example", "placeholder", "changeme", "redacted", "secret_key_here")


def _has_letter_and_digit(value: str) -> bool:
    return any(c.isdigit() for c in value) and any(c.isalpha() for c in value)


def _looks_placeholder(value: str) -> bool:
    low = value.lower()
    return any(word in low for word in _PLACEHOLDER_WORDS) or "..." in value


def _ipv4_ok(text: str) -> bool:
    try:
        ip = ipaddress.IPv4Address(text)
    except ValueError:
        return False
    # Loopback, "any" and netmasks say nothing about anyone.
    return not (ip.is_loopback or ip.is_unspecified or text.startswith("255.") or ip.is_multicast)


def _ipv6_ok(text: str) -> bool:
    groups = [g for g in re.split(r"::?", text) if g]
    if "::" not in text and text.count(":") < 7:
        return False
    # Short forms like 1::2 are slices in code examples far more often than addresses.
    if len(groups) < 3 and max((len(g) for g in groups), default=0) < 4:
        return False
    try:
        ip = ipaddress.IPv6Address(text)
    except ValueError:
        return False
    return not (ip.is_loopback or ip.is_unspecified)


def _phone_ok(text: str) -> bool:
    digits = sum(c.isdigit() for c in text)
    return 8 <= digits <= 15 if text.startswith("+") else digits == 10


@dataclass(frozen=True, slots=True)
class _Rule:
    kind: str
    pattern: re.Pattern[str]
    replace: Callable[[re.Match[str]], str | None]  # the replacement, or None to keep the match


def _whole(kind: str, check: Callable[[str], bool] | None = None) -> Callable[[re.Match[str]], str | None]:
    def replace(m: re.Match[str]) -> str | None:
        return PLACEHOLDERS[kind] if check is None or check(m.group(0)) else None

    return replace


def _bearer(m: re.Match[str]) -> str | None:
    token = m.group(3)
    if not _has_letter_and_digit(token) or _looks_placeholder(token):
        return None
    return f"{m.group(1)}{m.group(2)}{PLACEHOLDERS['secret']}"


def _assignment(m: re.Match[str]) -> str | None:
    value = m.group(4)
    if not _has_letter_and_digit(value) or _looks_placeholder(value) or "[" in value:
        return None
    quote = m.group(3)
    return f"{m.group(1)}{m.group(2)}{quote}{PLACEHOLDERS['secret']}{quote}"


def _email(m: re.Match[str]) -> str | None:
    local = m.group(0).split("@", 1)[0].lower()
    return None if local in _NOT_EMAIL_LOCALS else PLACEHOLDERS["email"]


# Secrets first (a JWT or key may hold digit runs), then e-mails (before IPs: user@10.0.0.1 style hosts).
_RULES: tuple[_Rule, ...] = (
    _Rule("secret", _TOKEN_RE, _whole("secret")),
    _Rule("secret", _BEARER_RE, _bearer),
    _Rule("secret", _ASSIGNMENT_RE, _assignment),
    _Rule("email", _EMAIL_RE, _email),
    _Rule("ip", _IPV4_RE, _whole("ip", _ipv4_ok)),
    _Rule("ip", _IPV6_RE, _whole("ip", _ipv6_ok)),
    _Rule("phone", _PHONE_RE, _whole("phone", _phone_ok)),
)


class Redactor:
    """Redacts the chosen kinds (default: all) from texts, counting what it replaced by kind."""

    def __init__(self, kinds: Iterable[str] = KINDS) -> None:
        wanted = set(kinds)
        unknown = wanted - set(KINDS)
        if unknown:
            raise ValueError(f"unknown redaction kinds {sorted(unknown)}; known: {', '.join(KINDS)}")
        self.kinds = tuple(k for k in KINDS if k in wanted)
        self._rules = [r for r in _RULES if r.kind in wanted]

    def redact(self, text: str, counts: Counter[str] | None = None) -> str:
        """``text`` with every match replaced; ``counts`` (if given) gains one per replacement."""
        tally: Counter[str] = Counter() if counts is None else counts
        for rule in self._rules:

            def sub(m: re.Match[str], r: _Rule = rule) -> str:
                new = r.replace(m)
                if new is None:
                    return m.group(0)
                tally[r.kind] += 1
                return new

            text = rule.pattern.sub(sub, text)
        return text


def redact_text(text: str, kinds: Iterable[str] = KINDS) -> tuple[str, dict[str, int]]:
    """``text`` redacted, and how many values of each kind were replaced."""
    counts: Counter[str] = Counter()
    return Redactor(kinds).redact(text, counts), dict(counts)


def redact_document(doc: Document, redactor: Redactor) -> Document:
    """A copy of ``doc`` with titles and section texts redacted, offsets rebuilt; counts in ``redacted``."""
    counts: Counter[str] = Counter()
    sections = [
        Section(
            title=redactor.redact(s.title, counts),
            text=redactor.redact(s.text, counts),
            anchor=s.anchor,
            level=s.level,
        )
        for s in doc.sections
    ]
    out = Document.from_sections(
        source=doc.source,
        title=redactor.redact(doc.title, counts),
        kind=doc.kind,
        sections=sections,
        path=doc.path,
        metadata=doc.metadata,
    )
    out.redacted = dict(counts)
    return out


def add_counts(total: dict[str, int], more: Mapping[str, int]) -> None:
    """Add ``more`` into ``total`` (redaction counts of several documents)."""
    for kind, n in more.items():
        total[kind] = total.get(kind, 0) + n


def query_ref(text: str, verbatim: bool = False) -> str:
    """How a query appears in logs: a short hash and its length, or the text itself when ``verbatim``.

    The hash lets an operator match log lines of one query without the logs holding what was asked.
    """
    if verbatim:
        return repr(text)
    digest = hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=6).hexdigest()
    return f"<query {digest}, {len(text)} chars>"
