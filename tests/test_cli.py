"""The command line as a user runs it: real subprocesses, real model, real embedded index."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ragline.ray_local import free_port

pytestmark = pytest.mark.slow


def ragline(*args: str, data_dir: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "RAGLINE_DATA_DIR": str(data_dir), **(env or {})}
    return subprocess.run(
        [sys.executable, "-m", "ragline.cli", *args],
        capture_output=True,
        text=True,
        env=full_env,
        timeout=600,
    )


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("docs")
    (d / "install.md").write_text(
        "# Installing Widgetron\n\nRun `pip install widgetron` to install it.\n\n"
        "## Upgrading\n\nUpgrade with `pip install -U widgetron` every spring.\n"
    )
    (d / "guide.rst").write_text(
        "Configuration\n=============\n\nSet the :envvar:`WIDGET_COLOUR` variable to choose the colour.\n\n"
        ".. note::\n\n   Blue is the default colour.\n"
    )
    (d / "empty.md").write_text("")
    (d / "binary.html").write_bytes(b"\x00\x01\x02PNG\x00" * 100)
    (d / "latin1.md").write_bytes("caf\xe9 cr\xe8me".encode("latin-1"))
    (d / "huge.md").write_text("x" * 2_000)
    return d


@pytest.fixture(scope="module")
def ingested(folder: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:  # type: ignore[type-arg]
    data = tmp_path_factory.mktemp("data")
    r = ragline("ingest", str(folder), "--json", data_dir=data, env={"RAGLINE_PARSE__MAX_FILE_BYTES": "1000"})
    assert r.returncode == 0, r.stderr
    return data, json.loads(r.stdout)


def test_ingest_reports_bad_files_and_keeps_going(ingested) -> None:  # type: ignore[no-untyped-def]
    _, report = ingested
    keys = ("documents", "chunks_written", "index_chunks", "added", "updated", "deleted", "unchanged", "skipped")
    for key in (*keys, "seconds"):
        assert key in report
    assert report["documents"] == 2 and report["added"] == 2
    skipped = {Path(s["source"]).name: s["reason"] for s in report["skipped"]}
    assert set(skipped) == {"empty.md", "binary.html", "latin1.md", "huge.md"}
    assert "empty" in skipped["empty.md"].lower()
    assert "binary" in skipped["binary.html"].lower()
    assert "utf-8" in skipped["latin1.md"].lower()
    assert "big" in skipped["huge.md"].lower() or "large" in skipped["huge.md"].lower()


def test_search_json_with_filter(ingested) -> None:  # type: ignore[no-untyped-def]
    data, _ = ingested
    r = ragline("search", "how do I choose the colour", "--k", "1", "--json", data_dir=data)
    assert r.returncode == 0, r.stderr
    hits = json.loads(r.stdout)["hits"]
    assert len(hits) == 1
    assert hits[0]["source"].endswith("guide.rst#configuration")
    assert "WIDGET_COLOUR" in hits[0]["text"] and ":envvar:" not in hits[0]["text"]
    assert set(hits[0]) >= {"source", "title", "chunk_id", "score", "text"}
    r = ragline("search", "colour", "--json", "--filter", "type=markdown", data_dir=data)
    assert {Path(h["source"].split("#")[0]).name for h in json.loads(r.stdout)["hits"]} == {"install.md"}


def test_ask_json_streams_and_cites(ingested) -> None:  # type: ignore[no-untyped-def]
    data, _ = ingested
    r = ragline(
        "ask",
        "How do I upgrade widgetron to a newer version?",
        "--k",
        "2",
        "--json",
        data_dir=data,
        env={"RAGLINE_LLM__MAX_TOKENS": "48"},
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert set(out) >= {"question", "answer", "citations", "document_ids", "llm", "timings", "usage"}
    assert out["citations"][0]["source"].endswith("install.md#upgrading")
    r = ragline(
        "ask",
        "How do I upgrade widgetron to a newer version?",
        "--k",
        "2",
        "--stream",
        data_dir=data,
        env={"RAGLINE_LLM__MAX_TOKENS": "32"},
    )
    assert r.returncode == 0, r.stderr
    assert "Sources" in r.stdout and "install.md#upgrading" in r.stdout


def test_ask_shows_the_draft_labelled_before_the_model_answer(ingested) -> None:  # type: ignore[no-untyped-def]
    data, _ = ingested
    question = ["ask", "How do I upgrade widgetron to a newer version?", "--k", "2", "--mode", "auto"]
    env = {"RAGLINE_LLM__MAX_TOKENS": "32"}
    r = ragline(*question, "--stream", data_dir=data, env=env)
    assert r.returncode == 0, r.stderr
    label, answer = r.stdout.find("Draft from the documentation"), r.stdout.find("Answer:")
    assert 0 <= label < r.stdout.find("pip install -U widgetron") < answer, r.stdout
    # Piped without --stream, nobody reads a draft before the answer: none is made, unless asked for.
    r = ragline(*question, data_dir=data, env=env)
    assert r.returncode == 0 and "Draft" not in r.stdout and "Answer:" not in r.stdout, r.stdout
    r = ragline(*question, "--draft", data_dir=data, env=env)
    assert r.returncode == 0 and 0 <= r.stdout.find("Draft from") < r.stdout.find("Answer:"), r.stdout
    r = ragline(*question, "--stream", "--no-draft", data_dir=data, env=env)
    assert r.returncode == 0 and "Draft" not in r.stdout, r.stdout


def test_asking_an_empty_index_says_so(tmp_path: Path) -> None:
    r = ragline("ask", "anything?", data_dir=tmp_path / "nothing")
    assert r.returncode == 4
    assert "ragline ingest" in r.stderr and "Traceback" not in r.stderr


def test_unreachable_llm_names_the_url(ingested) -> None:  # type: ignore[no-untyped-def]
    """Generative mode fails with the URL; auto (the default with a configured endpoint) answers extractively."""
    data, _ = ingested
    port = free_port()  # nothing listens there
    url = f"http://127.0.0.1:{port}/v1"
    env = {"RAGLINE_LLM__BACKEND": "openai", "RAGLINE_LLM__BASE_URL": url, "RAGLINE_LLM__MAX_RETRIES": "0"}
    r = ragline("ask", "How do I upgrade widgetron?", "--mode", "generative", data_dir=data, env=env)
    assert r.returncode == 5
    assert url in r.stderr and "Traceback" not in r.stderr

    r = ragline("ask", "How do I upgrade widgetron?", "--json", data_dir=data, env=env)
    assert r.returncode == 0, r.stderr
    answer = json.loads(r.stdout)
    assert answer["mode"] == "extractive" and "unavailable" in answer["fallback"]
    assert url not in r.stdout and "[1]" in answer["answer"]
    assert url in r.stderr  # the operator's log names the endpoint


def test_model_mismatch_is_refused_with_a_way_out(ingested, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    import shutil

    from ragline.embed.models import bundled_minilm_dir

    data, _ = ingested
    other = tmp_path / "another-model"  # the same weights under another name: a different model to the index
    shutil.copytree(bundled_minilm_dir(), other)
    r = ragline("search", "colour", data_dir=data, env={"RAGLINE_EMBEDDING__MODEL": str(other)})
    assert r.returncode == 4, r.stderr
    assert "--recreate" in r.stderr and "Traceback" not in r.stderr


def test_ingest_reads_included_code_from_an_include_path(tmp_path: Path) -> None:
    pages, code = tmp_path / "pages", tmp_path / "code"
    (pages / "guide").mkdir(parents=True)
    (code / "guide" / "doc_code").mkdir(parents=True)
    (code / "guide" / "doc_code" / "retry.py").write_text(
        "# __retry_start__\n@ray.remote(max_retries=5, retry_exceptions=True)\ndef flaky_fetch(url):\n"
        "    return download(url)\n# __retry_end__\n"
    )
    (pages / "guide" / "tasks.rst").write_text(
        "Tasks\n=====\n\nRetrying failed tasks\n---------------------\n\nAn example:\n\n"
        ".. literalinclude:: doc_code/retry.py\n    :start-after: __retry_start__\n    :end-before: __retry_end__\n"
    )
    data = tmp_path / "data"
    r = ragline("ingest", str(pages), "--include-path", str(code), "--json", data_dir=data)
    assert r.returncode == 0, r.stderr
    r = ragline("search", "flaky_fetch max_retries", "--k", "1", "--json", data_dir=data)
    assert r.returncode == 0, r.stderr
    hit = json.loads(r.stdout)["hits"][0]
    assert hit["source"].endswith("tasks.rst#retrying-failed-tasks")
    assert "@ray.remote(max_retries=5, retry_exceptions=True)" in hit["text"] and "__retry_" not in hit["text"]


def test_the_ingest_report_counts_this_runs_chunks_apart_from_the_index(tmp_path: Path) -> None:
    docs, data = tmp_path / "docs", tmp_path / "data"
    docs.mkdir()
    for name in ("alpha", "beta", "gamma"):
        (docs / f"{name}.md").write_text(f"# {name.title()}\n\nThe {name} page says one short thing.\n")
    first = ragline("ingest", str(docs), "--json", data_dir=data)
    assert first.returncode == 0, first.stderr
    (docs / "delta.md").write_text("# Delta\n\n## One\n\nA first section.\n\n## Two\n\nA second section.\n")
    second = ragline("ingest", str(docs), "--json", data_dir=data)
    assert second.returncode == 0, second.stderr
    report = json.loads(second.stdout)
    assert "chunks" not in report  # a bare count beside this run's documents read as this run's
    assert (report["documents"], report["added"], report["unchanged"]) == (4, 1, 3)
    assert report["chunks_written"] == 2  # delta's two sections, nothing else re-embedded
    assert report["index_chunks"] == json.loads(first.stdout)["index_chunks"] + 2 == 5

    again = ragline("ingest", str(docs), data_dir=data)
    assert again.returncode == 0, again.stderr
    assert "0 chunks written" in again.stdout and "the index holds 5 chunks" in again.stdout


def test_ask_shows_relative_sources_under_the_citation_base_url(folder: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    r = ragline("ingest", str(folder / "install.md"), "--url-template", "docs/{path}", data_dir=data)
    assert r.returncode == 0, r.stderr
    base = {"RAGLINE_ANSWER__CITATION_BASE_URL": "https://example.org/widgetron"}
    r = ragline("ask", "How do I upgrade widgetron?", data_dir=data, env=base)
    assert r.returncode == 0, r.stderr
    assert "https://example.org/widgetron/docs/install.md#upgrading" in r.stdout, r.stdout
    r = ragline("ask", "How do I upgrade widgetron?", "--json", data_dir=data, env=base)
    sources = {c["source"] for c in json.loads(r.stdout)["citations"]}
    assert "docs/install.md#upgrading" in sources  # the data as ingested


def test_version(tmp_path: Path) -> None:
    from ragline import __version__

    r = ragline("--version", data_dir=tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == f"ragline {__version__}"


def test_with_json_errors_come_out_as_json(tmp_path: Path) -> None:
    usage = ragline("search", "--json", "--no-such-option", data_dir=tmp_path)
    assert usage.returncode == 2
    assert json.loads(usage.stdout)["error"] == {
        "type": "UsageError",
        "message": "No such option: --no-such-option",
        "exit_code": 2,
    }
    empty = ragline("search", "anything", "--json", data_dir=tmp_path / "nothing-here")
    error = json.loads(empty.stdout)["error"]
    assert empty.returncode == 4 == error["exit_code"] and error["type"] == "EmptyIndexError"
    assert "ragline ingest" in error["message"]
    # Without --json the same error is one line on stderr and nothing on stdout.
    plain = ragline("search", "anything", data_dir=tmp_path / "nothing-here")
    assert plain.returncode == 4 and plain.stdout == "" and plain.stderr.startswith("error: ")


def test_an_unknown_settings_key_stops_the_command(tmp_path: Path) -> None:
    (tmp_path / "typo.toml").write_text('[llm]\nmodle = "x"\n')
    r = ragline("search", "x", "--json", data_dir=tmp_path, env={"RAGLINE_CONFIG": str(tmp_path / "typo.toml")})
    error = json.loads(r.stdout)["error"]
    assert r.returncode == 2 and error["type"] == "ConfigError" and "llm.modle" in error["message"]
    missing = ragline("status", data_dir=tmp_path, env={"RAGLINE_CONFIG": str(tmp_path / "absent.toml")})
    assert missing.returncode == 2 and "absent.toml" in missing.stderr


@pytest.mark.parametrize(
    "toml, env, named",
    [
        ("[llm\nmodel = 1\n", {}, "ragline.toml: not valid TOML: Expected ']' at the end of a table declaration"),
        (None, {"RAGLINE_SERVE__API_KEYS": "not json"}, "RAGLINE_SERVE__API_KEYS: not valid JSON ("),
        (None, {"RAGLINE_LLM__MAX_TOKENS": "abc"}, "invalid settings: RAGLINE_LLM__MAX_TOKENS: Input should be"),
    ],
)
def test_a_settings_mistake_is_one_line_and_exit_2(
    tmp_path: Path, toml: str | None, env: dict[str, str], named: str
) -> None:
    if toml is not None:  # named by path, so the message starts with the path
        (tmp_path / "ragline.toml").write_text(toml)
        env = {**env, "RAGLINE_CONFIG": str(tmp_path / "ragline.toml")}
        named = f"{tmp_path}/{named} (at line 1, column 5)"
    plain = ragline("status", data_dir=tmp_path / "data", env=env)
    assert plain.returncode == 2 and plain.stdout == ""
    assert plain.stderr.count("\n") == 1 and plain.stderr.startswith(f"error: {named}")
    as_json = ragline("status", "--json", data_dir=tmp_path / "data", env=env)
    assert as_json.returncode == 2 and as_json.stderr == ""
    error = json.loads(as_json.stdout)["error"]
    assert error["type"] == "ConfigError" and error["exit_code"] == 2 and named in error["message"]


@pytest.mark.parametrize("tenant", ["", "  "], ids=["empty", "blank"])
def test_a_blank_tenant_is_refused_as_the_library_refuses_it(folder: Path, tmp_path: Path, tenant: str) -> None:
    for watch in ((), ("--watch",)):  # refused before the first run, so a watch does not retry it forever
        r = ragline("ingest", str(folder), "--tenant", tenant, *watch, data_dir=tmp_path / "data")
        assert r.returncode == 2 and r.stdout == ""
        assert r.stderr.count("\n") == 1 and r.stderr.startswith("error: the tenant is empty")
    assert not (tmp_path / "data" / "last-ingest.json").exists()
