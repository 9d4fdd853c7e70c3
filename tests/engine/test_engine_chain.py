"""`chain`: an NPU's ops listed on the step protocol's stdin instead of an ET file, a repeated run written
once; and folding (`chain ... fold`): one NPU simulated for a group that runs the same chain, its
collectives timed as the whole group's."""
import pytest
from engine_driver import Step, parse_done
from etgen import ALL_REDUCE, coll, comp, mem_load, mem_store

from engine_formulas import MiB

RING4 = dict(topology=["Ring"], npus=[4], bandwidth=[100], latency=[500])
FC8 = dict(topology=["FullyConnected"], npus=[8], bandwidth=[300], latency=[0])
# two parallel KV stores, then (comp, all-reduce, comp, all-reduce) three times, a load and a comp
LISTING = (b"2\nstore 4096 evict\nstore 100 evict2\nrepeat 3 4\ncomp 1000 a+\nallreduce 1048576 o_allreduce\n"
           b"comp 700 b+\nallreduce 65536 down_allreduce\nload 4096 input\ncomp 300 head+\n")


def layers_as_nodes():
    """LISTING as ET nodes: the same ids, names, dependencies and sizes."""
    nodes = [mem_store(0, 4096), mem_store(1, 100)]
    for layer in range(3):
        first = 2 + 4 * layer
        nodes += [comp(first, 1000, deps=[first - 1] if layer else [0, 1]), coll(first + 1, ALL_REDUCE, MiB, deps=[first]),
                  comp(first + 2, 700, deps=[first + 1]), coll(first + 3, ALL_REDUCE, 65536, deps=[first + 2])]
    return nodes + [mem_load(14, 4096, deps=[13]), comp(15, 300, deps=[14])]


def finish(case, commands, args=()):
    """The replies to `commands` (strings, or (npus, listing, fold) chains), then `step` until every
    NPU finished: (replies, {npu: (T, E)})."""
    with Step(case.root, case.config_args() + list(args)) as step:
        replies = [step.chain(*c) if isinstance(c, tuple) else step.send(c) for c in commands]
        done = {}
        while len(done) < case.num_npus:
            tick, npus = parse_done(step.send("step"))
            done.update({npu: (tick, exposed) for npu, exposed in npus.items()})
        assert step.send("exit").startswith("bye")
        return replies, done


def test_a_chain_runs_like_the_same_nodes_loaded_from_a_file(make_case):
    case = make_case(**RING4)
    case.same_workload(layers_as_nodes())
    assert finish(case, ["load workload all"]) == finish(case, [("all", LISTING)])


def test_a_folded_group_finishes_like_its_members(make_case):
    case = make_case(**FC8)
    replies, folded = finish(case, [("all", LISTING, True)])
    assert replies == ["ok folded"]
    assert (["ok"], folded) == finish(case, [("all", LISTING)])
    assert len(set(folded.values())) == 1


def test_folded_spans_are_every_members_spans(make_case, tmp_path):
    case = make_case(**FC8)
    spans = {}
    for fold in (False, True):
        path = tmp_path / f"spans{fold}.txt"
        finish(case, [("all", LISTING, fold)], [f"--span-file={path}"])
        spans[fold] = sorted(path.read_text().splitlines())
    assert spans[True] == spans[False] and len(spans[True]) == 8 * 16


def test_a_group_that_is_not_the_collectives_ring_is_not_folded(make_case):
    """NPUs 0 and 1 of a 4-NPU ring cannot finish an all-reduce of the whole ring by themselves:
    no fold; NPUs 2 and 3 join at the same tick and all four finish together."""
    case = make_case(**RING4)
    replies, done = finish(case, [("0,1", LISTING, True), ("2,3", LISTING, True)])
    assert replies == ["ok", "ok"]
    assert done == finish(case, [("all", LISTING)])[1]


def test_a_shared_memory_pool_is_not_folded(make_case):
    case = make_case(**FC8, memory={"memory-type": "MEMORY_POOL", "remote-mem-latency": 0, "remote-mem-bw": 10})
    replies, done = finish(case, [("all", LISTING, True)])
    assert replies == ["ok"]
    assert done == finish(case, [("all", LISTING)])[1]


def test_point_to_point_chains_are_not_folded(make_case):
    case = make_case(**FC8)
    sends = {npu: f"0\nsend 64 {npu} {(npu + 1) % 8} 1 out\nrecv 64 {(npu - 1) % 8} {npu} 1 in\n".encode()
             for npu in range(8)}
    replies, _ = finish(case, [(str(npu), sends[npu], True) for npu in range(8)])
    assert replies == ["ok"] * 8


def test_folding_ends_with_the_chain(make_case):
    """After a folded chain every member is idle again and takes its own chain."""
    case = make_case(**FC8)
    with Step(case.root, case.config_args()) as step:
        assert step.chain("all", LISTING, True) == "ok folded"
        tick, npus = parse_done(step.send("step"))
        assert sorted(npus) == list(range(8))
        assert [step.chain(str(npu), f"0\ncomp {100 * (npu + 1)} own\n".encode()) for npu in range(8)] == ["ok"] * 8
        assert [parse_done(step.send("step"))[0] for _ in range(8)] == [tick + 100 * (npu + 1) for npu in range(8)]


def test_a_follower_is_busy_while_its_group_runs(make_case):
    case = make_case(**FC8)
    with Step(case.root, case.config_args()) as step:
        assert step.chain("all", LISTING, True) == "ok folded"
        assert step.send("load nothing 5") is None
        done = step.finish()
    assert done.rc == 2 and "NPU 5 is still running chain#1" in done.stderr


def test_a_payload_cut_short_is_a_protocol_error(make_case):
    case = make_case(**FC8)
    with Step(case.root, case.config_args()) as step:
        step.proc.stdin.write("chain all 100\n")
        step.proc.stdin.buffer.write(b"0\ncomp")
        step.close_stdin()
        done = step.finish()
    assert done.rc == 2 and "stdin ended inside the chain's 100 bytes" in done.stderr


def test_a_bad_listing_names_its_line(make_case):
    case = make_case(**FC8)
    with Step(case.root, case.config_args()) as step:
        assert step.chain("all", b"0\ncomp 10 a\njump 5 b\n") is None
        done = step.finish()
    assert done.rc == 1 and "chain#1 line 3: unknown op 'jump'" in done.stderr


# Two pipeline stages of four NPUs (a group each): stage 0 sends every NPU's hidden state to the same
# rank of stage 1 (NPU + 4), which receives it, computes and all-reduces.
PIPELINE = dict(topology=["FullyConnected", "Switch"], npus=[4, 2], bandwidth=[300, 50], latency=[0, 700],
                comm_group={"0": [0, 1, 2, 3], "1": [4, 5, 6, 7]})


def first_stage(npu: int, comp_ns: int = 800) -> bytes:
    return (f"0\nload 4096 input\ncomp 1000 a\nallreduce 1048576 ar\ncomp {comp_ns} b\n"
            f"send 65536 {npu} {npu + 4} 1 out\n").encode()


def second_stage(npu: int) -> bytes:
    return f"0\nrecv 65536 {npu - 4} {npu} 1 in\ncomp 500 c\nallreduce 65536 ar\nstore 16 output\n".encode()


def stage_chains(stage, npus, fold):
    """The stage's chains: the first NPU's for the group with `fold`, else one per NPU."""
    if fold:
        return [(",".join(map(str, npus)), stage(npus[0]), True)]
    return [(str(npu), stage(npu)) for npu in npus]


@pytest.mark.parametrize("first_folded, second_folded", [(True, True), (True, False)])
def test_a_folded_stage_sends_and_receives_every_members_messages(make_case, first_folded, second_folded):
    """Folded pipeline stages finish every NPU at the ticks of the unfolded run; a folded sender's members'
    messages also reach a receiving stage that is not folded."""
    case = make_case(**PIPELINE)
    unfolded = finish(case, stage_chains(first_stage, [0, 1, 2, 3], False) + stage_chains(second_stage, [4, 5, 6, 7], False))
    replies, folded = finish(case, stage_chains(first_stage, [0, 1, 2, 3], first_folded)
                             + stage_chains(second_stage, [4, 5, 6, 7], second_folded))
    assert replies == ["ok folded"] * first_folded + ["ok"] * 4 * (not first_folded) \
        + ["ok folded"] * second_folded + ["ok"] * 4 * (not second_folded)
    assert folded == unfolded[1]
    # stage 1 ends after stage 0's: the receive waits for the 64 KiB message (700 ns switch latency twice)
    assert len({tick for tick, _ in folded.values()}) == 2


def test_fold_after_folds_only_after_a_folded_chain(make_case):
    """`fold after` right after the senders' folded chain folds; after their unfolded chains (the last one
    listed for NPU 3 alone) it does not, and every NPU ends as in the unfolded run."""
    case = make_case(**PIPELINE)
    unfolded = finish(case, stage_chains(first_stage, [0, 1, 2, 3], False) + stage_chains(second_stage, [4, 5, 6, 7], False))
    replies, folded = finish(case, [*stage_chains(first_stage, [0, 1, 2, 3], True), ("4,5,6,7", second_stage(4), "after")])
    assert (replies, folded) == (["ok folded", "ok folded"], unfolded[1])
    replies, done = finish(case, [*stage_chains(first_stage, [0, 1, 2, 3], False), ("4,5,6,7", second_stage(4), "after")])
    assert (replies, done) == (["ok"] * 5, unfolded[1])


def test_a_group_whose_shifted_peer_is_a_member_is_not_folded(make_case):
    """NPU 1's peer, NPU 2 shifted by its offset, is NPU 3, a member of the group: the group is simulated NPU
    by NPU, each sending to its own shifted peer (0 to 2, 1 to 3, 3 to 5)."""
    case = make_case(**PIPELINE)
    with Step(case.root, case.config_args()) as step:
        assert step.chain("0,1,3", b"0\nsend 64 0 2 1 out\n", True) == "ok"
        assert [step.chain(str(npu), f"0\nrecv 64 {src} {npu} 1 in\n".encode()) for npu, src in ((2, 0), (5, 3))] == ["ok"] * 2
        finished = []
        while (reply := step.send("step")).startswith("done"):
            finished += parse_done(reply)[1]
        assert sorted(finished) == [0, 1, 2, 3, 5]


def test_a_group_whose_shifted_peer_is_off_the_network_is_an_input_error(make_case):
    case = make_case(**PIPELINE)
    with Step(case.root, case.config_args()) as step:
        assert step.chain("0,4", b"0\nsend 64 0 5 1 out\n", True) is None
        done = step.finish()
    assert done.rc == 1 and "(NPU 4): node 0 'out': comm_dst 9 is not an NPU of this network" in done.stderr


def test_a_folded_receive_from_senders_that_ended_apart_is_a_protocol_error(make_case):
    """Stage 0's NPUs compute for different times and run unfolded: their messages arrive apart, so stage 1
    cannot be folded; the engine says so instead of giving every member the first NPU's tick."""
    case = make_case(**PIPELINE)
    with Step(case.root, case.config_args()) as step:
        for npu in range(4):
            assert step.chain(str(npu), first_stage(npu, comp_ns=800 + 100 * npu)) == "ok"
        assert step.chain("4,5,6,7", second_stage(4), True) == "ok folded"
        while (reply := step.send("step")) is not None and reply.startswith("done"):
            pass
        done = step.finish()
    assert done.rc == 2 and "NPU 5's message from NPU 1 would not arrive with NPU 4's" in done.stderr
