"""Progress reporting: a Rich bar on a terminal, plain throttled lines in logs and CI."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

err_console = Console(stderr=True)


class _Plain:
    """Line-per-step progress for non-TTY output, at most one line every few seconds per task."""

    def __init__(self, every_s: float = 5.0):
        self.every_s = every_s
        self.tasks: dict[int, dict] = {}

    def add_task(self, description: str, total: float | None = None) -> int:
        tid = len(self.tasks)
        self.tasks[tid] = {"d": description, "total": total, "done": 0.0, "last": 0.0}
        return tid

    def update(self, tid: int, advance: float = 0, description: str | None = None, total: float | None = None,
               completed: float | None = None) -> None:
        t = self.tasks[tid]
        t["done"] = completed if completed is not None else t["done"] + advance
        if description:
            t["d"] = description
        if total is not None:
            t["total"] = total
        now = time.monotonic()
        finished = t["total"] is not None and t["done"] >= t["total"]
        if finished or now - t["last"] >= self.every_s:
            t["last"] = now
            of = f"/{t['total']:g}" if t["total"] is not None else ""
            print(f"{t['d']}: {t['done']:g}{of}", file=sys.stderr, flush=True)


@contextmanager
def progress() -> Iterator[Progress | _Plain]:
    if err_console.is_terminal:
        bar = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
            console=err_console, transient=False,
        )
        with bar:
            yield bar
    else:
        yield _Plain()
