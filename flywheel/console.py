"""What every CLI command prints besides its own result: a two-column table of counts, progress bars.

Made per call, not at import: rich reads the terminal width (``COLUMNS``) when the console is created."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from rich.table import Table


def print_counts(title: str, rows: Iterable[tuple[str, Any]], value_header: str = "count") -> None:
    """One ``what | count`` table on stdout; None shows as "-"."""
    table = Table(title=title)
    table.add_column("what")
    table.add_column(value_header, justify="right")
    for key, value in rows:
        table.add_row(key, "-" if value is None else str(value))
    Console().print(table)


@contextmanager
def progress_bars() -> Iterator[Callable[[str, int, int], None]]:
    """A ``progress(stage, done, total)`` callback drawing one rich bar per stage on stderr."""
    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                  console=Console(stderr=True), transient=True) as bars:
        tasks: dict[str, Any] = {}

        def update(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bars.add_task(stage, total=total)
            bars.update(tasks[stage], completed=done, total=total)

        yield update
