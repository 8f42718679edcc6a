"""crawl: a documentation site -> HTML pages and a manifest on disk, with a progress bar and a failure summary."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.markup import escape

from ragline.cli.app import JsonOut, app, emit_json, out, settings
from ragline.cli.progress import Bars, bars_enabled
from ragline.errors import SourceError

if TYPE_CHECKING:
    from ragline.sources.crawl import CrawlProgress, CrawlReport, CrawlSettings


@app.command()
def crawl(
    url: Annotated[str, typer.Argument(help="Start URL; the crawl stays under its scheme, host and path")],
    out_dir: Annotated[Path, typer.Option("--out", "-o", help="Folder for the pages and manifest.jsonl")] = Path(
        "pages"
    ),
    max_pages: Annotated[int | None, typer.Option(help="Stop queueing new pages after this many")] = None,
    max_depth: Annotated[int | None, typer.Option(help="Link hops from the start URL")] = None,
    concurrency: Annotated[int | None, typer.Option(help="Requests in flight at once")] = None,
    rate: Annotated[float | None, typer.Option(help="Requests per second to one host (0: no limit)")] = None,
    timeout: Annotated[float | None, typer.Option(help="Seconds for one request, body included")] = None,
    retries: Annotated[int | None, typer.Option(help="Retries on timeouts, 429 and 5xx")] = None,
    include: Annotated[
        list[str] | None, typer.Option("--include", help="URL glob to crawl even outside the start path")
    ] = None,
    exclude: Annotated[list[str] | None, typer.Option("--exclude", help="URL glob never to crawl")] = None,
    ignore_robots: Annotated[bool, typer.Option("--ignore-robots", help="Do not read robots.txt")] = False,
    no_sitemap: Annotated[bool, typer.Option("--no-sitemap", help="Do not seed from the sitemap")] = False,
    as_json: JsonOut = False,
) -> None:
    """Crawl a documentation site; pages already crawled are re-fetched only when they changed."""
    from ragline.sources.crawl import crawl as run_crawl

    overrides: dict[str, Any] = {
        "max_pages": max_pages,
        "max_depth": max_depth,
        "concurrency": concurrency,
        "rate_per_host": rate,
        "timeout": timeout,
        "retries": retries,
        "include": include or None,
        "exclude": exclude or None,
        "robots": False if ignore_robots else None,
        "sitemap": False if no_sitemap else None,
    }
    crawl_settings = _settings({k: v for k, v in overrides.items() if v is not None})
    bars, update = _crawl_bars(bars_enabled(as_json), crawl_settings.max_pages)
    with bars:
        report = run_crawl(url, out_dir, crawl_settings, progress=update)
    if as_json:
        emit_json(report.to_json())
    else:
        _summary(report)
    if report.pages == 0 and report.failures:
        raise SourceError(f"no page crawled from {report.start_url}")


def _settings(overrides: dict[str, Any]) -> CrawlSettings:
    from ragline.settings_base import with_changes

    return with_changes(settings().crawl, overrides, lambda loc: f"invalid crawl setting {loc[0]}")


def _summary(r: CrawlReport) -> None:
    out.print(
        f"{r.pages} pages ({r.new} new, {r.changed} changed, {r.unchanged} unchanged, {r.not_modified} not modified)"
        f" in {escape(r.out_dir)}, {len(r.failures)} failed, {r.dropped} dropped; {r.requests} requests,"
        f" {r.bytes / 1e6:.1f} MB in {r.seconds:.1f}s ({r.pages_per_second:.1f} pages/s);"
        f" {r.out_of_scope} links out of scope, {r.over_limit} over the limits"
    )
    for p in r.failures:
        out.print(f"  [red]failed[/red] {escape(p.url)}: {escape(p.reason)}")
    for p in r.skipped:
        out.print(f"  [yellow]skipped[/yellow] {escape(p.url)}: {escape(p.reason)}")
    if not r.complete:
        out.print("  [yellow]interrupted[/yellow]: pages not reached were kept from the previous crawl")


def _crawl_bars(enabled: bool, max_pages: int) -> tuple[Bars, Callable[[CrawlProgress], None]]:
    """One row: URLs done of those known so far (capped at max_pages), pages/s, ETA, pages and errors."""
    bars = Bars(enabled)
    bars.add("urls", "crawl", None, unit="pages")

    def update(p: CrawlProgress) -> None:
        bars.update(
            "urls",
            completed=p.done,
            total=min(p.done + p.queued, max_pages),
            note=f"{p.pages} pages, queue {p.queued}, {p.errors} errors",
        )

    return bars, update
