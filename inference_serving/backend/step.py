"""Our engine's `--protocol=step` (one reply per command; astra-sim/README.md).

Commands whose answer the loop does not read (load and chain answer `ok`, advance the time it reached)
are not waited for: they are sent with the next command in one write and their replies read, in order,
with its reply, so an iteration costs one round trip to the engine instead of two (`settle` reads them
at once where an answer is needed sooner).
"""
from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Callable

from ..errors import EngineError
from .base import EngineBackend, EngineSetup, Event, config_flags
from .process import EngineProcess


class StepEngine(EngineBackend):
    """Our engine's step protocol: load / step [limit] / advance / exit."""

    supports_spans = True
    supports_reuse = True
    supports_chain = True

    def __init__(self, setup: EngineSetup) -> None:
        # posted commands whose reply is to be read: (command, the reply's first word, what to tell of a fold)
        self.unanswered: deque[tuple[str, str, Callable | None]] = deque()
        self.outgoing: list[bytes] = []         # posted commands not sent yet
        spans = [f"--span-file={setup.span_file}"] if setup.span_file is not None else []
        collapse = [] if setup.collapse else ["--no-collapse"]
        argv = [str(setup.binary), "--protocol=step", f"--spin-us={setup.spin_us}", *config_flags(setup.configs),
                *spans, *collapse]
        self.process = EngineProcess(argv, setup.workdir, setup.timeout_s, setup.spin_us)
        self._expect("ready")

    def _expect(self, word: str) -> list[str]:
        line = self.process.readline()
        parts = line.split()
        if not parts or parts[0] != word:
            self.process.kill()
            raise EngineError(f"unexpected engine reply '{line}' (expected '{word} ...')")
        return parts[1:]

    def _reply(self, line: str, replies: tuple[str, ...]) -> list[str]:
        reply = self.process.readline()
        parts = reply.split()
        if not parts or parts[0] not in replies:
            raise EngineError(f"unexpected engine reply '{reply}' to '{line}'")
        return parts

    def _command(self, line: str, *replies: str) -> list[str]:
        self.outgoing.append(line.encode() + b"\n")
        self.settle()
        return self._reply(line, replies)

    def settle(self) -> None:
        if self.outgoing:
            self.process.write(b"".join(self.outgoing))
            self.outgoing = []
        while self.unanswered:
            line, reply, on_folded = self.unanswered.popleft()
            folded = self._reply(line, (reply,))[1:] == ["folded"]
            self.folds += folded
            if on_folded is not None:
                on_folded(folded)

    def _post(self, line: str, payload: bytes = b"", on_folded: Callable | None = None, reply: str = "ok") -> None:
        self.outgoing.append(line.encode() + b"\n" + payload)
        self.unanswered.append((line, reply, on_folded))

    def load(self, prefix: Path, npus: list[int]) -> None:
        self._post(f"load {prefix} {','.join(map(str, npus))}")

    def chain(self, listing: bytes, npus: list[int], on_folded: Callable[[bool], None] | None = None,
              after: bool = False) -> None:
        fold = "" if on_folded is None else " fold after" if after else " fold"
        self._post(f"chain {','.join(map(str, npus))} {len(listing)}{fold}", listing, on_folded)

    def step(self, limit: int | None = None) -> Event:
        parts = self._command("step" if limit is None else f"step {limit}", "done", "time", "idle")
        if parts[0] == "done":
            return Event("done", int(parts[1]), tuple(int(p.split(":")[0]) for p in parts[2:]))
        return Event("time", int(parts[1]))

    def advance(self, tick: int) -> None:
        self._post(f"advance {tick}", reply="time")

    def close(self) -> None:
        self._command("exit", "bye")
        self.process.finish()

    def kill(self) -> None:
        self.process.kill()
