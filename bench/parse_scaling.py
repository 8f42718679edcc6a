"""Parsing cost against input size: time and peak memory to parse Markdown of 1, 10 and 100 MB, HTML and Markdown
nested 10^3 to 10^5 levels deep, and reStructuredText indented 10^2 to 3x10^3 levels deep (its size grows with the
square of the depth: 3,000 levels are 4.5 MB).

    .venv/bin/python bench/parse_scaling.py [--sizes 1,10,100] [--depths 1000,10000,100000] [--rst-depths 100,1000,3000]

Each case runs in a child process of its own, so its peak memory (``ru_maxrss``) is its own, and is stopped after
``--budget`` seconds (reported as ``timeout``). Markdown cases are parsed with ``max_file_bytes`` and
``max_line_chars`` raised past the input, to measure the parser itself; ``outcome`` says what the default
bounds make of the same input. Prints a table; writes bench/results/parse-scaling.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import table, write_json

PARAGRAPH = "Ray Serve scales **models** with `replicas`, see [the guide](https://docs.ray.io/serve) for more.\n\n"

_CHILD = r"""
import json, resource, sys, time
from ragline.config import ParseSettings
from ragline.errors import SourceError
from ragline.parse import parse_bytes

kind, size, depth, paragraph = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
if kind == "markdown" and depth:
    data = ("> " * depth + "x\n").encode()
elif kind == "markdown":
    data = (paragraph * (size // len(paragraph) + 1))[:size].encode()
elif kind == "html":
    data = ("<html><body><main><h1>Deep</h1>" + "<div>" * depth + "x" + "</div>" * depth + "</main>").encode()
else:
    data = "\n\n".join(" " * i + "level" for i in range(depth)).encode()
big = ParseSettings(max_file_bytes=len(data) + 1, max_line_chars=len(data) + 1)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
t0 = time.perf_counter()
try:
    doc = parse_bytes(data, source="x", kind=kind, settings=big)
    chars = len(doc.text)
except SourceError as exc:
    chars = str(exc)
seconds = time.perf_counter() - t0
try:
    parse_bytes(data, source="x", kind=kind, settings=ParseSettings())
    outcome = "parsed"
except SourceError as exc:
    outcome = f"skipped: {exc}"
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps({"seconds": seconds, "peak_mb": peak, "base_mb": base, "chars": chars, "outcome": outcome}))
"""


def run_case(kind: str, size: int, depth: int, budget: float) -> dict[str, Any]:
    row: dict[str, Any] = {"kind": kind, "input_mb": round(size / 1e6, 1) if size else "", "depth": depth or ""}
    try:
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, kind, str(size), str(depth), PARAGRAPH],
            capture_output=True,
            text=True,
            timeout=budget,
            check=True,
        )
    except subprocess.TimeoutExpired:
        return {**row, "seconds": f"timeout {budget:.0f}s"}
    except subprocess.CalledProcessError as exc:
        return {**row, "seconds": "error", "outcome": exc.stderr.strip().splitlines()[-1:]}
    out = json.loads(done.stdout.strip().splitlines()[-1])
    return {
        **row,
        "input_bytes": size or "",
        "seconds": round(out["seconds"], 2),
        "peak_mb": round(out["peak_mb"]),
        "over_start_mb": round(out["peak_mb"] - out["base_mb"]),
        "outcome": out["outcome"],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--sizes", default="1,10,100", help="Markdown sizes in MB")
    ap.add_argument("--depths", default="1000,10000,100000", help="nesting depths")
    ap.add_argument("--rst-depths", default="100,1000,3000", help="reStructuredText indentation depths")
    ap.add_argument("--budget", type=float, default=120.0, help="seconds allowed per case")
    args = ap.parse_args()
    rows = [run_case("markdown", int(float(mb) * 1e6), 0, args.budget) for mb in args.sizes.split(",")]
    for depth in (int(d) for d in args.depths.split(",")):
        rows += [run_case("html", 0, depth, args.budget), run_case("markdown", 0, depth, args.budget)]
    rows += [run_case("rst", 0, int(d), args.budget) for d in args.rst_depths.split(",")]
    print(table(rows, ["kind", "input_mb", "depth", "seconds", "peak_mb", "over_start_mb", "outcome"]))
    write_json("parse-scaling", {"budget_seconds": args.budget, "rows": rows})


if __name__ == "__main__":
    main()
