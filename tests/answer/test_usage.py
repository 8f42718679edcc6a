"""A generated answer that the repetition guard stops keeps its token usage (plumbing, scripted model)."""

from __future__ import annotations

from fakes import ScriptedGenerator

from ragline.answer.answerer import Answerer
from ragline.answer.evidence import Evidence, EvidenceBlock, Unit
from ragline.config import LLMSettings
from ragline.records import Chunk, Hit, Usage

TEXT = "Turn the blue lever three times clockwise."


def test_an_answer_stopped_by_the_guard_counts_its_tokens() -> None:
    chunk = Chunk(
        doc_id="d", source="https://docs.acme.example/flux.html", title="Flux", section="Calibrating",
        anchor="calibrating", text=TEXT, start=0, end=len(TEXT), index=0,
    )  # fmt: skip
    evidence = Evidence("How do I calibrate it?", [EvidenceBlock(Hit(chunk, 0.9), [Unit(TEXT, False, 0)])])
    # Says one sentence again and again; reports usage only at the end, as streaming servers do.
    looping = ScriptedGenerator([TEXT + " "] * 20, usage=Usage(prompt_tokens=999, completion_tokens=999))
    answerer = Answerer(looping, LLMSettings())
    *_, generated = answerer.generate("How do I calibrate it?", [], evidence, 64, 0.0, live=False)
    assert generated.text.count("blue lever") == 1  # the guard stopped the loop at the repeat
    usage = generated.usage
    assert usage.completion_tokens == 2 * len(TEXT.split())  # what the model wrote up to the stop
    assert usage.prompt_tokens > 50 and usage.prompt_tokens != 999  # counted, not the report it never sent
    assert generated.finish_reason == "stop"
