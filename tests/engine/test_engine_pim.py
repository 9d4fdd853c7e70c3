"""The PIM slot: COMP nodes with `is_pim_op` run on the NPU's processing-in-memory units, beside its
compute slot; two PIM nodes share the PIM slot; --span-file names them `pim`."""
from engine_driver import run_batch
from etgen import comp, mem_load

ONE_NPU = dict(topology=["FullyConnected"], npus=[1], bandwidth=[256], latency=[0])


def finish(make_case, nodes, extra=()):
    case = make_case(**ONE_NPU)
    case.same_workload(nodes)
    result = run_batch(case.root, case.argv(extra=extra))
    assert result.rc == 0, result.stderr
    return case, result.finishes[0]


def test_pim_runs_beside_the_compute_slot(make_case):
    _, (end, exposed) = finish(make_case, [comp(1, 100), comp(2, 300, is_pim_op=True)])
    assert (end, exposed) == (300, 300 - 100)      # PIM time is not GPU compute time
    _, (end, _) = finish(make_case, [comp(1, 100), comp(2, 300)])
    assert end == 400


def test_pim_nodes_share_one_slot_and_dependencies_hold(make_case):
    # 1 (pim 300) and 2 (pim 200) serialise; 3 (compute 50) waits for 1: 300 + 50; 2 ends at 500
    _, (end, _) = finish(make_case, [comp(1, 300, is_pim_op=True), comp(2, 200, is_pim_op=True),
                                     comp(3, 50, deps=[1])])
    assert end == 500


def test_pim_spans(make_case):
    case, _ = finish(make_case, [comp(1, 100), comp(2, 300, is_pim_op=True)], extra=["--span-file=spans.txt"])
    lines = sorted((case.root / "spans.txt").read_text().splitlines())
    assert lines == ["0 1 compute 0 100 n1", "0 2 pim 0 300 n2"]


def test_pim_flag_on_a_memory_node_is_an_error(make_case):
    case = make_case(**ONE_NPU, memory={"memory-type": "PER_NPU_MEMORY_EXPANSION", "remote-mem-latency": 0,
                                        "remote-mem-bw": 64})
    node = mem_load(1, 100)
    node.attr.add(name="is_pim_op", bool_val=True)
    case.same_workload([node])
    result = run_batch(case.root, case.argv())
    assert result.rc == 1 and "is_pim_op is set on a node that is not a COMP node" in result.stderr
