"""The settings tree: sources, strictness and secrets."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import SecretStr, ValidationError

from ragline.config import load_settings
from ragline.errors import ConfigError


@pytest.fixture(autouse=True)
def clean(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No RAGLINE_* from the outside, and a working directory without a ragline.toml."""
    import os

    for name in list(os.environ):
        if name.startswith("RAGLINE_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def test_a_file_named_by_ragline_config_is_read(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "other.toml").write_text('[llm]\nmodel = "from-the-file"\n[retrieval]\nk = 7\n')
    monkeypatch.setenv("RAGLINE_CONFIG", str(tmp_path / "other.toml"))
    s = load_settings()
    assert (s.llm.model, s.retrieval.k) == ("from-the-file", 7)


def test_environment_wins_over_the_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ragline.toml").write_text("[retrieval]\nk = 7\n")
    monkeypatch.setenv("RAGLINE_RETRIEVAL__K", "9")
    assert load_settings().retrieval.k == 9


def test_a_missing_file_named_by_ragline_config_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGLINE_CONFIG", "does-not-exist.toml")
    with pytest.raises(ConfigError, match=r"does-not-exist\.toml"):
        load_settings()


@pytest.mark.parametrize(
    "toml, where",
    [
        ('dat_dir = "x"\n', ("dat_dir",)),
        ('[llm]\nmodle = "x"\n', ("llm", "modle")),
        ("[serve.generator]\nmax_replica = 2\n", ("serve", "generator", "max_replica")),
        ("[observability]\nlog_fromat = 'text'\n", ("observability", "log_fromat")),
    ],
)
def test_an_unknown_key_in_the_file_is_an_error(tmp_path: Path, toml: str, where: tuple[str, ...]) -> None:
    (tmp_path / "ragline.toml").write_text(toml)
    with pytest.raises(ValidationError) as caught:
        load_settings()
    (error,) = caught.value.errors()
    assert error["type"] == "extra_forbidden" and tuple(error["loc"]) == where


def test_an_unknown_nested_environment_key_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGLINE_LLM__MODLE", "x")
    with pytest.raises(ValidationError, match="modle"):
        load_settings()


def test_secrets_are_secret_strings_and_never_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGLINE_LLM__API_KEY", "sk-llm-123")
    monkeypatch.setenv("RAGLINE_QDRANT_API_KEY", "qd-456")
    monkeypatch.setenv("RAGLINE_SERVE__API_KEYS", '{"tenant-key-789": "acme"}')
    monkeypatch.setenv("RAGLINE_SERVE__ADMIN_API_KEYS", '["admin-000"]')
    s = load_settings()
    assert isinstance(s.llm.api_key, SecretStr) and s.llm.api_key.get_secret_value() == "sk-llm-123"
    assert s.qdrant.api_key is not None and s.qdrant.api_key.get_secret_value() == "qd-456"
    (key,) = s.serve.api_keys
    assert key.get_secret_value() == "tenant-key-789" and s.serve.api_keys[key] == "acme"
    shown = repr(s) + str(s) + s.model_dump_json()
    for secret in ("sk-llm-123", "qd-456", "tenant-key-789", "admin-000"):
        assert secret not in shown
