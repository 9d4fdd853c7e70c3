"""Two stand-in ranks for a tensor-parallel group whose ranks differ only in some compute ops of the block.

chain.slowest_ranks finds a group's chain from every rank's stage body. Under selective batching the
ranks' bodies differ only where each runs its own requests' attention, so building all of them (and
comparing them op by op) costs a step tp times what one body costs. Two blocks stand for all ranks'
instead: at each place where the ranks' blocks differ, the slowest op (the first rank's among equals)
in one and the quickest in the other (another rank's op where they are all as quick); the rest is
common. slowest_ranks of the two stand-ins' bodies is slowest_ranks of every rank's body where:

* the ranks' first and last parts (embedding, head) are the same and the stage has one block: each
  rank's body is the same function of its block (chain._body);
* the places where the blocks differ hold compute ops whose neighbours in the block are not compute,
  and the block's last op is common: chain._body merges a block op with its neighbour only at the
  block's ends (a seam with the embedding, with the next repetition, with the head; inside a block
  there are no two compute ops in a row), so a differing op reaches the body as it is, or merged after
  a common op (its value plus a constant, named after the common op), never merged with another
  differing op.

Then every place of the bodies differs among the stand-ins exactly where it differs among the ranks
(the quickest op differs from the slowest in value where any rank's does, so also after a common
op), and its slowest op is the same op, so slowest_ranks makes the same checks and the same chain.
Elsewhere this gives None and every rank's body is built (tests/test_stand_ins.py compares both).
slowest_places, the slowest op at each place where runs differ, is slowest_ranks' pass over the ranks' runs too.
"""
from __future__ import annotations

from operator import attrgetter

VALUE = attrgetter("value")


def stand_in_blocks(blocks: list[list]) -> tuple[list, ...] | None:
    """The stand-ins' blocks from every rank's ops of the stage's one block: one block where the ranks' are
    all the same, two where they differ as the module says, else None."""
    length = len(blocks[0])
    if any(len(block) != length for block in blocks):
        return None
    found = slowest_places(blocks)
    if found is None:
        return None
    slowest, places = found
    if not places:
        return (list(slowest),)
    if not all(_alone_inside(slowest, place) for place in places):
        return None
    quickest = list(slowest)
    for place in places:
        column = [block[place] for block in blocks]
        quick = min(column, key=VALUE)
        quickest[place] = quick if quick.value < slowest[place].value else next(op for op in column
                                                                               if op != slowest[place])
    return list(slowest), quickest


def slowest_places(runs: list) -> tuple[tuple, list[int]] | None:
    """(the ranks' runs of ops (of one length) with the longest compute op at each place where they differ,
    those places), or None where they differ in anything but compute."""
    if alike(runs):
        return tuple(runs[0]), []
    ops, places = list(runs[0]), []
    for place, column in enumerate(zip(*runs)):
        if not alike(column):
            if any(op.kind != "comp" for op in column):
                return None
            ops[place] = max(column, key=VALUE)
            places.append(place)
    return tuple(ops), places


def alike(ranks) -> bool:
    """Whether every rank has the same (ops, or op at a place)."""
    return ranks.count(ranks[0]) == len(ranks)


def _alone_inside(block: list, place: int) -> bool:
    """Whether a differing op at `place` keeps away from other compute: not the block's last op (merged
    with what follows, named after itself), no compute op next to it."""
    if place == len(block) - 1:
        return False
    return block[place + 1].kind != "comp" and (place == 0 or block[place - 1].kind != "comp")
