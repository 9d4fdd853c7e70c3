"""The progress bar on stderr (tqdm): requests finished of total and simulated seconds. Shown only
when stderr is a terminal (never written into pipes or files)."""
from __future__ import annotations

import sys


class Progress:
    """A Metrics listener around one tqdm bar (tqdm limits its own redraw rate)."""

    def __init__(self, total: int, stream=None, every_s: float = 0.1) -> None:
        from tqdm import tqdm  # only runs with a terminal pay for the import
        self.stream = stream or sys.stderr
        self.bar = tqdm(total=total, unit="req", file=self.stream, mininterval=every_s, dynamic_ncols=True,
                        bar_format="{l_bar}{bar}| {n_fmt}/{total_fmt} requests{postfix} [{elapsed}, {rate_fmt}]")

    @staticmethod
    def wanted(stream=None, quiet: bool = False) -> bool:
        stream = stream or sys.stderr
        return not quiet and hasattr(stream, "isatty") and stream.isatty()

    def __call__(self, metrics, now: int) -> None:
        self.draw(len(metrics.finished), now)

    def draw(self, finished: int, now: int) -> None:
        self.bar.set_postfix_str(f"{now / 1e9:.3f} s simulated", refresh=False)
        self.bar.update(finished - self.bar.n)

    def around(self, log):
        """`log` for a terminal shared with stdout: the line is printed above the bar."""
        def wrapped(line: str) -> None:
            self.bar.write(line, file=sys.stdout)
        return wrapped

    def close(self, finished: int, now: int) -> None:
        """The final state; the bar stays on its own line."""
        self.draw(finished, now)
        self.bar.refresh()
        self.bar.close()
