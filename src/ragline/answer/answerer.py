"""The answer stage: hits -> evidence -> an answer (extractive, or generated and checked), streamed as events.

Every answer says how it was made (``mode``), whether it passed the grounding check (``grounded``) and, when a
generated answer was replaced by the extractive one, why (``fallback``). The stage takes the hits it is given:
retrieval is the agent's (ragline.agent), or another process's (a Serve retriever replica's).
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from ragline.answer.check import Check, Checker, add_citations
from ragline.answer.compose import NO_EVIDENCE, compose
from ragline.answer.conversation import fit_history, standalone_question
from ragline.answer.evidence import Evidence, Selector
from ragline.answer.repetition import RepetitionGuard
from ragline.config import BUNDLED_LLM, AnswerSettings, LLMSettings
from ragline.embed.base import Embedder
from ragline.errors import BadRequestError, LLMTimeoutError, LLMUnavailableError, RaglineError
from ragline.generate.base import Generator, Message
from ragline.generate.prompt import ANSWER_PROMPT, DEFAULT_MARGIN, EVIDENCE_PROMPT, HEDGE, build_messages
from ragline.limits import check_mode
from ragline.observability.tracing import traced
from ragline.records import Answer, Citation, Done, Draft, Event, Hit, Mode, Query, Retrieved, Token, Usage

log = logging.getLogger(__name__)


def default_mode(llm: LLMSettings) -> Mode:
    """Extractive with the bundled model (it rarely writes an answer that passes the check), auto otherwise."""
    bundled = llm.backend == "llama-cpp" and not llm.model_path and llm.model == BUNDLED_LLM
    return "extractive" if bundled else "auto"


def condenses_with_model(llm: LLMSettings, answer: AnswerSettings) -> bool:
    if answer.condense == "auto":
        return default_mode(llm) != "extractive"
    return answer.condense == "llm"


@dataclass(frozen=True, slots=True)
class Depth:
    """How many hits an answer is made from: the request's k, else ``blocks`` when a model reading whole
    sections writes it (``sections``), else None (the retriever's k)."""

    default_mode: Mode
    sections: bool
    blocks: int

    def k(self, query: Query) -> int | None:
        if query.k is not None or not self.sections:
            return query.k
        return self.blocks if (query.options.mode or self.default_mode) != "extractive" else None


@dataclass(slots=True)
class Generated:
    """The model's whole answer: its text, usage, finish reason and when its first piece came."""

    text: str
    usage: Usage
    finish_reason: str
    first: float | None


class Answerer:
    """Answers a question from the hits it is given; holds the language model, never the index."""

    def __init__(
        self,
        generator: Generator,
        settings: LLMSettings,
        answer: AnswerSettings | None = None,
        embedder: Embedder | None = None,
    ) -> None:
        self.generator = generator
        self.settings = settings
        self.answer_settings = answer or AnswerSettings()
        self.embedder = embedder  # scores evidence and checks answers: the index's embedding model

    def warm_up(self) -> None:
        self.generator.warm_up()

    def resolve_mode(self, mode: str | None) -> Mode:
        chosen = check_mode(mode or self.answer_settings.mode or default_mode(self.settings))
        assert chosen is not None
        return chosen

    def search_query(self, question: str, history: Sequence[Message]) -> str:
        """``question`` made standalone from the conversation, for retrieval."""
        capable = condenses_with_model(self.settings, self.answer_settings)
        return standalone_question(question, history, self.generator if capable else None)

    def answer(self, q: Query, hits: Sequence[Hit], *, started: float | None = None) -> Iterator[Event]:
        """The answer to ``q`` from ``hits``: Retrieved, Token..., Done.

        ``q.search_query`` is what retrieval searched for (the question when None); the evidence is chosen
        for it. The model sees the most recent turns of ``q.history`` that fit in a share of its window
        before the question. ``started``: when retrieval began, so that the timings count it.
        """
        question, max_tokens = q.question, q.options.max_tokens
        chosen = self.resolve_mode(q.options.mode)
        t1 = time.perf_counter()
        t0 = t1 if started is None else started
        turns, reserved = fit_history(q.history, self.generator) if q.history else ([], 0)
        query = q.search_query or question
        evidence = self.select(query, hits, sections=chosen != "extractive" and self.reads_sections())
        citations = [Citation(n, b.hit) for n, b in enumerate(evidence.blocks, start=1)]
        yield Retrieved(citations)
        timings = {"retrieve": t1 - t0}

        def done(text: str, made: str, check: Check, **fields: Any) -> Done:
            t = time.perf_counter()
            timings.update(total=t - t0)
            timings.setdefault("first_token", t - t0)
            answer = Answer(
                question=question,
                answer=text,
                citations=citations,
                llm=fields.pop("llm", "none (extractive)"),
                timings=timings,
                usage=fields.pop("usage", Usage()),
                mode=made,
                grounded=check.passed,
                check=check.to_json(),
                search_query=query if query != question else None,
                **fields,
            )
            return Done(answer)

        if chosen == "extractive" or not evidence.blocks:
            text, check, finish = self.extract(evidence, max_tokens)
            for piece in _paragraphs(text):
                yield Token(piece)
            timings["generate"] = 0.0
            yield done(text, "extractive", check, finish_reason=finish)
            return

        live = chosen == "generative"
        budget = max_tokens or self.settings.max_tokens
        window = self.generator.context_window - reserved  # the turns kept take the rest
        if max_tokens is not None and max_tokens >= window:
            raise BadRequestError(
                f"max_tokens ({max_tokens}) leaves no room for the question: the model reads {window} tokens "
                "at once, prompt and answer together (none are reserved for the answer in extractive mode)"
            )
        extracted: list[tuple[str, Check, str]] = []  # the extract, made once: the draft and any fallback

        def extract() -> tuple[str, Check, str]:
            if not extracted:
                extracted.append(self.extract(evidence, max_tokens))
            return extracted[0]

        if chosen == "auto" and self.answer_settings.draft and q.options.draft is not False:
            draft = extract()[0]
            if draft != NO_EVIDENCE:
                timings["draft"] = time.perf_counter() - t0
                yield Draft(draft)
        gen_started = time.perf_counter()
        try:
            generated: Generated | None = None
            temperature = self.settings.temperature if q.options.temperature is None else q.options.temperature
            for item in self.generate(question, turns, evidence, budget, temperature, live, window):
                if isinstance(item, Token):
                    yield item
                else:
                    generated = item
            assert generated is not None
        except (LLMUnavailableError, LLMTimeoutError) as e:
            if live:
                raise
            log.warning("the language model failed, answering extractively: %s", e)
            text, check, finish = extract()
            yield Token(text)
            timings["generate"] = time.perf_counter() - gen_started
            # The reason names no endpoint: answers reach clients, the URL and its credentials must not.
            reason = f"the language model is unavailable ({type(e).__name__})"
            yield done(text, "extractive", check, fallback=reason, finish_reason=finish)
            return
        timings["generate"] = time.perf_counter() - gen_started
        if generated.first is not None and live:
            timings["first_token"] = generated.first - t0
        if self.reads_sections() and not live:  # a live answer was shown as written
            generated.text = add_citations(
                generated.text, evidence, self.embedder, self.answer_settings.support_threshold
            )
        check = self.check(generated.text, evidence, written=True)
        model = {"llm": self.generator.name, "usage": generated.usage, "finish_reason": generated.finish_reason}
        if check.refused and not live:
            # Small models refuse questions the sections do answer: the closest passages follow the refusal,
            # so a reader still sees what the documentation says (docs/answers.md measures it).
            text, extract_check, finish = extract()
            if text != NO_EVIDENCE:
                text = hedged(text)
                yield Token(text)
                reason = "the model found no answer in the sections; the closest passages are shown"
                yield done(text, "extractive", extract_check, fallback=reason, **{**model, "finish_reason": finish})
                return
        if check.passed or live:
            if not live:
                yield Token(generated.text)
            yield done(generated.text, "generative", check, **model)
            return
        text, fallback_check, finish = extract()
        yield Token(text)
        reason = f"the generated answer did not pass the grounding check: {check.reason}"
        yield done(text, "extractive", fallback_check, fallback=reason, **{**model, "finish_reason": finish})

    # -- the steps ---------------------------------------------------------------------------------------

    def select(self, question: str, hits: Sequence[Hit], *, sections: bool = False) -> Evidence:
        """The evidence in ``hits``: the blocks with the best units; with ``sections`` (a model that reads
        whole sections), every block given, up to ``context_blocks``, in retrieval order."""
        s = self.answer_settings
        if sections:
            selector = Selector(
                self.embedder, max_blocks=s.context_blocks, units_per_block=s.evidence_units, min_share=None
            )
        else:
            selector = Selector(self.embedder, max_blocks=s.evidence_blocks, units_per_block=s.evidence_units)
        return selector(question, hits)

    @property
    def depth(self) -> Depth:
        """How many hits an answer is made from when the request sets no k."""
        s = self.answer_settings
        return Depth(s.mode or default_mode(self.settings), self.reads_sections(), s.context_blocks)

    def reads_sections(self) -> bool:
        """Whether the model reads whole sections (a capable model) or compact evidence (a tiny one)."""
        chosen = self.answer_settings.prompt
        if chosen == "auto":
            return bool(getattr(self.generator, "capable", True))
        return chosen == "sections"

    def check(self, text: str, evidence: Evidence, *, written: bool = False) -> Check:
        """The grounding check; a capable model's answer (``written``) is held to what matters: no invented
        names, most sentences supported by some block, a refusal taken as one."""
        lenient = written and self.reads_sections()
        return Checker(self.embedder, self.answer_settings.support_threshold, lenient=lenient)(text, evidence)

    def extract(self, evidence: Evidence, max_tokens: int | None = None) -> tuple[str, Check, str]:
        """The extractive answer, its check, and its finish reason: "length" when cut to ``max_tokens``."""
        s = self.answer_settings
        text = compose(evidence, min_evidence=s.min_evidence, max_sentences=s.max_sentences)
        finish = "stop"
        if max_tokens is not None and self._count_tokens(text) > max_tokens:
            text, finish = _cut_to_tokens(text, max_tokens, self._count_tokens), "length"
        return text, self.check(text, evidence), finish

    def _count_tokens(self, text: str) -> int:
        try:
            return self.generator.count_tokens(text)
        except RaglineError:  # no model to count with (extractive answers need none): about 3 characters each
            return (len(text) + 2) // 3

    def generate(
        self,
        question: str,
        history: list[Message],
        evidence: Evidence,
        max_tokens: int,
        temperature: float,
        live: bool,
        window: int | None = None,
    ) -> Iterator[Token | Generated]:
        """The model's answer from the evidence, last as a Generated; Tokens as sentences complete when ``live``.
        ``window``: the tokens the prompt and answer may take (default: the model's context window)."""
        window = self.generator.context_window if window is None else window
        if self.reads_sections():
            # Whole sections, within the prompt budget (blocks past it are left out, the first one cut to fit).
            blocks, system = [b.hit for b in evidence.blocks], ANSWER_PROMPT
            window = min(window, self.answer_settings.context_tokens + max_tokens + DEFAULT_MARGIN)
        else:
            blocks = [Hit(dataclasses.replace(b.hit.chunk, text=b.text()), b.hit.score) for b in evidence.blocks]
            system = EVIDENCE_PROMPT
        messages, _used = build_messages(
            question,
            blocks,
            count_tokens=self.generator.count_tokens,
            context_window=window,
            max_answer_tokens=max_tokens,
            system=system,
            urls=False,
        )
        if history:
            messages = [messages[0], *history, *messages[1:]]
        guard = RepetitionGuard()
        parts: list[str] = []
        written: list[str] = []  # everything the model wrote, what the guard held back included
        usage = Usage()
        first: float | None = None
        stream = self.generator.stream(messages, max_tokens=max_tokens, temperature=temperature)
        try:
            for delta in traced("generate", stream, model=self.generator.name):
                if delta.usage is not None:
                    usage = delta.usage
                written.append(delta.text or "")
                for piece in guard.feed(delta.text) if delta.text else ():
                    first = first or time.perf_counter()
                    parts.append(piece)
                    if live:
                        yield Token(piece)
                if guard.stopped:
                    break
        finally:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        for piece in guard.flush():
            first = first or time.perf_counter()
            parts.append(piece)
            if live:
                yield Token(piece)
        if usage.completion_tokens == 0 and any(written):  # stopped before the model reported its usage
            usage = self._counted_usage(messages, "".join(written))
        cut = not guard.stopped and usage.completion_tokens >= max_tokens
        yield Generated("".join(parts).strip(), usage, "length" if cut else "stop", first)

    def _counted_usage(self, messages: list[Message], written: str) -> Usage:
        """The usage of a stream the guard stopped early, counted with the model's own tokenizer."""
        count_prompt = getattr(self.generator, "count_prompt_tokens", None)
        if callable(count_prompt):
            prompt = int(count_prompt(messages))
        else:
            prompt = sum(self._count_tokens(m["content"]) for m in messages)
        return Usage(prompt_tokens=prompt, completion_tokens=self._count_tokens(written))


def hedged(extract: str) -> str:
    """An extractive answer shown after a model's refusal: said to be the closest passages, not the answer."""
    return f"{HEDGE}\n\n{extract}"


def _cut_to_tokens(text: str, max_tokens: int, count: Callable[[str], int]) -> str:
    """The longest run of ``text``'s first words that holds at most ``max_tokens`` tokens."""
    words = text.split(" ")
    low, high = 0, len(words)  # the first ``low`` words fit; ``high`` words do not
    while high - low > 1:
        mid = (low + high) // 2
        if count(" ".join(words[:mid])) <= max_tokens:
            low = mid
        else:
            high = mid
    return " ".join(words[:low]).rstrip()


def _paragraphs(text: str) -> list[str]:
    pieces = text.split("\n\n")
    return [p + ("\n\n" if i < len(pieces) - 1 else "") for i, p in enumerate(pieces)]
