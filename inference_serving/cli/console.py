"""Standard output that outlives its reader: `llmservingsim run ... | head -1` still writes the CSV.

Python ignores SIGPIPE, so once the reader of a pipe has gone every write fails with EPIPE
(BrokenPipeError) and would end the run before its files are written. While a command runs,
sys.stdout is wrapped: after the first EPIPE the stream's descriptor is pointed at /dev/null, so
what is left of the log (and what was still buffered) is dropped and the command goes on.
"""
from __future__ import annotations

import os
import sys
from contextlib import contextmanager


class PipeSafeStream:
    """A text stream whose writes and flushes never raise BrokenPipeError."""

    def __init__(self, stream) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            self._drop_output()
            return len(text)

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            self._drop_output()
            self._stream.flush()

    def _drop_output(self) -> None:
        try:
            descriptor = self._stream.fileno()
        except (AttributeError, OSError, ValueError):
            self._stream = open(os.devnull, "w")
            return
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, descriptor)
        os.close(devnull)

    def __getattr__(self, name: str):
        return getattr(self._stream, name)


@contextmanager
def pipe_safe_stdout():
    original = sys.stdout
    safe = PipeSafeStream(original)
    sys.stdout = safe
    try:
        yield safe
    finally:
        safe.flush()
        sys.stdout = original
