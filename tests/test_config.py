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
    with pytest.raises(ConfigError) as caught:
        load_settings()
    assert str(caught.value).startswith(f"invalid settings: ragline.toml: {'.'.join(where)}: ")
    assert isinstance(caught.value.__cause__, ValidationError)
    (error,) = caught.value.__cause__.errors()
    assert error["type"] == "extra_forbidden" and tuple(error["loc"]) == where


def test_an_unknown_nested_environment_key_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RAGLINE_LLM__MODLE", "x")
    with pytest.raises(ConfigError, match="RAGLINE_LLM__MODLE: Extra inputs"):
        load_settings()


def test_a_file_that_is_not_toml_is_named_with_its_line(tmp_path: Path) -> None:
    (tmp_path / "ragline.toml").write_text("[llm\nmodel = 1\n")
    with pytest.raises(ConfigError, match=r"^ragline\.toml: not valid TOML: .*\(at line 1, column 5\)$"):
        load_settings()


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("RAGLINE_SERVE__API_KEYS", "not json", r"^RAGLINE_SERVE__API_KEYS: not valid JSON \(Expecting value"),
        ("RAGLINE_CRAWL__INCLUDE", "[oops", r"^RAGLINE_CRAWL__INCLUDE: not valid JSON \("),
        ("RAGLINE_SERVE", "{", r"^RAGLINE_SERVE: not valid JSON \("),
        (
            "RAGLINE_LLM__MAX_TOKENS",
            "abc",
            r"^invalid settings: RAGLINE_LLM__MAX_TOKENS: Input should be a valid integer",
        ),
        ("RAGLINE_RETRIEVAL__MODE", "poetic", r"^invalid settings: RAGLINE_RETRIEVAL__MODE: Input should be 'dense'"),
    ],
)
def test_a_bad_environment_value_names_its_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv("RAGLINE_LLM__MODEL", "fine")  # another variable in the same tree is not blamed
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message) as caught:
        load_settings()
    assert "\n" not in str(caught.value)


def test_a_wrong_type_in_the_file_names_the_file_and_the_key(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "ragline.toml").write_text('[llm]\nmax_tokens = "abc"\n')
    with pytest.raises(ConfigError, match=r"^invalid settings: ragline\.toml: llm\.max_tokens: Input should be"):
        load_settings()
    monkeypatch.setenv("RAGLINE_LLM__MAX_TOKENS", "zero")  # the environment wins, so it is the one named
    with pytest.raises(ConfigError, match=r"^invalid settings: RAGLINE_LLM__MAX_TOKENS: "):
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
