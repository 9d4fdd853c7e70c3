"""vLLM's block pool (recompute on preemption): full prompt blocks are identified by the hash of all
tokens up to their end and shared between requests; a freed hashed block stays cached (least
recently freed is reused first) until its space is needed. vLLM hashes generated tokens' full blocks
too; we can where the output ids are known (turns of a session). A block takes its hash when it is
allocated, not when it is filled: a request arriving meanwhile with the same prefix would count it as
computed (in a session the next turn arrives only after this one ends)."""
from __future__ import annotations

from collections import OrderedDict

from ...inputs.workload import Request
from .layout import MemoryLayout
from .pool import KVManager


class PrefixCacheKV(KVManager):
    def __init__(self, layout: MemoryLayout, total_blocks: int, caching: bool = True) -> None:
        super().__init__(layout, total_blocks)
        self.caching = caching
        self.refs: dict = {}                       # block key -> requests holding it
        self.cached_free: OrderedDict = OrderedDict()  # hashed blocks with no holder, LRU first
        self.owned: dict[int, list] = {}           # request id -> its block keys
        self._next_unique = 0
        self._hashes: dict[int, list[int]] = {}    # request id -> its prompt's block hashes

    def prompt_hashes(self, request: Request) -> list[int]:
        """Chained hashes of the full blocks of a prompt with known token ids, and of its output where the
        request knows its output ids too (a session turn, whose output a later turn's prompt repeats);
        computed once."""
        if not self.caching or request.token_ids is None:
            return []
        hashes = self._hashes.get(request.id)
        if hashes is None:
            ids = request.token_ids + (request.output_token_ids or ())
            size, hashes, previous = self.layout.block_size, [], 0
            for start in range(0, len(ids) - size + 1, size):
                previous = hash((previous, ids[start:start + size]))
                hashes.append(previous)
            self._hashes[request.id] = hashes
        return hashes

    def cached_prefix(self, request: Request, tokens: int) -> list[int]:
        """Leading prompt blocks found in the cache; at least one token is always left to compute."""
        found = self._found_prefix(request, tokens)
        self.prefix_queries += 1
        self.prefix_hits += bool(found)
        self.prefix_query_tokens += tokens
        self.prefix_hit_tokens += len(found) * self.layout.block_size
        return found

    def cached_prefix_blocks(self, request: Request, tokens: int) -> int:
        """How many leading prompt blocks are cached, without counting a lookup (for routers)."""
        return len(self._found_prefix(request, tokens))

    def _found_prefix(self, request: Request, tokens: int) -> list[int]:
        usable = (tokens - 1) // self.layout.block_size
        found = []
        for key in self.prompt_hashes(request)[:usable]:
            if not self._cached(key):
                break
            found.append(key)
        return found

    def _cached(self, key) -> bool:
        """Whether a block with this key can be reused."""
        return key in self.refs or key in self.cached_free

    def can_allocate(self, request: Request, tokens: int, reuse: list = ()) -> bool:
        held = len(self.owned.get(request.id, ())) + len(reuse)
        fresh = max(0, self.blocks_for(tokens) - held)
        reused_unheld = sum(1 for key in reuse if key not in self.refs)  # each takes a free block
        return fresh + reused_unheld <= self.free_blocks

    def allocate(self, request: Request, tokens: int, reuse: list = ()) -> None:
        blocks = self.owned.setdefault(request.id, [])
        for key in reuse:
            self._hold(key)
            blocks.append(key)
        hashes, needed = self.prompt_hashes(request), self.blocks_for(tokens)
        for index in range(len(blocks), needed):
            key = hashes[index] if index < len(hashes) and hashes[index] not in self.refs else None
            if key is None:
                key, self._next_unique = ("unique", self._next_unique), self._next_unique + 1
            self._take_block(key)
            blocks.append(key)

    def _hold(self, key) -> None:
        if key in self.refs:
            self.refs[key] += 1
            return
        del self.cached_free[key]
        self.refs[key] = 1
        self.used_blocks += 1

    def _take_block(self, key) -> None:
        """A free device block for `key` (its cached copy, if any, is overwritten), held once."""
        self._make_room()
        self.cached_free.pop(key, None)
        self.refs[key] = 1
        self.used_blocks += 1

    def _make_room(self) -> None:
        """Evicts the least recently freed cached block when every free block holds cached data."""
        if self.used_blocks + len(self.cached_free) >= self.total_blocks and self.cached_free:
            self._evict(self.cached_free.popitem(last=False)[0])

    def _evict(self, key) -> None:
        """A cached block leaves the device: its data is dropped."""

    def free(self, request_id: int) -> None:
        for key in reversed(self.owned.pop(request_id, [])):
            self._release(key)

    def truncate(self, request_id: int, tokens: int) -> None:
        """Releases the request's blocks beyond those that hold `tokens` tokens (rejected draft tokens)."""
        blocks = self.owned[request_id]
        while len(blocks) > self.blocks_for(tokens):
            self._release(blocks.pop())

    def _release(self, key) -> None:
        """One holder fewer; a block nobody holds is free, and stays cached when it has a hash."""
        self.refs[key] -= 1
        if self.refs[key] == 0:
            del self.refs[key]
            self.used_blocks -= 1
            if not isinstance(key, tuple):
                self.cached_free[key] = None
