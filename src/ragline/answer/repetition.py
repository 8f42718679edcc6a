"""Stops a generation that starts repeating itself, and passes the text on a sentence at a time.

Small models loop ("The Qdrant server can be used to ... The Qdrant server can be used to ..."). Text is
released once a sentence (or a code line) is complete; a sentence seen before, or a phrase that keeps coming
back inside one endless sentence, ends the generation there, without the repeat.
"""

from __future__ import annotations

import re
from collections import Counter

_END = re.compile(r"(?<=[.!?])\s+|\n")
_MIN_SENTENCE = 12
_LOOP_WORDS = 6  # a run of this many words that comes back ...
_LOOP_TIMES = 3  # ... this often inside one unfinished sentence is a loop
_LONG_UNFINISHED = 300


def _key(sentence: str) -> str:
    return " ".join(re.sub(r"\[[\d,\s]+\]", "", sentence).lower().split()).strip(" .")


class RepetitionGuard:
    def __init__(self) -> None:
        self.buffer = ""
        self.seen: set[str] = set()
        self.code_lines: Counter[str] = Counter()
        self.in_code = False
        self.stopped = False

    def feed(self, text: str) -> list[str]:
        """The complete pieces ``text`` finishes, in order; [] once stopped."""
        if self.stopped:
            return []
        self.buffer += text
        out: list[str] = []
        while not self.stopped:
            match = _END.search(self.buffer)
            if match is None:
                if len(self.buffer) > _LONG_UNFINISHED and self._loops(self.buffer):
                    self.stopped = True
                break
            piece, self.buffer = self.buffer[: match.end()], self.buffer[match.end() :]
            if self._repeats(piece):
                self.stopped = True
                break
            out.append(piece)
        return out

    def flush(self) -> list[str]:
        """What is left when the model has finished."""
        rest, self.buffer = self.buffer, ""
        if self.stopped or not rest or self._repeats(rest):
            return []
        return [rest]

    def _repeats(self, piece: str) -> bool:
        stripped = piece.strip()
        if stripped.startswith("```"):
            self.in_code = not self.in_code
            return False
        if self.in_code:
            if len(stripped) >= 20:
                self.code_lines[stripped] += 1
                return self.code_lines[stripped] >= _LOOP_TIMES
            return False
        key = _key(stripped)
        if len(key) < _MIN_SENTENCE:
            return False
        if key in self.seen:
            return True
        self.seen.add(key)
        return False

    @staticmethod
    def _loops(text: str) -> bool:
        words = text.lower().split()
        runs = Counter(tuple(words[i : i + _LOOP_WORDS]) for i in range(len(words) - _LOOP_WORDS + 1))
        return bool(runs) and max(runs.values()) >= _LOOP_TIMES
