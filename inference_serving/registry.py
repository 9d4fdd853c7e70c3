"""Named implementations of one interface (providers, scheduling policies, KV managers, engine
backends), imported only when asked for: the measured-GPU provider alone takes a second to import."""
from __future__ import annotations

from importlib import import_module

from .errors import InputError


class Registry:
    """`kind` names the interface in messages; entries map a name to "module:attribute" under this package."""

    def __init__(self, kind: str, flag: str, entries: dict[str, str]) -> None:
        self.kind, self.flag, self.entries = kind, flag, dict(entries)

    def names(self) -> list[str]:
        return list(self.entries)

    def get(self, name: str):
        target = self.entries.get(name)
        if target is None:
            raise InputError(f"{self.flag}: unknown {self.kind} '{name}'; known: {', '.join(self.entries)}")
        module, attribute = target.split(":")
        return getattr(import_module(module, __package__), attribute)

    def describe(self) -> list[tuple[str, str]]:
        """(name, first line of its docstring) for every entry."""
        return [(name, (self.get(name).__doc__ or "").strip().splitlines()[0]) for name in self.entries]
