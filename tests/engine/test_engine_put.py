"""`put`: traces on the step protocol's stdin instead of files, and folding (`put ... fold`): one NPU
simulated for a group that runs the same trace, its collectives timed as the whole group's."""
from engine_driver import Step, parse_done
from etgen import ALL_REDUCE, coll, comp, et_bytes, mem_load

from engine_formulas import MiB

RING4 = dict(topology=["Ring"], npus=[4], bandwidth=[100], latency=[500])
FC8 = dict(topology=["FullyConnected"], npus=[8], bandwidth=[300], latency=[0])
LAYERS = [comp(0, 1000), coll(1, ALL_REDUCE, MiB, deps=[0]), comp(2, 700, deps=[1]),
          coll(3, ALL_REDUCE, 64 * 1024, deps=[2]), mem_load(4, 4096, deps=[3]), comp(5, 300, deps=[4])]


def finish(case, commands, args=()):
    """The replies to `commands` (strings, or (npus, data, fold) puts), then `step` until every NPU
    finished: (replies, {npu: (T, E)})."""
    with Step(case.root, case.config_args() + list(args)) as step:
        replies = [step.put(*c) if isinstance(c, tuple) else step.send(c) for c in commands]
        done = {}
        while len(done) < case.num_npus:
            tick, npus = parse_done(step.send("step"))
            done.update({npu: (tick, exposed) for npu, exposed in npus.items()})
        assert step.send("exit").startswith("bye")
        return replies, done


def test_put_runs_the_trace_like_a_loaded_file(make_case):
    case = make_case(**RING4)
    case.same_workload(LAYERS)
    loaded = finish(case, ["load workload all"])
    assert loaded == finish(case, [("all", et_bytes(LAYERS))])


def test_a_folded_group_finishes_like_its_members(make_case):
    case = make_case(**FC8)
    replies, folded = finish(case, [("all", et_bytes(LAYERS), True)])
    assert replies == ["ok folded"]
    assert (["ok"], folded) == finish(case, [("all", et_bytes(LAYERS))])
    assert len(set(folded.values())) == 1


def test_folded_spans_are_every_members_spans(make_case, tmp_path):
    case = make_case(**FC8)
    spans = {}
    for fold in (False, True):
        path = tmp_path / f"spans{fold}.txt"
        finish(case, [("all", et_bytes(LAYERS), fold)], [f"--span-file={path}"])
        spans[fold] = sorted(path.read_text().splitlines())
    assert spans[True] == spans[False] and len(spans[True]) == 8 * len(LAYERS)


def test_a_group_that_is_not_the_collectives_ring_is_not_folded(make_case):
    """NPUs 0 and 1 of a 4-NPU ring cannot finish an all-reduce of the whole ring by themselves:
    no fold; NPUs 2 and 3 join at the same tick and all four finish together."""
    case = make_case(**RING4)
    data = et_bytes(LAYERS)
    replies, done = finish(case, [("0,1", data, True), ("2,3", data, True)])
    assert replies == ["ok", "ok"]
    assert done == finish(case, [("all", data)])[1]


def test_a_shared_memory_pool_is_not_folded(make_case):
    case = make_case(**FC8, memory={"memory-type": "MEMORY_POOL", "remote-mem-latency": 0, "remote-mem-bw": 10})
    replies, done = finish(case, [("all", et_bytes(LAYERS), True)])
    assert replies == ["ok"]
    assert done == finish(case, [("all", et_bytes(LAYERS))])[1]


def test_folding_ends_with_the_trace(make_case):
    """After a folded trace every member is idle again and takes its own trace."""
    case = make_case(**FC8)
    with Step(case.root, case.config_args()) as step:
        assert step.put("all", et_bytes(LAYERS), True) == "ok folded"
        tick, npus = parse_done(step.send("step"))
        assert sorted(npus) == list(range(8))
        assert [step.put(str(npu), et_bytes([comp(0, 100 * (npu + 1))])) for npu in range(8)] == ["ok"] * 8
        assert [parse_done(step.send("step"))[0] for _ in range(8)] == [tick + 100 * (npu + 1) for npu in range(8)]


def test_a_follower_is_busy_while_its_group_runs(make_case):
    case = make_case(**FC8)
    with Step(case.root, case.config_args()) as step:
        assert step.put("all", et_bytes(LAYERS), True) == "ok folded"
        assert step.send("load nothing 5") is None
        done = step.finish()
    assert done.rc == 2 and "NPU 5 is still running put#1" in done.stderr


def test_a_payload_cut_short_is_a_protocol_error(make_case):
    case = make_case(**FC8)
    with Step(case.root, case.config_args()) as step:
        step.proc.stdin.write("put all 100\n")
        step.proc.stdin.buffer.write(b"\x01\x02")
        step.close_stdin()
        done = step.finish()
    assert done.rc == 2 and "stdin ended inside the trace's 100 bytes" in done.stderr
