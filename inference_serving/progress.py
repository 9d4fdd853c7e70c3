"""A one-line progress bar on stderr: requests finished of total, simulated seconds, simulated requests
per wall-clock second. Shown only when stderr is a terminal (never written into pipes or files)."""
from __future__ import annotations

import sys
import time


class Progress:
    """A Metrics listener; redraws at most `every_s` wall seconds apart, and once more at the end."""

    def __init__(self, total: int, stream=None, every_s: float = 0.1, width: int = 30) -> None:
        self.total, self.stream, self.every_s, self.width = total, stream or sys.stderr, every_s, width
        self.started = time.monotonic()
        self.last = 0.0
        self.shown = False

    @staticmethod
    def wanted(stream=None, quiet: bool = False) -> bool:
        stream = stream or sys.stderr
        return not quiet and hasattr(stream, "isatty") and stream.isatty()

    def __call__(self, metrics, now: int) -> None:
        wall = time.monotonic()
        if wall - self.last >= self.every_s:
            self.last = wall
            self.draw(len(metrics.finished), now)

    def line(self, finished: int, now: int) -> str:
        wall = max(time.monotonic() - self.started, 1e-9)
        filled = self.width * finished // max(self.total, 1)
        return (f"[{'#' * filled}{'.' * (self.width - filled)}] {finished}/{self.total} requests, "
                f"{now / 1e9:.3f} s simulated, {finished / wall:.1f} req/wall-s")

    def draw(self, finished: int, now: int) -> None:
        self.state = (finished, now)
        self.stream.write("\r\x1b[2K" + self.line(finished, now))
        self.stream.flush()
        self.shown = True

    def around(self, log):
        """`log` for a terminal shared with stdout: clear the bar, print the line, draw the bar again."""
        def wrapped(line: str) -> None:
            if self.shown:
                self.stream.write("\r\x1b[2K")
                self.stream.flush()
            log(line)
            if self.shown:
                self.draw(*self.state)
        return wrapped

    def close(self, finished: int, now: int) -> None:
        """The final state, then a newline so later output starts on its own line."""
        self.draw(finished, now)
        self.stream.write("\n")
        self.stream.flush()
