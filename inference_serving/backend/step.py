"""Our engine's `--protocol=step` (one reply per command; astra-sim/README.md)."""
from __future__ import annotations

from pathlib import Path

from ..errors import EngineError
from .base import EngineBackend, EngineSetup, Event, config_flags
from .process import EngineProcess


class StepEngine(EngineBackend):
    """Our engine's step protocol: load / step [limit] / advance / exit."""

    supports_spans = True
    supports_reuse = True

    def __init__(self, setup: EngineSetup) -> None:
        spans = [f"--span-file={setup.span_file}"] if setup.span_file is not None else []
        argv = [str(setup.binary), "--protocol=step", *config_flags(setup.configs), *spans]
        self.process = EngineProcess(argv, setup.workdir, setup.timeout_s)
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
