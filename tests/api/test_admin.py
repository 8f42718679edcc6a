"""DELETE /admin/sources on the in-process engine: admin keys only, and deleted chunks are gone from every search."""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from llm_server import free_port

from ragline.api.errors import NotSupportedError
from ragline.ops.delete import Scope

from .helpers import SITE, app_settings, auth, serve_in_process

pytestmark = pytest.mark.slow

ADMIN_KEY = "admin-key-0123456789"
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
REACTOR_PAGE = f"{SITE['globex']}/reactor.html"


@pytest.fixture(scope="module")
def served(index_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A private copy of the two-tenant index (these tests delete from it), served with an admin key."""
    data = tmp_path_factory.mktemp("admin") / "data"
    shutil.copytree(index_dir, data)
    dead_llm = {"backend": "openai", "base_url": f"http://127.0.0.1:{free_port()}/v1", "max_retries": 0}
    with serve_in_process(app_settings(data, llm=dead_llm, admin_api_keys=[ADMIN_KEY])) as url:
        yield url


def sources(client: httpx.Client, url: str, query: str) -> set[str]:
    r = client.post(f"{url}/search", json={"query": query, "k": 10}, headers=auth("globex"))
    assert r.status_code == 200, r.text
    return {h["source"].split("#")[0] for h in r.json()["hits"]}


@pytest.mark.parametrize(
    ("headers", "status"),
    [({}, 401), ({"Authorization": "Bearer not-a-key"}, 401), (auth("acme"), 403)],
    ids=["no-key", "unknown-key", "tenant-key"],
)
def test_only_admin_keys_may_delete(served: str, client: httpx.Client, headers: dict[str, str], status: int) -> None:
    r = client.delete(f"{served}/admin/sources", params={"prefix": SITE["globex"]}, headers=headers)
    assert r.status_code == status, r.text
    assert r.json()["error"]["type"] == ("unauthorized" if status == 401 else "forbidden")
    assert REACTOR_PAGE in sources(client, served, "How is the Globex reactor cooled?")  # nothing was deleted


def test_admin_deletes_a_prefix_from_every_search(served: str, client: httpx.Client) -> None:
    question = "lemon-flavoured brine copper coils"
    assert REACTOR_PAGE in sources(client, served, question)

    # Tenants share the index: a delete names whose documents it removes.
    r = client.delete(f"{served}/admin/sources", params={"prefix": REACTOR_PAGE}, headers=ADMIN)
    assert r.status_code == 422 and "--tenant" in r.json()["error"]["message"], r.text
    r = client.delete(f"{served}/admin/sources", params={"prefix": REACTOR_PAGE, "tenant": "acme"}, headers=ADMIN)
    assert r.status_code == 200 and r.json()["chunks"] == 0, r.text  # not acme's page: nothing of it goes
    assert REACTOR_PAGE in sources(client, served, question)

    r = client.delete(f"{served}/admin/sources", params={"prefix": REACTOR_PAGE, "tenant": "globex"}, headers=ADMIN)
    assert r.status_code == 200, r.text
    assert r.json()["prefix"] == REACTOR_PAGE and r.json()["tenant"] == "globex"
    assert r.json()["documents"] == 1 and r.json()["chunks"] >= 1

    assert REACTOR_PAGE not in sources(client, served, question)
    assert f"{SITE['globex']}/hammock.html" in sources(client, served, "Project Hammock launch date")  # the rest stays
    again = client.delete(
        f"{served}/admin/sources", params={"prefix": REACTOR_PAGE, "all_tenants": True}, headers=ADMIN
    )
    assert again.json() == {"prefix": REACTOR_PAGE, "documents": 0, "chunks": 0}


def test_empty_prefix_is_refused(served: str, client: httpx.Client) -> None:
    r = client.delete(f"{served}/admin/sources", params={"prefix": ""}, headers=ADMIN)
    assert r.status_code == 422
    assert client.delete(f"{served}/admin/sources", headers=ADMIN).status_code == 422


def test_admin_routes_are_off_without_admin_keys(index_dir: Path, client: httpx.Client) -> None:
    dead_llm = {"backend": "openai", "base_url": f"http://127.0.0.1:{free_port()}/v1", "max_retries": 0}
    with serve_in_process(app_settings(index_dir, llm=dead_llm)) as url:
        r = client.delete(f"{url}/admin/sources", params={"prefix": SITE["acme"]}, headers=auth("acme"))
        assert r.status_code == 403
        assert "admin_api_keys" in r.json()["error"]["message"]


def test_ray_serve_refuses_to_delete_from_replica_copies() -> None:
    from ragline.serving.backend import RayServeBackend

    backend = RayServeBackend(None, None, shared_index=False)  # type: ignore[arg-type]
    with pytest.raises(NotSupportedError, match="ragline delete"):
        asyncio.run(backend.delete_sources(SITE["acme"], Scope("acme")))
