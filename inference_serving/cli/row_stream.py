"""A CSV written row by row as results arrive, so an interrupted sweep keeps what it finished.

Rows are numbered by configuration; each is written (and flushed) as soon as every row before it
is written, so a complete table is in configuration order whatever order the workers finish in.
`close()` also writes the finished rows still waiting for an earlier one (after an interrupt).
"""
from __future__ import annotations

import csv


class RowStream:
    def __init__(self, handle, columns: list[str]) -> None:
        self.handle = handle
        self.writer = csv.DictWriter(handle, fieldnames=columns, lineterminator="\n")
        self.writer.writeheader()
        self.handle.flush()
        self.waiting: dict[int, dict] = {}
        self.next = 0
        self.written = 0

    def add(self, index: int, row: dict) -> None:
        self.waiting[index] = row
        while self.next in self.waiting:
            self._write(self.waiting.pop(self.next))
            self.next += 1
        self.handle.flush()

    def close(self) -> None:
        for index in sorted(self.waiting):
            self._write(self.waiting.pop(index))
        self.handle.flush()

    def _write(self, row: dict) -> None:
        self.writer.writerow(row)
        self.written += 1
