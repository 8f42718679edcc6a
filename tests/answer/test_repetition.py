"""The repetition guard: text goes out a sentence at a time, and a loop ends the generation."""

from __future__ import annotations

from ragline.answer.repetition import RepetitionGuard


def _run(pieces: list[str]) -> tuple[str, bool]:
    guard = RepetitionGuard()
    out: list[str] = []
    for p in pieces:
        out += guard.feed(p)
        if guard.stopped:
            break
    out += guard.flush()
    return "".join(out), guard.stopped


def test_text_passes_through_whole_when_it_does_not_repeat() -> None:
    text = "Set the URL [1]. Then restart the server [1].\n\n```\nexport A=1\n```\nDone."
    out, stopped = _run([text[i : i + 7] for i in range(0, len(text), 7)])
    assert out == text and not stopped


def test_a_repeated_sentence_stops_before_the_repeat() -> None:
    s = "The Qdrant server can be used to run a machine-readable object. "
    out, stopped = _run([s, "It is fast. ", s, "More text."])
    assert stopped and out == s + "It is fast. "


def test_a_phrase_looping_inside_one_endless_sentence_stops() -> None:
    loop = "and the server runs the engine on the GPU " * 12
    out, stopped = _run([loop])
    assert stopped and out == ""


def test_a_code_line_repeated_three_times_stops() -> None:
    line = "    result = client.search(collection_name, vector)\n"
    out, stopped = _run(["```\n", line, line, line, line])
    assert stopped and out.count("client.search") == 2


def test_nothing_comes_out_once_stopped() -> None:
    guard = RepetitionGuard()
    s = "This sentence is long enough to count. "
    guard.feed(s + s)
    assert guard.stopped and guard.feed("More text. ") == [] and guard.flush() == []
