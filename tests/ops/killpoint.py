"""Run the ragline CLI and SIGKILL it exactly before or after a call: for steps too short to hit from outside.

    python killpoint.py MODULE:NAME before|after MATCH -- ragline arguments...

``NAME`` is a function of ``MODULE`` or ``Class.method``; the kill happens on the first call whose arguments,
printed, contain ``MATCH``. Only this test process is patched; ragline runs unchanged otherwise.
"""

from __future__ import annotations

import importlib
import os
import signal
import sys
from typing import Any


def main() -> None:
    target, when, match = sys.argv[1:4]
    args = sys.argv[sys.argv.index("--") + 1 :]
    module_name, attr = target.split(":")
    owner: Any = importlib.import_module(module_name)
    *path, name = attr.split(".")
    for part in path:
        owner = getattr(owner, part)
    original = getattr(owner, name)

    def killing(*a: Any, **k: Any) -> Any:
        hit = match in " ".join(map(str, a))
        if hit and when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        result = original(*a, **k)
        if hit and when == "after":
            os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, name, killing)
    sys.argv = ["ragline", *args]
    from ragline.cli import main as ragline

    ragline()


if __name__ == "__main__":
    main()
