"""PDF text extraction, pypdf against pypdfium2, on a real manual: speed and word-level fidelity.

    .venv/bin/python bench/pdf_parsers.py [--repeat 1]

Corpus: ``../shared/corpora/debian-reference``, the Debian Reference as one PDF (261 pages, with an outline)
and as the same text in HTML chapters. The reference text is what ragline's HTML parser extracts from the
chapters. Each library's raw page text (pypdf ``extract_text()``, pypdfium2 ``get_text_bounded()``) and
ragline's PDF parser (pypdfium2 plus its clean-up: running headers, hyphens, dot leaders) are compared with it:

- ``word_recall``: the share of the HTML's words (lowercased, counted with multiplicity) found in the PDF text;
  words run together ("Listofpscommandstyles") are missed, so this drops when spaces are lost;
- ``bigram_recall``: the same for pairs of adjacent words, which also drops when word order is scrambled;
- ``word_precision``: the share of the PDF's words found in the HTML (words made up by joining fall out).

Navigation text in the HTML and page furniture in the PDF keep every figure below 1.0 for every extractor;
compare the rows, not the figures with 1.0. ``pages_s`` is pages per second, the best of ``--repeat`` runs, on
this shared machine. Prints a table; writes bench/results/pdf-parsers.json.
"""

from __future__ import annotations

import argparse
import io
import itertools
import re
import sys
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import need_corpora, table, write_json

from ragline.config import ParseSettings
from ragline.parse import parse_bytes

_WORD_RE = re.compile(r"[^\W_]+")


def words(text: str) -> list[str]:
    return [w.lower() for w in _WORD_RE.findall(text)]


def recall(reference: Counter[Any], found: Counter[Any]) -> float:
    """Share of ``reference`` (with multiplicity) that ``found`` holds."""
    total = sum(reference.values())
    return sum(min(n, found[k]) for k, n in reference.items()) / total if total else float("nan")


def bigrams(tokens: list[str]) -> Counter[tuple[str, str]]:
    return Counter(itertools.pairwise(tokens))


def html_reference(folder: Path) -> list[str]:
    """The words of the manual's HTML chapters, as ragline's HTML parser extracts them."""
    tokens: list[str] = []
    for page in sorted(folder.glob("*.html")):
        doc = parse_bytes(page.read_bytes(), source=page.name, kind="html", settings=ParseSettings())
        tokens += words(doc.text)
    return tokens


def pypdf_pages(data: bytes) -> list[str]:
    import pypdf

    reader = pypdf.PdfReader(io.BytesIO(data))
    return [page.extract_text() or "" for page in reader.pages]


def pdfium_pages(data: bytes) -> list[str]:
    import pypdfium2

    pdf = pypdfium2.PdfDocument(data)
    try:
        out: list[str] = []
        for i in range(len(pdf)):
            page = pdf[i]
            textpage = page.get_textpage()
            out.append(textpage.get_text_bounded())
            textpage.close()
            page.close()
        return out
    finally:
        pdf.close()


def ragline_pages(data: bytes) -> list[str]:
    doc = parse_bytes(data, source="debian-reference.en.pdf", kind="pdf", settings=ParseSettings())
    by_page: dict[str, list[str]] = {}
    for s in doc.sections:
        by_page.setdefault(s.anchor or "", []).append(s.text)
    return ["\n".join(texts) for texts in by_page.values()]


EXTRACTORS: dict[str, Callable[[bytes], list[str]]] = {
    "pypdf": pypdf_pages,
    "pypdfium2": pdfium_pages,
    "ragline (pypdfium2)": ragline_pages,
}


def versions() -> dict[str, str]:
    from importlib.metadata import version

    return {name: version(name) for name in ("pypdf", "pypdfium2")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=1, help="runs per extractor; the best is kept")
    args = ap.parse_args()
    corpus = need_corpora("debian-reference")
    pdf = next(corpus.glob("*.pdf"))
    data = pdf.read_bytes()
    reference = html_reference(corpus / "html")
    ref_words, ref_bigrams = Counter(reference), bigrams(reference)
    rows: list[dict[str, Any]] = []
    for name, extract in EXTRACTORS.items():
        best = float("inf")
        pages: list[str] = []
        for _ in range(max(1, args.repeat)):
            start = time.perf_counter()
            pages = extract(data)
            best = min(best, time.perf_counter() - start)
        tokens = words("\n".join(pages))
        got = Counter(tokens)
        n_pages = len(pdfium_pages(data)) if name.startswith("ragline") else len(pages)
        rows.append(
            {
                "extractor": name,
                "pages": n_pages,
                "seconds": best,
                "pages_s": n_pages / best,
                "words": len(tokens),
                "word_recall": recall(ref_words, got),
                "bigram_recall": recall(ref_bigrams, bigrams(tokens)),
                "word_precision": recall(got, ref_words),
            }
        )
    columns = ["extractor", "pages", "seconds", "pages_s", "words", "word_recall", "bigram_recall", "word_precision"]
    print(f"{pdf.name}: {len(data)} bytes; HTML reference: {len(reference)} words")
    print(table(rows, columns))
    out = write_json(
        "pdf-parsers",
        {"file": pdf.name, "bytes": len(data), "reference_words": len(reference), "versions": versions(), "rows": rows},
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
