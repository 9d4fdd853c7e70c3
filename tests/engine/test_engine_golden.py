"""Replay of conformance vectors recorded from the reference binary (C2), copied into
tests/engine/golden/: answer the k-th `Waiting` with the k-th recorded stdin line and
compare every report line, the final banner and the unfinished node ids."""
import json
import shutil
from pathlib import Path

import pytest

from chakra.schema.protobuf.et_def_pb2 import GlobalMetadata, Node
from chakra.src.third_party.utils.protolib import decodeMessage

from engine_driver import run_batch, run_interactive

GOLDEN = Path(__file__).resolve().parent / "golden"
CASES = sorted(p.name for p in GOLDEN.iterdir() if (p / "expected.json").is_file())


def expected_of(name):
    return json.loads((GOLDEN / name / "expected.json").read_text())


def load_case(name, tmp_path):
    """Copy the case to a scratch directory (the engine may write log/ there)."""
    work = tmp_path / name
    shutil.copytree(GOLDEN / name, work)
    return work, expected_of(name)


def first_difference(got, expected):
    for k, (a, b) in enumerate(zip(got, expected)):
        if a != b:
            return f"report #{k}: got {a}, expected {b}"
    return f"{len(got)} reports, expected {len(expected)}"


def test_golden_selection_covers_every_family():
    families = {expected_of(c)["family"] for c in CASES}
    assert families == set(range(1, 9))
    for must in ("v_f1stuck_00", "v_f4unm_00", "v_f3grp_00", "v_f2edge_00"):
        assert must in CASES


@pytest.mark.parametrize("name", CASES)
def test_replay_interactive(name, tmp_path):
    work, exp = load_case(name, tmp_path)
    run = run_interactive(work, exp["argv"], exp["stdin"])
    assert run.reports == exp["reports"], first_difference(run.reports, exp["reports"])
    assert run.banner == exp["final_banner"]
    expected_unfinished = {int(npu): sorted(n["id"] for n in nodes)
                           for npu, nodes in exp["unfinished_npus"].items()}
    assert run.remaining == expected_unfinished
    assert run.rc == exp["exit_status"]


COMPLETE_SINGLE_WORKLOAD = [c for c in CASES if not expected_of(c)["extra_workload_prefixes"]
                            and expected_of(c)["final_banner"] == "All Request Has Been Exited"]


def has_nodes(et_path):
    with open(et_path, "rb") as f:
        decodeMessage(f, GlobalMetadata())
        return bool(decodeMessage(f, Node()))


@pytest.mark.parametrize("name", COMPLETE_SINGLE_WORKLOAD)
def test_batch_matches_first_reports(name, tmp_path):
    """--batch finish tick and exposed time equal the first report of each NPU (NPUs with
    an empty trace are left out: the compat loop first asks them only after the first
    processed timestamp, which is not their finish time)."""
    work, exp = load_case(name, tmp_path)
    result = run_batch(work, exp["argv"])
    assert result.rc == 0, result.stderr
    assert sorted(result.finishes) == list(range(exp["num_npus"]))
    busy = {i for i in range(exp["num_npus"]) if has_nodes(work / f"workload.{i}.et")}
    expected = {r["npu"]: (r["cycles"], r["exposed"]) for r in exp["first_reports"] if r["npu"] in busy}
    assert {i: result.finishes[i] for i in busy} == expected
