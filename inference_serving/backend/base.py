"""The engine-backend interface: one engine subprocess per simulation, driven over stdin/stdout.

Backends (BACKENDS) expose the same calls:

  load(prefix, npus)   start `<prefix>.<npu>.et` on idle NPUs at the current tick
  chain(listing, npus, on_folded, after)  start a chain's listing (plan/chain.py) on idle NPUs
                       (backends with `chain`); with `on_folded` the listing is the first NPU's (the
                       others' send and receive peers shifted), the engine may simulate the group once
                       where that is exact (with `after`: only if the chain just before was folded), and
                       on_folded(whether it did) is called once its answer is read
  settle()             read the answers to every command sent so far
  step(limit=None)     run until workloads complete -> Event("done", tick, npus);
                       with a limit, stop at it if nothing completes before -> Event("time", ...)
  advance(tick)        let an idle engine's clock jump forward
  close(), kill()

and declare what they support (`spans`: per-node timings for --chrome-trace; `reuse`: a reused
iteration may skip the engine, which then catches up with `advance`; `chain`: graphs on the pipe
instead of files). Every read has a timeout; an
engine that exits, fails or stays silent raises EngineError.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, ClassVar, NamedTuple

from ..registry import Registry

BACKENDS = Registry("engine backend", "--astra-sim", {
    "step": ".backend.step:StepEngine",
    "astra-sim": ".backend.compat:CompatEngine",
})


class Event(NamedTuple):
    """(A named tuple: one is made for every reply of the engine.)"""

    kind: str              # "done" or "time"
    tick: int
    npus: tuple[int, ...] = ()


@dataclass(frozen=True)
class EngineSetup:
    """What every backend is started with."""

    binary: Path
    configs: dict[str, Path]   # engine flag -> file (system, network, memory)
    workdir: Path
    timeout_s: float
    npus: int
    span_file: Path | None = None
    spin_us: int = 0           # how long each side polls for the other's next message (process.py)
    collapse: bool = True      # our engine runs a lone chain's self-timed nodes as one event (off: --no-reuse)


class EngineBackend(ABC):
    supports_spans: ClassVar[bool]
    supports_reuse: ClassVar[bool]
    supports_chain: ClassVar[bool]
    folds = 0  # groups the engine simulated once for all their members (chain ... fold)

    @abstractmethod
    def load(self, prefix: Path, npus: list[int]) -> None: ...

    def chain(self, listing: bytes, npus: list[int], on_folded: Callable[[bool], None] | None = None,
              after: bool = False) -> None:
        raise NotImplementedError(f"{type(self).__name__} reads graphs from files only")

    def settle(self) -> None:
        raise NotImplementedError(f"{type(self).__name__} reads graphs from files only")

    @abstractmethod
    def step(self, limit: int | None = None) -> Event: ...

    @abstractmethod
    def advance(self, tick: int) -> None: ...

    @abstractmethod
    def close(self) -> None: ...

    @abstractmethod
    def kill(self) -> None: ...


def config_flags(configs: dict[str, Path]) -> list[str]:
    groups = [f"--comm-group-configuration={configs['groups']}"] if "groups" in configs else []
    return [f"--system-configuration={configs['system']}", f"--network-configuration={configs['network']}",
            f"--remote-memory-configuration={configs['memory']}", *groups]
