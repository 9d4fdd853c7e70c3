"""Answers kept on disk between runs (a provider's; a hardware file's checks), so a warm start does not
load measurement tables nor import what checks a file.

One file per key under `$XDG_CACHE_HOME/llmservingsim/` (default `~/.cache/llmservingsim/`): a
pickled mapping from a question (a tuple) to the exact value the provider computed for it. The key
names everything an answer depends on (the package versions, our provider's source, the system, the
model's shape, the precision), so a file made by other versions or inputs is never read: it has
another name, and a file whose stored key differs, or that cannot be read, counts as empty.

Runs may share a file: `save` merges the file as it is now with this run's new answers and replaces
it by renaming a private temporary file (atomic on POSIX), so a reader sees one whole version or the
other, never a mix; when two runs save at once, one's new answers may be missing, to be computed
again later.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import tempfile
from collections.abc import Callable
from functools import lru_cache
from importlib.util import find_spec
from pathlib import Path
from typing import Any

CACHE_FORMAT = 1


def cache_folder() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "llmservingsim"


@lru_cache(maxsize=None)
def installed_version(package: str, distribution: str | None = None) -> str:
    """An installed package's version, from its dist-info folder's name (neither the package nor its
    metadata is imported); `distribution` is its name there where it differs (PyYAML: yaml, pyyaml).
    Looked up once per process (a run asks for it for several caches)."""
    site = Path(find_spec(package).origin).resolve().parent.parent
    return ",".join(sorted(p.name for p in site.glob(f"{distribution or package}-*.dist-info"))) or "unknown"


def source_digest(*paths: Path) -> str:
    """sha256 of the files' bytes: a provider's code as part of its cache key."""
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


class AnswerCache:
    """Answers by question, read from the key's file; `save` writes back the ones added since."""

    def __init__(self, name: str, key: tuple) -> None:
        self.key = (CACHE_FORMAT, *key)
        digest = hashlib.sha256(repr(self.key).encode()).hexdigest()[:24]
        self.path = cache_folder() / f"{name}-{digest}.pickle"
        self.answers: dict = self._read()
        self.added: dict = {}

    def _read(self) -> dict:
        try:
            with open(self.path, "rb") as handle:
                stored = pickle.load(handle)
        except (OSError, pickle.UnpicklingError, EOFError, AttributeError, ValueError, TypeError):
            return {}
        if not isinstance(stored, dict) or stored.get("key") != self.key:
            return {}
        return stored.get("answers", {})

    def get(self, question: tuple):
        return self.answers.get(question)

    def answer(self, question: tuple, compute: Callable[[], Any]):
        """The stored answer, or compute's, stored and saved (None counts as no answer)."""
        answer = self.answers.get(question)
        if answer is None:
            answer = compute()
            self.put(question, answer)
            self.save()
        return answer

    def put(self, question: tuple, answer) -> None:
        self.answers[question] = answer
        self.added[question] = answer

    def save(self) -> None:
        """Merges the new answers into the file (nothing to do without new answers); a cache folder
        that cannot be written is left alone (the cache only saves time)."""
        if not self.added:
            return
        merged = {"key": self.key, "answers": {**self._read(), **self.added}}
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            handle, temporary = tempfile.mkstemp(prefix=self.path.name, suffix=".tmp", dir=self.path.parent)
        except OSError:
            return
        try:
            with os.fdopen(handle, "wb") as out:
                pickle.dump(merged, out, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temporary, self.path)
            self.added = {}
        except OSError:
            Path(temporary).unlink(missing_ok=True)
