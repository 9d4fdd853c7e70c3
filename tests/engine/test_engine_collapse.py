"""Collapsed runs (astra-sim/README.md, step protocol): while a `step` runs, a lone chain's run of nodes that
take their own time is one event. Every session here gets the same replies with and without `--no-collapse`;
the lone chains' finish ticks are derived by hand, and the sessions where collapsing would show (another
workload, a limit inside the run) must not collapse."""
from engine_driver import Step, parse_done
from test_engine_chain import FC8, LISTING

from engine_formulas import mem

POOL = {"memory-type": "MEMORY_POOL", "remote-mem-latency": 0, "remote-mem-bw": 10}
ONE = dict(topology=["FullyConnected"], npus=[1], bandwidth=[100], latency=[0])
TWO = dict(topology=["FullyConnected"], npus=[2], bandwidth=[100], latency=[0])
# four comps, one of no time (skipped): 100 + 0 + 250 + 50 ns
COMPS = b"0\ncomp 100 a\ncomp 0 nothing\ncomp 250 b\ncomp 50 c\n"


def transcript(case, commands, collapse):
    """The replies to `commands`: strings, or (npus, listing[, fold]) chains."""
    args = case.config_args() + ([] if collapse else ["--no-collapse"])
    with Step(case.root, args) as step:
        replies = [step.chain(*c) if isinstance(c, tuple) else step.send(c) for c in commands]
        assert step.send("exit").startswith("bye")
    return replies


def both(case, commands):
    """The replies with collapsed runs, asserted equal to those without."""
    collapsed = transcript(case, commands, True)
    assert collapsed == transcript(case, commands, False)
    return collapsed


def test_a_lone_chain_finishes_at_the_sum_of_its_times(make_case):
    """Nodes 1-3 run as one event from tick 100 (node 0 was issued by the command); GPU time 400, none exposed."""
    replies = both(make_case(**ONE), [("0", COMPS), "step"])
    assert replies == ["ok", "done 400 0:0"]


def test_a_limit_inside_the_run_stops_there(make_case):
    """`step 250` may be answered before the run's end (400): the nodes run one by one, 'b' ending at 350."""
    replies = both(make_case(**ONE), [("0", COMPS), "step 250", "step 360", "step"])
    assert replies == ["ok", "time 250", "time 360", "done 400 0:0"]


def test_a_limit_past_the_run_lets_it_collapse(make_case):
    replies = both(make_case(**ONE), [("0", COMPS), "step 400", "step 1000"])
    assert replies == ["ok", "done 400 0:0", "time 1000"]


def test_a_folded_group_collapses_between_its_memory_nodes(make_case):
    """LISTING folded on 8 NPUs: stores, three layers of comps and all-reduces, a load, a comp."""
    case = make_case(**FC8)
    replies = both(case, [("all", LISTING, True), "step"])
    assert replies[0] == "ok folded"
    tick, npus = parse_done(replies[1])
    assert sorted(npus) == list(range(8)) and len(set(npus.values())) == 1


def test_stores_queued_at_a_shared_pool_keep_their_order(make_case):
    """Two NPUs end their comps at tick 150 and store to one memory pool. Uncollapsed, NPU 0's last comp is
    queued at 130 and NPU 1's at 140, so NPU 0 is served first; runs collapsed at 100 and 50 would swap them.
    Neither chain is alone, so neither collapses."""
    case = make_case(**TWO, memory=POOL)
    chains = [("1", b"0\ncomp 50 a\ncomp 90 b\ncomp 10 c\nstore 1000 out\n"),
              ("0", b"0\ncomp 100 a\ncomp 30 b\ncomp 20 c\nstore 1000 out\n")]
    replies = both(case, [*chains, "step", "step"])
    store = mem(1000, 0, 10)
    # exposed: the time past the GPU's 150 ns, the stores and the wait for the pool
    assert replies[2:] == [f"done {150 + store} 0:{store}", f"done {150 + 2 * store} 1:{2 * store}"]


def test_a_chain_started_at_a_limit_meets_the_runs_nodes_one_by_one(make_case):
    """After `step 250` NPU 1 starts a comp that ends at 400 with NPU 0's last comp, queued at 250 against
    NPU 0's at 350: NPU 1's store is served first. A run collapsed past the limit (queued at 100) would
    be served first instead."""
    case = make_case(**TWO, memory=POOL)
    commands = [("0", COMPS + b"store 1000 out\n"), "step 250", ("1", b"0\ncomp 150 x\nstore 1000 out\n"),
                "step", "step"]
    replies = both(case, commands)
    store = mem(1000, 0, 10)
    assert replies[1] == "time 250"
    assert replies[3:] == [f"done {400 + store} 1:{400 + store - 150}", f"done {400 + 2 * store} 0:{2 * store}"]
