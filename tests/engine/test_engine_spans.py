"""`--span-file=PATH`: one line `npu node_id kind start end name` appended per completed node."""
from engine_driver import run_batch
from etgen import ALL_REDUCE, coll, comp, mem_load, node
from chakra.schema.protobuf.et_def_pb2 import NodeType

ONE_NPU = dict(topology=["FullyConnected"], npus=[1], bandwidth=[256], latency=[0])
RING4 = dict(topology=["Ring"], npus=[4], bandwidth=[100], latency=[500])


def spans(path):
    out = []
    for line in path.read_text().splitlines():
        npu, node_id, kind, start, end, name = line.split(" ", 5)
        out.append((int(npu), int(node_id), kind, int(start), int(end), name))
    return out


def test_spans_of_a_chain_and_slots(make_case):
    case = make_case(**ONE_NPU)
    # 0 and 1 share the GPU slot (0 first), 2 is a CPU node overlapping them, 3 is skipped (no span),
    # 4 a memory load after 1 (0 ns at 512 GB/s with size 0? size 1024: floor(1024/512) = 2 ns)
    case.same_workload([comp(0, 300), comp(1, 400), comp(2, 500, cpu=True), comp(3, 0),
                        node(4, NodeType.INVALID_NODE), mem_load(5, 1024, deps=[1])])
    result = run_batch(case.root, case.argv(extra=["--span-file=spans.txt"]))
    assert result.rc == 0, result.stderr
    got = sorted(spans(case.root / "spans.txt"), key=lambda s: s[1])
    end = result.finishes[0][0]
    assert [(s[1], s[2], s[3], s[4]) for s in got] == [
        (0, "compute", 0, 300), (1, "compute", 300, 700), (2, "compute", 0, 500), (5, "memory", 700, end)]
    assert all(s[0] == 0 and s[5] for s in got)


def test_spans_of_a_collective_end_at_the_finish_tick_and_append(make_case):
    case = make_case(**RING4)
    case.same_workload([comp(0, 100), coll(1, ALL_REDUCE, 1 << 20, deps=[0])])
    for _ in range(2):
        result = run_batch(case.root, case.argv(extra=["--span-file", "spans.txt"]))
        assert result.rc == 0, result.stderr
    got = spans(case.root / "spans.txt")
    assert len(got) == 16  # two runs appended, 4 NPUs, 2 nodes
    for npu in range(4):
        mine = [s for s in got[:8] if s[0] == npu]
        assert [(s[2], s[3]) for s in mine] == [("compute", 0), ("communication", 100)]
        assert mine[1][4] == result.finishes[npu][0]


def test_unwritable_span_file_is_an_input_error(make_case):
    case = make_case(**ONE_NPU)
    case.same_workload([comp(0, 300)])
    result = run_batch(case.root, case.argv(extra=["--span-file=no/such/dir/spans.txt"]))
    assert result.rc == 1 and "--span-file" in result.stderr
