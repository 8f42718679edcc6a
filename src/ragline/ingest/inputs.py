"""What an ingest reads, the same for every engine: the inputs named on the command line, sorted into
sites to crawl, folders and files to walk, and paths that do not exist, with the origin of each document
(the folder or site it came from, so that what vanished from it can be deleted) and the source a file
gets when its page declares none.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ragline.config import ParseSettings
from ragline.sources.files import LocalFile, iter_files, source_url


@dataclass(slots=True)
class InputFile:
    file: LocalFile
    origin: str | None  # the ingested folder, or None for a file named on its own
    fallback: str  # the document's source when the page declares no URL of its own


@dataclass(slots=True)
class Inputs:
    origins: list[str] = field(default_factory=list)  # folders and crawl origins, in the order given
    missing: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)  # sites to crawl
    roots: list[Path] = field(default_factory=list)  # folders and files to walk

    def files(self, parse: ParseSettings) -> Iterator[InputFile]:
        """Every file under the roots, in a stable order, with its origin and fallback source."""
        for root in self.roots:
            origin = str(root.resolve()) if root.is_dir() else None
            for f in iter_files([root], follow_outside=parse.follow_outside_links):
                if parse.url_template:
                    fallback = source_url(f.relpath, parse.url_template)
                else:
                    # The folder resolved, not a link's target: a link is reported under its own name.
                    fallback = (Path(f.path).parent.resolve() / f.path.name).as_posix()
                yield InputFile(f, origin, fallback)


def is_site(arg: str | Path) -> bool:
    return str(arg).startswith(("http://", "https://"))


def plan_inputs(paths: Sequence[str | Path]) -> Inputs:
    """Sort ``paths`` into sites, existing folders and files, and missing paths."""
    inputs = Inputs()
    for arg in paths:
        if is_site(arg):  # a site: crawled into <data_dir>/crawl
            from ragline.sources.crawl import crawl_origin

            inputs.urls.append(str(arg))
            inputs.origins.append(crawl_origin(str(arg)))
            continue
        p = Path(arg)
        if not p.exists():
            inputs.missing.append(str(arg))
            continue
        inputs.roots.append(p)
        if p.is_dir():
            inputs.origins.append(str(p.resolve()))
    return inputs
