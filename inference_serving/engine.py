"""Engine coupling: one engine subprocess per simulation, driven over stdin/stdout.

`StepEngine` speaks our engine's `--protocol=step` (one reply per command). `CompatEngine` speaks
ASTRA-sim's interactive protocol (report line, `Waiting`, `pass` / `exit` / prefix), so any
compatible binary can be used with `--astra-sim PATH`. Both expose the same calls:

  load(prefix, npus)   start `<prefix>.<npu>.et` on idle NPUs at the current tick
  step(limit=None)     run until workloads complete -> Event("done", tick, npus);
                       with a limit, stop at it if nothing completes before -> Event("time", ...)
  advance(tick)        let an idle engine's clock jump forward
  close()

Every read has a timeout; an engine that exits, fails or stays silent raises EngineError.
"""
from __future__ import annotations

import os
import re
import selectors
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from .graph import wait_graph

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_ENGINE = REPO_ROOT / "astra-sim" / "build" / "bin" / "astra-analytical"
REPORT = re.compile(r"sys\[(\d+)\] iteration (\d+) finished, (\d+) cycles, exposed communication (\d+) cycles")


class EngineError(RuntimeError):
    """The engine failed, exited early, or did not answer in time."""


@dataclass(frozen=True)
class Event:
    kind: str              # "done" or "time"
    tick: int
    npus: tuple[int, ...] = ()


class _Process:
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
        try:
            self.proc.stdin.write(line.encode() + b"\n")
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


def _config_flags(configs: dict[str, Path]) -> list[str]:
    return [f"--system-configuration={configs['system']}", f"--network-configuration={configs['network']}",
            f"--remote-memory-configuration={configs['memory']}"]


class StepEngine:
    """Our engine's `--protocol=step`."""

    def __init__(self, binary: Path, configs: dict[str, Path], cwd: Path, timeout_s: float,
                 span_file: Path | None = None) -> None:
        spans = [f"--span-file={span_file}"] if span_file is not None else []
        self.process = _Process([str(binary), "--protocol=step", *_config_flags(configs), *spans], cwd, timeout_s)
        self._expect("ready")

    def _expect(self, word: str) -> list[str]:
        line = self.process.readline()
        parts = line.split()
        if not parts or parts[0] != word:
            self.process.kill()
            raise EngineError(f"unexpected engine reply '{line}' (expected '{word} ...')")
        return parts[1:]

    def _command(self, line: str, *replies: str) -> list[str]:
        self.process.send(line)
        reply = self.process.readline()
        parts = reply.split()
        if not parts or parts[0] not in replies:
            raise EngineError(f"unexpected engine reply '{reply}' to '{line}'")
        return parts

    def load(self, prefix: Path, npus: list[int]) -> None:
        self._command(f"load {prefix} {','.join(map(str, npus))}", "ok")

    def step(self, limit: int | None = None) -> Event:
        parts = self._command("step" if limit is None else f"step {limit}", "done", "time", "idle")
        if parts[0] == "done":
            return Event("done", int(parts[1]), tuple(int(p.split(":")[0]) for p in parts[2:]))
        return Event("time", int(parts[1]))

    def advance(self, tick: int) -> None:
        self._command(f"advance {tick}", "time")

    def close(self) -> None:
        self._command("exit", "bye")
        self.process.finish()

    def kill(self) -> None:
        self.process.kill()


@dataclass
class CompatEngine:
    """ASTRA-sim's interactive protocol (LLMServingSim's fork of the analytical backend).

    The engine asks every finished NPU for work after each event time it processes. A load is
    handed to an NPU at its next question, so new work starts at the first engine timestamp
    after the call (at most one 100 ns idle tick later when the cluster is idle). Idle time is
    spent by loading a one-node wait workload, not by thousands of `pass` replies.
    """

    binary: Path
    configs: dict[str, Path]
    cwd: Path
    timeout_s: float
    npus: int
    pending: dict[int, Path] = field(default_factory=dict)
    busy: set = field(default_factory=set)
    iteration: dict[int, int] = field(default_factory=dict)
    waiting_npu: int | None = None
    now: int = 0

    def __post_init__(self) -> None:
        start = self.cwd / "start"
        wait_graph(1, self.npus).write(start)
        self.process = _Process([str(self.binary), f"--workload-configuration={start}",
                                 *_config_flags(self.configs)], self.cwd, self.timeout_s)
        self.busy = set(range(self.npus))
        self.iteration = {npu: 0 for npu in range(self.npus)}
        self.step()

    def _next_report(self) -> tuple[int, int, int]:
        previous = ""
        while True:
            line = self.process.readline()
            if "Waiting" in line:
                match = REPORT.search(previous)
                if not match:
                    raise EngineError(f"no report line before 'Waiting' (got '{previous}')")
                npu, iteration, tick = (int(match.group(i)) for i in (1, 2, 3))
                return npu, iteration, tick
            previous = line

    def _answer(self, npu: int) -> None:
        prefix = self.pending.pop(npu, None)
        if prefix is None:
            self.process.send("pass")
        else:
            self.process.send(str(prefix))
            self.busy.add(npu)
            self.iteration[npu] += 1

    def load(self, prefix: Path, npus: list[int]) -> None:
        for npu in npus:
            self.pending[npu] = prefix

    def step(self, limit: int | None = None) -> Event:
        if limit is not None and not self.busy and not self.pending:
            return self._wait_until(limit)
        finished: list[int] = []
        finish_tick = None
        while True:
            if self.waiting_npu is not None:
                self._answer(self.waiting_npu)
                self.waiting_npu = None
            npu, iteration, tick = self._next_report()
            self.now = tick
            if finished and tick != finish_tick:
                self.waiting_npu = npu
                return Event("done", finish_tick, tuple(sorted(finished)))
            if npu in self.busy and iteration == self.iteration[npu]:
                self.busy.discard(npu)
                finished.append(npu)
                finish_tick = tick
            self.waiting_npu = npu

    def _wait_until(self, tick: int) -> Event:
        if tick > self.now:
            prefix = self.cwd / f"wait{tick}"
            wait_graph(tick - self.now, 1).write(prefix)
            self.load(prefix, [0])
            self.step()
        return Event("time", self.now)

    def advance(self, tick: int) -> None:
        self._wait_until(tick)

    def close(self) -> None:
        if self.waiting_npu is None:
            self._next_report()
        self.process.send("exit")
        self.waiting_npu = None
        while True:
            line = self.process.readline()
            if "All Request Has Been Exited" in line:
                break
            if "ERROR: Some Requests Remain" in line:
                raise EngineError("the engine reports unfinished workloads at exit")
        self.process.finish()

    def kill(self) -> None:
        self.process.kill()
