"""The measured collective table (system.json "collective-table", astra-sim/README.md "Measured collective
table"): times from the table, interpolated by hand here; the network model where the table has no entry;
one clear error line for a broken table."""
import json
import re

import pytest

from engine_driver import run_batch
from etgen import ALL_GATHER, ALL_REDUCE, coll, comp, system_config

TABLE = "collectives.json"
# ALL_REDUCE over 2 NPUs: 10 us at 1000 B, 30 us at 3000 B (10 ns per byte between them).
TWO_POINTS = {"type": "ALL_REDUCE", "npus": 2, "bytes": [1000, 3000], "ns": [10000, 30000]}


def table_case(make_case, entries, npus=(2,), bandwidth=None, name=TABLE, comm_group=None):
    """A FullyConnected case whose system.json names `name`, written with these entries."""
    case = make_case(topology=["FullyConnected"] * len(npus), npus=list(npus), bandwidth=bandwidth or [100] * len(npus),
                     latency=[500] * len(npus), system=system_config(impl=["ring"] * len(npus),
                                                                      collective_table=name), comm_group=comm_group)
    case.write(TABLE, json.dumps({"collectives": entries}))
    return case


def finish_ticks(case, nodes):
    result = run_batch(case.root, case.argv(case.same_workload(nodes)))
    assert result.rc == 0, result.stderr
    return result.ticks()


@pytest.mark.parametrize("size, expected_ns", [
    (2000, 20000),   # between the points: 10000 + (30000 - 10000) * (2000 - 1000) / (3000 - 1000)
    (1000, 10000),   # on a point
    (400, 10000),    # below the smallest size: its time
    (5000, 50000),   # beyond the largest: the last segment's 10 ns/B, 30000 + 10 * 2000
])
def test_time_comes_from_the_table(make_case, size, expected_ns):
    case = table_case(make_case, [TWO_POINTS])
    assert finish_ticks(case, [coll(1, ALL_REDUCE, size)]) == {0: expected_ns, 1: expected_ns}


def test_between_points_is_linear_in_bytes(make_case):
    """Three points, 2500 B on the second segment: 7000 + (9000 - 7000) * (2500 - 2000) / (4000 - 2000)."""
    entry = {"type": "ALL_REDUCE", "npus": 2, "bytes": [1000, 2000, 4000], "ns": [5000, 7000, 9000]}
    case = table_case(make_case, [entry])
    assert finish_ticks(case, [coll(1, ALL_REDUCE, 2500)]) == {0: 7500, 1: 7500}


def test_falling_last_segment_is_not_extended_downwards(make_case):
    entry = {"type": "ALL_REDUCE", "npus": 2, "bytes": [1000, 2000], "ns": [6000, 5000]}
    case = table_case(make_case, [entry])
    assert finish_ticks(case, [coll(1, ALL_REDUCE, 8000)]) == {0: 5000, 1: 5000}


def test_collective_starts_when_the_last_member_issued_it(make_case):
    """NPU 1 computes 700 ns first: both end 700 + 20000 ns after the start."""
    case = table_case(make_case, [TWO_POINTS])
    ar = coll(2, ALL_REDUCE, 2000, deps=[1])
    result = run_batch(case.root, case.argv(case.workload({0: [comp(1, 1), ar], 1: [comp(1, 700), ar]})))
    assert result.rc == 0, result.stderr
    assert result.ticks() == {0: 700 + 20000, 1: 700 + 20000}


def test_consecutive_collectives_meet_in_order(make_case):
    case = table_case(make_case, [TWO_POINTS])
    nodes = [coll(1, ALL_REDUCE, 2000), coll(2, ALL_REDUCE, 3000, deps=[1])]
    assert finish_ticks(case, nodes) == {0: 20000 + 30000, 1: 20000 + 30000}


def test_group_of_the_used_dimensions(make_case):
    """2x2 network: over both dimensions the group has 4 NPUs, over dimension 0 alone 2."""
    entries = [dict(TWO_POINTS), {"type": "ALL_REDUCE", "npus": 4, "bytes": [1000], "ns": [4444]}]
    case = table_case(make_case, entries, npus=(2, 2))
    both = finish_ticks(case, [coll(1, ALL_REDUCE, 1000)])
    first_dim = finish_ticks(case, [coll(1, ALL_REDUCE, 2000, involved_dim=[True, False])])
    assert (both, first_dim) == ({i: 4444 for i in range(4)}, {i: 20000 for i in range(4)})


def test_entries_with_members_time_only_groups_of_their_npus(make_case):
    """Two communicator groups of 2 on 4 NPUs (two instances of a cluster, on different GPUs): each group
    takes the entry whose members hold it; 2000 B is 20000 ns on the first curve, 2 * 2000 = 4000 ns on the
    second (2 ns per byte, no fixed part)."""
    fast = {"type": "ALL_REDUCE", "npus": 2, "bytes": [1000, 3000], "ns": [2000, 6000], "members": [2, 3]}
    case = table_case(make_case, [entry(members=[0, 1]), fast], npus=(4,), comm_group={"0": [0, 1], "1": [2, 3]})
    assert finish_ticks(case, [coll(1, ALL_REDUCE, 2000)]) == {0: 20000, 1: 20000, 2: 4000, 3: 4000}


def test_an_entry_without_members_serves_groups_no_scoped_entry_holds(make_case):
    case = table_case(make_case, [entry(members=[0, 1]), entry(ns=[1000, 3000])], npus=(4,),
                      comm_group={"0": [0, 1], "1": [2, 3]})
    assert finish_ticks(case, [coll(1, ALL_REDUCE, 2000)]) == {0: 20000, 1: 20000, 2: 2000, 3: 2000}


def test_uncovered_collectives_keep_the_network_model(make_case):
    """A table for another type and another group size changes nothing."""
    nodes = [coll(1, ALL_REDUCE, 1 << 20)]
    plain = make_case(topology=["FullyConnected"], npus=[2], bandwidth=[100], latency=[500],
                      system=system_config(impl=["ring"]))
    other = table_case(make_case, [{"type": "ALL_GATHER", "npus": 2, "bytes": [1], "ns": [1]},
                                   {"type": "ALL_REDUCE", "npus": 4, "bytes": [1], "ns": [1]}])
    assert finish_ticks(other, nodes) == finish_ticks(plain, nodes)


def test_other_collective_types_use_their_entry(make_case):
    case = table_case(make_case, [{"type": "ALL_GATHER", "npus": 2, "bytes": [64], "ns": [777]}])
    assert finish_ticks(case, [coll(1, ALL_GATHER, 64)]) == {0: 777, 1: 777}


def test_table_path_is_relative_to_system_json(make_case, tmp_path):
    case = table_case(make_case, [TWO_POINTS])
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    prefix = case.same_workload([coll(1, ALL_REDUCE, 2000)])
    argv = [f"--workload-configuration={case.root / prefix}", f"--system-configuration={case.root / 'system.json'}",
            f"--network-configuration={case.root / 'network.yml'}"]
    result = run_batch(elsewhere, argv)
    assert (result.rc, result.ticks()) == (0, {0: 20000, 1: 20000}), result.stderr


def test_members_disagreeing_on_the_size_fail(make_case):
    case = table_case(make_case, [TWO_POINTS])
    result = run_batch(case.root, case.argv(case.workload({0: [coll(41, ALL_REDUCE, 2000)],
                                                           1: [coll(41, ALL_REDUCE, 1000)]})))
    assert result.rc == 1 and len(result.stderr_lines) == 1, result.stderr
    assert re.search(r"node 41 .*ALL_REDUCE of 1000 bytes meets ALL_REDUCE of 2000 bytes", result.stderr_lines[0])


def entry(**changes):
    return {**TWO_POINTS, **changes}


# name -> (table file content, what the error line must say besides the file name)
BAD_TABLES = {
    "not_json": ('{"collectives": [', r"invalid JSON"),
    "no_collectives_list": ('{"entries": []}', r'"collectives"'),
    "unknown_top_level_key": ('{"collectives": [], "comment": 1}', r'unknown key "comment"'),
    "unknown_type": ([entry(type="BARRIER")], r'collectives\[0\].*"type"'),
    "group_of_one": ([entry(npus=1)], r'collectives\[0\].*"npus"'),
    "sizes_not_increasing": ([entry(bytes=[3000, 1000])], r'collectives\[0\] \(ALL_REDUCE over 2 NPUs\).*increasing'),
    "fractional_size": ([entry(bytes=[1000, 1500.5])], r'collectives\[0\].*"bytes".*integers'),
    "negative_time": ([entry(ns=[10, -1])], r'collectives\[0\].*"ns"'),
    "lengths_differ": ([entry(ns=[1])], r'collectives\[0\].*same length'),
    "time_not_a_number": ([entry(ns=[1, "fast"])], r'collectives\[0\].*"ns"'),
    "empty_sizes": ([entry(bytes=[], ns=[])], r'collectives\[0\].*at least one'),
    "missing_ns": ([{"type": "ALL_REDUCE", "npus": 2, "bytes": [1]}], r'collectives\[0\].*missing "ns"'),
    "unknown_entry_key": ([entry(unit="us")], r'collectives\[0\].*unknown key "unit"'),
    "duplicate_entry": ([entry(), entry()], r"collectives\[1\] \(ALL_REDUCE over 2 NPUs\).*second entry"),
    "duplicate_members": ([entry(members=[1, 0]), entry(members=[0, 1])], r"collectives\[1\].*second entry"),
    "members_fewer_than_npus": ([entry(members=[0])], r'collectives\[0\].*"members"'),
    "members_repeated": ([entry(members=[0, 0])], r'collectives\[0\].*"members"'),
    "members_not_ids": ([entry(members=[0, "one"])], r'collectives\[0\].*"members"'),
}


@pytest.mark.parametrize("name", BAD_TABLES)
def test_bad_table_is_one_clear_error(make_case, name):
    content, says = BAD_TABLES[name]
    case = table_case(make_case, [])
    case.write(TABLE, content if isinstance(content, str) else json.dumps({"collectives": content}))
    result = run_batch(case.root, case.argv(case.same_workload([comp(1, 100)])))
    assert result.rc == 1 and len(result.stderr_lines) == 1, result.stderr
    line = result.stderr_lines[0]
    assert line.startswith("error: collectives.json: ") and re.search(says, line), line


def test_missing_table_file_is_one_clear_error(make_case):
    case = table_case(make_case, [], name="absent.json")
    result = run_batch(case.root, case.argv(case.same_workload([comp(1, 100)])))
    assert result.rc == 1 and result.stderr_lines == [
        'error: cannot read the collective table ("collective-table" of the system configuration) \'absent.json\'']


def test_a_member_that_never_issues_is_a_deadlock(make_case):
    case = table_case(make_case, [TWO_POINTS])
    result = run_batch(case.root, case.argv(case.workload({0: [coll(41, ALL_REDUCE, 2000)], 1: [comp(1, 100)]})))
    assert result.rc == 3 and len(result.stderr_lines) == 1, result.stderr
    assert re.search(r"NPU 0 \(workload\.0\.et\) stuck at node\(s\) 41", result.stderr_lines[0]), result.stderr_lines[0]
