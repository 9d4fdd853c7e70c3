"""Every input that makes the reference hang or crash (golden README §7, hang_list.json),
and every bad file, value or flag: our engine must exit non-zero with ONE stderr line
that names the culprit (file, NPU, node, key or value) — never hang.

Node ids are chosen to be distinctive (41..), so a match on them is no coincidence.
"""
import json
import re
from dataclasses import dataclass, field

import pytest

from chakra.schema.protobuf.et_def_pb2 import NodeType
from engine_driver import Interactive, Step, run_batch, run_interactive
from etgen import (ALL_GATHER, ALL_REDUCE, ALL_TO_ALL, BARRIER, REDUCE, REDUCE_SCATTER, coll, comp,
                   mem_load, node, recv, send, system_config)

DEADLOCK_EXIT = 3
MAX_STEPS = 20


def net(topology, npus, bandwidth=None, latency=None):
    n = len(npus)
    return dict(topology=topology, npus=npus, bandwidth=bandwidth or [100] * n, latency=latency or [500] * n)


RING4 = net(["Ring"], [4])
RING6 = net(["Ring"], [6])
RING8 = net(["Ring"], [8])
FC1 = net(["FullyConnected"], [1])
FC2 = net(["FullyConnected"], [2])


def file_of(*npus):
    """The line names the trace of one of these NPUs (which also names the NPU)."""
    return tuple(rf"workload\.{i}\.et" for i in npus)


def node_id(*ids):
    return tuple(rf"(?<![\w.]){i}(?![\w.])" for i in ids)


@dataclass
class Shape:
    """A workload that cannot finish. `groups`: each group is a tuple of alternative
    regexes, and every group must match the stderr line."""
    network: dict
    per_npu: dict  # npu -> nodes, or "all" -> nodes for every NPU
    groups: list
    system: dict = field(default_factory=dict)
    memory: dict = None
    silent: bool = False      # no NPU ever finishes, so the compat loop would ask nobody
    deadlock: bool = False    # only visible at run time across NPUs → exit code 3 in step mode
    with_metadata: bool = True

    def build(self, make_case):
        case = make_case(**self.network, system=system_config(**self.system), memory=self.memory)
        if "all" in self.per_npu:
            nodes = {i: self.per_npu["all"] for i in range(case.num_npus)}
        else:
            nodes = self.per_npu
        case.workload(nodes, with_metadata=self.with_metadata)
        return case


SHAPES = {
    # --- silent hangs of the reference
    "allgather_chunk_zero": Shape(RING4, {"all": [coll(41, ALL_GATHER, 3)]},
                                  [file_of(0, 1, 2, 3), node_id(41)],
                                  system=dict(preferred_dataset_splits=4), silent=True),
    "allgather_size_zero": Shape(RING4, {"all": [coll(42, ALL_GATHER, 0)]},
                                 [file_of(0, 1, 2, 3), node_id(42)], silent=True),
    "collective_on_one_npu_network": Shape(FC1, {"all": [coll(43, ALL_REDUCE, 1024)]},
                                           [file_of(0), node_id(43)], silent=True),
    "implementation_covers_only_1npu_dim": Shape(
        net(["FullyConnected", "FullyConnected"], [1, 4]), {"all": [coll(44, ALL_REDUCE, 1024)]},
        [file_of(0, 1, 2, 3), node_id(44)], silent=True),
    "involved_dim_all_false": Shape(RING4, {"all": [coll(45, ALL_REDUCE, 1024, involved_dim=[False])]},
                                    [file_of(0, 1, 2, 3), node_id(45)], silent=True),
    "collective_type_reduce": Shape(RING4, {"all": [coll(46, REDUCE, 1024)]},
                                    [file_of(0, 1, 2, 3), node_id(46)], silent=True),
    "collective_type_barrier": Shape(RING4, {"all": [coll(47, BARRIER, 1024)]},
                                     [file_of(0, 1, 2, 3), node_id(47)], silent=True),
    "metadata_node_in_stream": Shape(RING4, {"all": [node(48, NodeType.METADATA_NODE), comp(49, 10, deps=[48])]},
                                     [file_of(0, 1, 2, 3), node_id(48, 49)], silent=True),
    "trace_without_global_metadata": Shape(FC1, {0: [comp(50, 10), comp(51, 10, deps=[50])]},
                                           [file_of(0)], silent=True, with_metadata=False),
    "collective_sizes_differ": Shape(FC2, {0: [coll(52, ALL_REDUCE, 1024)], 1: [coll(52, ALL_REDUCE, 2048)]},
                                     [file_of(0, 1), node_id(52)], silent=True, deadlock=True),
    "collectives_in_different_order": Shape(
        RING4, {0: [coll(53, ALL_REDUCE, 1024), coll(54, ALL_REDUCE, 2048, deps=[53])],
                1: [coll(53, ALL_REDUCE, 1024), coll(54, ALL_REDUCE, 2048, deps=[53])],
                2: [coll(53, ALL_REDUCE, 2048), coll(54, ALL_REDUCE, 1024, deps=[53])],
                3: [coll(53, ALL_REDUCE, 2048), coll(54, ALL_REDUCE, 1024, deps=[53])]},
        [file_of(0, 1, 2, 3), node_id(53)], silent=True, deadlock=True),
    "halving_doubling_allreduce_on_6_npus": Shape(
        RING6, {"all": [coll(55, ALL_REDUCE, 1 << 20)]},
        [file_of(0, 1, 2, 3, 4, 5) + ("halvingDoubling",), node_id(55) + (r"power.of.(two|2)",)],
        system=dict(impl=["halvingDoubling"]), silent=True),
    # --- partial hangs of the reference
    "halving_doubling_reducescatter_on_6_npus": Shape(
        RING6, {"all": [coll(56, REDUCE_SCATTER, 1 << 20)]},
        [file_of(0, 1, 2, 3, 4, 5) + ("halvingDoubling",), node_id(56) + (r"power.of.(two|2)",)],
        system=dict(impl=["halvingDoubling"])),
    "collective_on_subset_of_npus": Shape(
        RING4, {0: [coll(57, ALL_REDUCE, 1 << 20)], 1: [coll(57, ALL_REDUCE, 1 << 20)],
                2: [comp(57, 10)], 3: [comp(57, 10)]},
        [file_of(0, 1), node_id(57)], deadlock=True),
    "recv_size_differs": Shape(FC2, {0: [send(58, 0, 1, 1000)], 1: [recv(59, 0, 1, 999)]},
                               [file_of(1), node_id(59)], deadlock=True),
    "recv_tag_differs": Shape(FC2, {0: [send(60, 0, 1, 1000, tag=0)], 1: [recv(61, 0, 1, 1000, tag=1)]},
                              [file_of(1), node_id(61)], deadlock=True),
    "recv_without_send": Shape(FC2, {0: [comp(62, 10)], 1: [recv(63, 0, 1, 1000)]},
                               [file_of(1), node_id(63)], deadlock=True),
    "dependency_on_missing_node": Shape(FC2, {0: [comp(64, 5, deps=[1051])], 1: [comp(64, 5)]},
                                        [file_of(0), node_id(64, 1051)]),
    "cyclic_send_recv": Shape(
        FC2, {0: [recv(65, 1, 0, 64), send(66, 0, 1, 64, deps=[65])],
              1: [recv(67, 0, 1, 64), send(68, 1, 0, 64, deps=[67])]},
        [file_of(0, 1), node_id(65, 66, 67, 68)], silent=True, deadlock=True),
    # --- aborts / fatal exits of the reference
    "send_recv_size_zero": Shape(FC2, {0: [send(69, 0, 1, 0)], 1: [recv(70, 0, 1, 0)]},
                                 [file_of(0, 1), node_id(69, 70)], silent=True),
    "send_to_itself": Shape(FC2, {0: [send(71, 0, 0, 1000)], 1: [comp(72, 10)]},
                            [file_of(0), node_id(71)]),
    "halving_doubling_chunk_below_2n": Shape(
        RING8, {"all": [coll(73, ALL_REDUCE, 8)]},
        [file_of(*range(8)) + ("halvingDoubling",), node_id(73) + ("chunk",)],
        system=dict(impl=["halvingDoubling"]), silent=True),
    "halving_doubling_for_all_to_all": Shape(
        RING4, {"all": [coll(74, ALL_TO_ALL, 1024)]},
        [file_of(0, 1, 2, 3) + (r"system\.json", "halvingDoubling"), node_id(74) + ("halvingDoubling", "all.?to.?all")],
        system=dict(impl=["halvingDoubling"]), silent=True),
    # --- fatal in the reference as well, or garbage (2^63 cycles for roofline 0/0)
    "memory_node_without_remote_memory": Shape(
        FC1, {0: [mem_load(75, 4096)]}, [file_of(0), node_id(75)], silent=True,
        memory={"memory-type": "NO_MEMORY_EXPANSION", "remote-mem-latency": 0, "remote-mem-bw": 512}),
    "send_to_missing_npu": Shape(FC2, {0: [send(76, 0, 7, 1000)]}, [file_of(0), node_id(76)]),
    "roofline_without_num_ops": Shape(FC1, {0: [comp(77, 100, num_ops=0, tensor_size=1000)]},
                                      [file_of(0), node_id(77)], silent=True,
                                      system=dict(roofline_enabled=1, peak_perf=100)),
}


def assert_clear_error(finished, groups):
    lines = finished.stderr_lines
    assert finished.rc != 0, f"exit status 0; stderr {lines}"
    assert len(lines) == 1, f"expected one stderr line, got {lines}"
    for alternatives in groups:
        assert any(re.search(a, lines[0], re.I) for a in alternatives), \
            f"stderr line {lines[0]!r} names none of {alternatives}"


def drive_step_until_end(step, first_command="load workload all"):
    """Send load/step commands until the engine stops answering."""
    reply = step.send(first_command) if step.greeting else None
    for _ in range(MAX_STEPS):
        if reply is None or reply.split()[:1] not in (["ok"], ["done"], ["time"]):
            break
        reply = step.send("step")
    if reply is not None:
        step.send("exit")
    return step.finish()


@pytest.mark.parametrize("name", SHAPES)
def test_hang_shape_fails_in_batch_mode(make_case, name):
    shape = SHAPES[name]
    case = shape.build(make_case)
    assert_clear_error(run_batch(case.root, case.argv()), shape.groups)


@pytest.mark.parametrize("name", SHAPES)
def test_hang_shape_fails_in_step_mode(make_case, name):
    shape = SHAPES[name]
    case = shape.build(make_case)
    with Step(case.root, case.config_args()) as step:
        finished = drive_step_until_end(step)
    assert_clear_error(finished, shape.groups)
    if shape.deadlock:
        assert finished.rc == DEADLOCK_EXIT


SILENT = [name for name, shape in SHAPES.items() if shape.silent]


@pytest.mark.parametrize("name", SILENT)
def test_silent_hang_fails_in_compat_mode(make_case, name):
    """No NPU ever finishes, so nobody would be asked: an error instead of idling forever."""
    shape = SHAPES[name]
    case = shape.build(make_case)
    run = run_interactive(case.root, case.argv(), ["pass"] * 5)
    assert run.reports == []
    assert_clear_error(run, shape.groups)


# ---------------------------------------------------------------- bad files, values and flags

def edit(name, content):
    """Overwrite one input file of the case."""
    return lambda case: case.write(name, content)


def system_with(**overrides):
    return edit("system.json", json.dumps(system_config(**overrides)))


def remove(name):
    return lambda case: (case.root / name).unlink()


def unchanged(case):
    pass


def same_args(args):
    return args


# name -> (break the case, edit the argument list, groups of the stderr line)
INPUT_ERRORS = {
    "missing_workload_file": (remove("workload.1.et"), same_args, [file_of(1)]),
    "garbage_workload_file": (edit("workload.0.et", b"\xff\xff\xff\xff\x0fgarbage"), same_args, [file_of(0)]),
    "truncated_workload_file": (edit("workload.0.et", b"\x07\x0a\x05\x30\x2e\x30\x2e\x34\x40\x08\x01"), same_args,
                                [file_of(0)]),
    "missing_network_file": (remove("network.yml"), same_args, [(r"network\.yml",)]),
    "malformed_network_yaml": (edit("network.yml", "topology: [Ring\nnpus_count: [2]\n"), same_args,
                               [(r"network\.yml",)]),
    "unknown_topology": (edit("network.yml", "topology: [Torus]\nnpus_count: [2]\nbandwidth: [100.0]\n"
                              "latency: [500.0]\n"), same_args, [("Torus",)]),
    "network_lists_differ_in_length": (edit("network.yml", "topology: [Ring, Ring]\nnpus_count: [2]\n"
                                            "bandwidth: [100.0]\nlatency: [500.0]\n"), same_args,
                                       [(r"network\.yml", "npus_count", "topology", "length")]),
    "zero_bandwidth": (edit("network.yml", "topology: [Ring]\nnpus_count: [2]\nbandwidth: [0.0]\n"
                            "latency: [500.0]\n"), same_args, [("bandwidth",)]),
    "missing_system_file": (remove("system.json"), same_args, [(r"system\.json",)]),
    "malformed_system_json": (edit("system.json", '{"scheduling-policy": "LIFO",'), same_args, [(r"system\.json",)]),
    "unknown_scheduling_policy": (system_with(scheduling_policy="RANDOM"), same_args, [("RANDOM",)]),
    "unknown_algorithm": (system_with(impl=["bogusAlgo"]), same_args, [("bogusAlgo",)]),
    "unknown_collective_optimization": (system_with(collective_optimization="fancy"), same_args, [("fancy",)]),
    "zero_dataset_splits": (system_with(preferred_dataset_splits=0), same_args, [("preferred-dataset-splits",)]),
    "endpoint_delay_not_a_number": (system_with(endpoint_delay="ten"), same_args, [("endpoint-delay",)]),
    "malformed_memory_json": (edit("remote_memory.json", "{memory-type"), same_args, [(r"remote_memory\.json",)]),
    "unknown_memory_type": (edit("remote_memory.json", '{"memory-type": "INFINITE_MEMORY", '
                                 '"remote-mem-latency": 0, "remote-mem-bw": 512}'), same_args,
                            [("INFINITE_MEMORY",)]),
    "unknown_flag": (unchanged, lambda args: args + ["--frobnicate=1"], [("frobnicate",)]),
    "missing_network_flag": (unchanged, lambda args: [a for a in args if "network-configuration" not in a],
                             [("network-configuration",)]),
}


def input_error_case(make_case, name):
    """A valid 2-NPU case broken as the table says -> (case, argument editor, groups)."""
    breaker, edit_args, groups = INPUT_ERRORS[name]
    case = make_case(**net(["Ring"], [2]))
    case.same_workload([comp(41, 100)])
    breaker(case)
    return case, edit_args, groups


@pytest.mark.parametrize("name", INPUT_ERRORS)
def test_input_error_in_batch_mode(make_case, name):
    case, edit_args, groups = input_error_case(make_case, name)
    assert_clear_error(run_batch(case.root, edit_args(case.argv())), groups)


@pytest.mark.parametrize("name", INPUT_ERRORS)
def test_input_error_in_compat_mode(make_case, name):
    case, edit_args, groups = input_error_case(make_case, name)
    run = run_interactive(case.root, edit_args(case.argv()), ["pass"] * 3)
    assert_clear_error(run, groups)


@pytest.mark.parametrize("name", INPUT_ERRORS)
def test_input_error_in_step_mode(make_case, name):
    """Config errors end the engine at start-up; trace errors at `load`."""
    case, edit_args, groups = input_error_case(make_case, name)
    with Step(case.root, edit_args(case.config_args())) as step:
        finished = drive_step_until_end(step)
    assert_clear_error(finished, groups)


def test_step_load_of_missing_prefix(make_case):
    case = make_case(**FC2)
    with Step(case.root, case.config_args()) as step:
        assert step.greeting == "ready 2"
        finished = drive_step_until_end(step, "load nothere all")
    assert_clear_error(finished, [(r"nothere\.[01]\.et",)])


EOF_WORDS = [("stdin", "eof", "end of input", "exit")]


def test_compat_stdin_closed_without_exit(make_case):
    """The reference loops forever on EOF (empty line taken as a prefix)."""
    case = make_case(**FC2)
    case.same_workload([comp(41, 100)])
    with Interactive(case.root, case.argv()) as run:
        assert run.prompt() is not None
        run.close_stdin()
        finished = run.transcript()
    assert_clear_error(finished, EOF_WORDS)


def test_step_stdin_closed_without_exit(make_case):
    case = make_case(**FC2)
    case.same_workload([comp(41, 100)])
    with Step(case.root, case.config_args()) as step:
        assert step.send("load workload all") == "ok"
        step.close_stdin()
        finished = step.finish()
    assert_clear_error(finished, EOF_WORDS)


def test_compat_prefix_without_files(make_case):
    """The reference logs a missing prefix and keeps waiting; ours stops with an error."""
    case = make_case(**FC2)
    case.same_workload([comp(41, 100)])
    run = run_interactive(case.root, case.argv(), ["nothere"])
    assert_clear_error(run, [(r"nothere\.0\.et",)])


PROTOCOL_MISUSE_EXIT = 2
STEP_MISUSE = {
    "load_on_busy_npu": (["load workload all", "load workload 1"], "load"),
    "advance_with_pending_events": (["load workload all", "advance 5000"], "advance"),
    "advance_into_the_past": (["advance 500", "advance 100"], "advance"),
    "unknown_command": (["frobnicate"], "frobnicate"),
    "load_without_npus": (["load workload"], "load"),
    "load_of_unknown_npu": (["load workload 5"], "5"),
}


@pytest.mark.parametrize("name", STEP_MISUSE)
def test_step_protocol_misuse(make_case, name):
    """The last command of the script is refused: one stderr line naming it, exit 2."""
    commands, word = STEP_MISUSE[name]
    case = make_case(**FC2)
    case.same_workload([comp(41, 100)])
    with Step(case.root, case.config_args()) as step:
        replies = [step.send(c) for c in commands]
        finished = step.finish()
    assert replies[-1] is None and None not in replies[:-1], replies
    assert_clear_error(finished, [(word,)])
    assert finished.rc == PROTOCOL_MISUSE_EXIT
