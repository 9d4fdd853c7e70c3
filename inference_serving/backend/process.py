"""The engine subprocess with line reads that time out."""
from __future__ import annotations

import os
import selectors
import subprocess
import time
from pathlib import Path

from ..errors import EngineError


class EngineProcess:
    """The subprocess with line reads that time out."""

    def __init__(self, argv: list[str], cwd: Path, timeout_s: float) -> None:
        self.argv, self.timeout_s = argv, timeout_s
        try:
            self.proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, bufsize=0)
        except OSError as err:
            raise EngineError(f"cannot start the engine {argv[0]}: {err.strerror} "
                              f"(build it with: bash astra-sim/build.sh, or pass --astra-sim PATH)") from None
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.proc.stdout, selectors.EVENT_READ)
        self.buffer = b""

    def send(self, line: str) -> None:
        self.write(line.encode() + b"\n")

    def write(self, data: bytes) -> None:
        """Commands (and a `put`'s trace bytes) in one write."""
        try:
            self.proc.stdin.write(data)
            self.proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._failure("stopped accepting commands") from None

    def readline(self) -> str:
        deadline = time.monotonic() + self.timeout_s
        while b"\n" not in self.buffer:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or not self.selector.select(remaining):
                self.kill()
                raise EngineError(f"the engine gave no answer within {self.timeout_s:g} s "
                                  f"(raise --engine-timeout if the iterations are very large)")
            chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
            if not chunk:
                raise self._failure("exited unexpectedly")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode(errors="replace").rstrip("\r")

    def _failure(self, what: str) -> EngineError:
        try:
            self.proc.wait(timeout=5)
            err = self.proc.stderr.read().decode(errors="replace").strip().splitlines()
        except subprocess.TimeoutExpired:
            self.kill()
            err = []
        detail = err[-1] if err else f"exit status {self.proc.returncode}"
        return EngineError(f"the engine {what}: {detail}")

    def finish(self) -> None:
        try:
            self.proc.wait(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
        self.selector.close()

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
