"""The engine subprocess with line reads that time out.

A read may poll the engine's output for a while before it sleeps (`spin_us`): a reply that comes
meanwhile is read without this process having slept, which on a virtual machine saves a wake-up of
tens to hundreds of microseconds per round trip. Our engine polls for the next command alike
(`--spin-us`, astra-sim/README.md). Polling changes what is read in no way, only when.
"""
from __future__ import annotations

import math
import os
import select
import subprocess
import time
from pathlib import Path

from ..errors import EngineError

# Polled before sleeping: longer than the loop's work between two commands and than the engine's answer
# to an iteration's graph in bench/serving_bench.py (0.1 to 1 ms), so neither side sleeps between the
# iterations of a run; short enough that a side waiting on a long step gives up its core within 2 ms.
DEFAULT_SPIN_US = 2000
CGROUP = Path("/sys/fs/cgroup")  # where a process sees its own cgroup (a container's, inside one)


def default_spin_us(cgroup: Path = CGROUP) -> int:
    """Each side polls on a core of its own: where this process may use less than two cores, polling would
    just delay the other side, so it sleeps at once."""
    return DEFAULT_SPIN_US if usable_cores(cgroup) >= 2 else 0


def usable_cores(cgroup: Path = CGROUP) -> float:
    """The cores this process may run on, bounded by its cgroup's CPU quota where it has one (a container
    started with --cpus N gets N cores' time whatever it sees)."""
    return min(len(os.sched_getaffinity(0)), _quota_cores(cgroup))


def _quota_cores(cgroup: Path) -> float:
    """Cores' time per period the cgroup may use (inf without a quota, or where none can be read): cgroup v2's
    cpu.max "<quota> <period>" (quota "max": none), else v1's cpu/cpu.cfs_quota_us (-1: none) over
    cpu/cpu.cfs_period_us."""
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()
        return math.inf if quota == "max" else int(quota) / int(period)
    except (OSError, ValueError, ZeroDivisionError):
        pass
    try:
        quota = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        return math.inf if quota < 0 else quota / int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
    except (OSError, ValueError, ZeroDivisionError):
        return math.inf


class EngineProcess:
    """The subprocess with line reads that time out."""

    def __init__(self, argv: list[str], cwd: Path, timeout_s: float, spin_us: int = 0) -> None:
        self.argv, self.timeout_s, self.spin_s = argv, timeout_s, spin_us / 1e6
        try:
            self.proc = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                         stderr=subprocess.PIPE, bufsize=0)
        except OSError as err:
            raise EngineError(f"cannot start the engine {argv[0]}: {err.strerror} "
                              f"(build it with: bash astra-sim/build.sh, or pass --astra-sim PATH)") from None
        self.output = select.poll()  # the engine's stdout, polled
        self.output.register(self.proc.stdout, select.POLLIN)
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
            if not self._readable(deadline):
                self.kill()
                raise EngineError(f"the engine gave no answer within {self.timeout_s:g} s "
                                  f"(raise --engine-timeout if the iterations are very large)")
            chunk = os.read(self.proc.stdout.fileno(), 1 << 16)
            if not chunk:
                raise self._failure("exited unexpectedly")
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return line.decode(errors="replace").rstrip("\r")

    def _readable(self, deadline: float) -> bool:
        """Whether output (or the end of it) came before the deadline: polled for the spin time, then slept for."""
        until = min(deadline, time.monotonic() + self.spin_s)
        while time.monotonic() < until:
            if self.output.poll(0):
                return True
        remaining = deadline - time.monotonic()
        return remaining > 0 and bool(self.output.poll(math.ceil(remaining * 1000)))

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

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
