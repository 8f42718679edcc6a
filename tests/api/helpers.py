"""Helpers for the API tests: the two-tenant corpus, settings, and a uvicorn server in a thread."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

from llm_server import free_port

from ragline.api.settings import ServeSettings
from ragline.components import Components
from ragline.config import Settings, load_settings

KEYS = {"key-acme-0123456789": "acme", "key-globex-0123456789": "globex"}
KEY = {tenant: key for key, tenant in KEYS.items()}

DOCS: dict[str, dict[str, str]] = {
    "acme": {
        "flux.md": "# Flux widget manual\n\n"
        "## Calibrating the flux widget\n\n"
        "To calibrate the flux widget, turn the blue lever three times clockwise and wait for the green light.\n\n"
        "## Storing the flux widget\n\n"
        "Store the flux widget in a dry cupboard below 20 degrees Celsius.\n",
        "billing.md": "# Acme billing\n\n## Invoices\n\nAcme sends invoices on the first Monday of each month.\n",
    },
    "globex": {
        "reactor.md": "# Globex reactor handbook\n\n"
        "## Cooling the reactor\n\n"
        "The Globex reactor is cooled by pumping lemon-flavoured brine through the copper coils.\n\n"
        "## Shutting the reactor down\n\n"
        "Press the red mushroom button twice to shut the reactor down.\n",
        "hammock.md": "# Project Hammock\n\n## Launch date\n\n"
        "Project Hammock launches on 12 March from the Globex orbital yard.\n",
    },
}
SITE = {"acme": "https://docs.acme.example", "globex": "https://docs.globex.example"}


def app_settings(data_dir: Path, *, llm: dict[str, Any] | None = None, **serve: Any) -> Settings:
    """Settings for a test server: short answers, a 2048-token window (the test llama server's), API keys."""
    s = load_settings(data_dir=data_dir)
    s.llm = s.llm.model_copy(update={"max_tokens": 40, "context_window": 2048, "temperature": 0.0, **(llm or {})})
    s.serve = ServeSettings(**{"api_keys": KEYS, "port": free_port(), **serve})
    return s


def auth(tenant: str = "acme") -> dict[str, str]:
    return {"Authorization": f"Bearer {KEY[tenant]}"}


class UvicornServer:
    """The app in this process under a real uvicorn on 127.0.0.1, in a background thread."""

    def __init__(self, app: Any, port: int) -> None:
        import uvicorn

        config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.url = f"http://127.0.0.1:{port}"

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 120
        while not self.server.started:
            if not self.thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.05)
        return self.url

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=60)


def serve_in_process(settings: Settings) -> UvicornServer:
    from ragline.api.app import create_app
    from ragline.api.backend import InProcessBackend

    app = create_app(
        InProcessBackend(Components(settings)), settings.serve, citation_base_url=settings.answer.citation_base_url
    )
    return UvicornServer(app, settings.serve.port)


def listening_sockets(root_pid: int) -> list[tuple[int, str, int]]:
    """(pid, address, port) of every TCP socket listening in ``root_pid`` or its descendants (Linux /proc)."""
    import ipaddress
    import os

    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                stat = Path(f"/proc/{entry}/stat").read_text()
            except OSError:
                continue
            parents[int(entry)] = int(stat.rsplit(")", 1)[1].split()[1])
    family = {root_pid}
    grew = True
    while grew:
        children = {pid for pid, parent in parents.items() if parent in family} - family
        family |= children
        grew = bool(children)
    inodes: dict[str, int] = {}
    for pid in family:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes[target[8:-1]] = pid
        except OSError:
            continue
    out = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, state, inode = fields[1], fields[3], fields[9]
            if state != "0A" or inode not in inodes:  # 0A: LISTEN
                continue
            hex_ip, hex_port = local.split(":")
            raw = bytes.fromhex(hex_ip)
            # /proc stores the address as native-endian 32-bit words
            ip = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            address = ipaddress.ip_address(ip)
            if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped:
                address = address.ipv4_mapped
            out.append((inodes[inode], str(address), int(hex_port, 16)))
    return out
