"""ASTRA-sim's interactive protocol, so any compatible binary can be used with `--astra-sim PATH`."""
from __future__ import annotations

import re
from pathlib import Path

from ..errors import EngineError
from ..plan.chakra import wait_graph
from .base import EngineBackend, EngineSetup, Event, config_flags
from .process import EngineProcess

REPORT = re.compile(r"sys\[(\d+)\] iteration (\d+) finished, (\d+) cycles, exposed communication (\d+) cycles")


class CompatEngine(EngineBackend):
    """ASTRA-sim's interactive protocol (LLMServingSim's fork of the analytical backend).

    The engine asks every finished NPU for work after each event time it processes. A load is
    handed to an NPU at its next question, so new work starts at the first engine timestamp
    after the call (at most one 100 ns idle tick later when the cluster is idle). Idle time is
    spent by loading a one-node wait workload, not by thousands of `pass` replies.
    """

    supports_spans = False
    supports_reuse = False
    supports_chain = False

    def __init__(self, setup: EngineSetup) -> None:
        self.cwd, self.npus = setup.workdir, setup.npus
        self.pending: dict[int, Path] = {}
        self.waiting_npu: int | None = None
        self.now = 0
        start = self.cwd / "start"
        wait_graph(1, self.npus).write(start)
        self.process = EngineProcess([str(setup.binary), f"--workload-configuration={start}",
                                      *config_flags(setup.configs)], self.cwd, setup.timeout_s,
                                     setup.spin_us)
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
