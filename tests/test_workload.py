"""Workload: dataset loading (TSV, JSONL), its errors, and the ShareGPT-like Poisson generator."""
import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from inference_serving.cli.workload import main
from inference_serving.errors import InputError
from inference_serving.inputs.generator import generate_requests
from inference_serving.inputs.workload import (Request, load_dataset,
                                        write_dataset)

REPO_ROOT = Path(__file__).resolve().parent.parent
HEADER = "input_toks\toutput_toks\tarrival_time_ns\n"


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def jsonl(*rows):
    return "".join(json.dumps(row) + "\n" for row in rows)


def run_generator(*args):
    return CliRunner().invoke(main, [str(a) for a in args])


# ---------------------------------------------------------------- loading

def test_tsv_loads_requests_with_file_order_ids(tmp_path):
    path = write(tmp_path, "d.tsv", HEADER + "10\t5\t0\n20\t7\t1000\n")
    assert load_dataset(path) == [Request(0, 10, 5, 0), Request(1, 20, 7, 1000)]


def test_tsv_columns_found_by_name_and_extra_columns_ignored(tmp_path):
    path = write(tmp_path, "d.tsv", "arrival_time_ns\tnote\tinput_toks\toutput_toks\n42\tx\t3\t4\n")
    assert load_dataset(path) == [Request(0, 3, 4, 42)]


def test_blank_lines_and_crlf_are_accepted(tmp_path):
    path = tmp_path / "d.tsv"
    path.write_bytes(b"input_toks\toutput_toks\tarrival_time_ns\r\n1\t2\t3\r\n\r\n")
    assert load_dataset(path) == [Request(0, 1, 2, 3)]


def test_jsonl_loads_requests_and_token_ids(tmp_path):
    path = write(tmp_path, "d.jsonl", jsonl(
        {"input_toks": 3, "output_toks": 2, "arrival_time_ns": 0, "token_ids": [1, 2, 3]},
        {"input_toks": 4, "output_toks": 1, "arrival_time_ns": 50}))
    assert load_dataset(path) == [Request(0, 3, 2, 0, (1, 2, 3)), Request(1, 4, 1, 50)]


def test_unsorted_file_is_sorted_by_arrival_keeping_file_order_ids(tmp_path):
    path = write(tmp_path, "d.tsv", HEADER + "1\t1\t300\n2\t1\t100\n3\t1\t300\n4\t1\t100\n")
    assert [(r.id, r.arrival_ns) for r in load_dataset(path)] == [(1, 100), (3, 100), (0, 300), (2, 300)]


@pytest.mark.parametrize("req_num, expected", [(None, 3), (2, 2), (3, 3), (50, 3)])
def test_req_num_takes_first_requests_of_the_file(tmp_path, req_num, expected):
    path = write(tmp_path, "d.tsv", HEADER + "1\t1\t30\n2\t1\t20\n3\t1\t10\n")
    loaded = load_dataset(path, req_num)
    assert sorted(r.id for r in loaded) == list(range(expected))


def test_req_num_ignores_rows_after_the_first_n(tmp_path):
    path = write(tmp_path, "d.tsv", HEADER + "1\t1\t0\nbroken\n")
    assert len(load_dataset(path, req_num=1)) == 1


# ---------------------------------------------------------------- loading errors

def assert_one_line_error(path, pattern, req_num=None):
    with pytest.raises(InputError) as err:
        load_dataset(path, req_num)
    message = str(err.value)
    assert "\n" not in message
    assert str(path) in message
    assert re.search(pattern, message), message


def test_missing_file(tmp_path):
    assert_one_line_error(tmp_path / "absent.tsv", "no such dataset file")


def test_unknown_extension(tmp_path):
    assert_one_line_error(write(tmp_path, "d.csv", HEADER), r"unknown dataset extension '\.csv'; use \.tsv or \.jsonl")


def test_missing_tsv_column(tmp_path):
    path = write(tmp_path, "d.tsv", "input_toks\tarrival_time_ns\n1\t0\n")
    assert_one_line_error(path, r"line 1: header lacks column 'output_toks'")


def test_space_separated_tsv_is_rejected_at_header(tmp_path):
    path = write(tmp_path, "d.tsv", "input_toks output_toks arrival_time_ns\n1 2 3\n")
    assert_one_line_error(path, r"line 1: header lacks column 'input_toks'.*tab-separated")


def test_wrong_field_count(tmp_path):
    path = write(tmp_path, "d.tsv", HEADER + "1\t2\t3\n4\t5\n")
    assert_one_line_error(path, r"line 3: 2 tab-separated fields, the header has 3")


@pytest.mark.parametrize("row, pattern", [
    ("1.5\t2\t0", r"line 2: 'input_toks' must be a whole number >= 1, got '1.5'"),
    ("abc\t2\t0", r"line 2: 'input_toks' must be a whole number >= 1"),
    ("0\t2\t0", r"line 2: 'input_toks' must be a whole number >= 1, got '0'"),
    ("5\t0\t0", r"line 2: 'output_toks' must be a whole number >= 1, got '0'"),
    ("5\t-3\t0", r"line 2: 'output_toks' must be a whole number >= 1, got '-3'"),
    ("5\t3\t-1", r"line 2: 'arrival_time_ns' must be a whole number >= 0, got '-1'"),
    ("5\t3\t", r"line 2: 'arrival_time_ns' must be a whole number >= 0, got ''"),
])
def test_bad_tsv_values(tmp_path, row, pattern):
    assert_one_line_error(write(tmp_path, "d.tsv", HEADER + row + "\n"), pattern)


@pytest.mark.parametrize("row, pattern", [
    ({"input_toks": 3, "arrival_time_ns": 0}, r"line 2: missing 'output_toks'"),
    ({"input_toks": 3.0, "output_toks": 1, "arrival_time_ns": 0}, r"line 2: 'input_toks' must be a whole number"),
    ({"input_toks": True, "output_toks": 1, "arrival_time_ns": 0}, r"line 2: 'input_toks' must be a whole number"),
    ({"input_toks": 3, "output_toks": 0, "arrival_time_ns": 0}, r"line 2: 'output_toks' must be a whole number >= 1"),
    ({"input_toks": 2, "output_toks": 1, "arrival_time_ns": 0, "token_ids": [1]},
     r"line 2: 'token_ids' must be a list of 2 non-negative integers"),
    ({"input_toks": 2, "output_toks": 1, "arrival_time_ns": 0, "token_ids": [1, -1]},
     r"line 2: 'token_ids' must be a list of 2 non-negative integers"),
    ([1, 2, 3], r"line 2: expected a JSON object"),
])
def test_bad_jsonl_rows(tmp_path, row, pattern):
    good = {"input_toks": 1, "output_toks": 1, "arrival_time_ns": 0}
    assert_one_line_error(write(tmp_path, "d.jsonl", jsonl(good, row)), pattern)


def test_invalid_json_line(tmp_path):
    assert_one_line_error(write(tmp_path, "d.jsonl", "{oops\n"), r"line 1: not valid JSON")


@pytest.mark.parametrize("name, text", [("d.tsv", HEADER), ("d.jsonl", "\n")])
def test_file_without_requests(tmp_path, name, text):
    assert_one_line_error(write(tmp_path, name, text), "no requests in the file")


def test_non_positive_req_num(tmp_path):
    assert_one_line_error(write(tmp_path, "d.tsv", HEADER + "1\t1\t0\n"), "req_num must be a positive", req_num=0)


# ---------------------------------------------------------------- generator

def test_same_seed_gives_identical_bytes(tmp_path):
    for name in ("a.tsv", "b.tsv"):
        assert run_generator("--num", 200, "--rate", 5, "--seed", 7, "--output", tmp_path / name).exit_code == 0
    assert (tmp_path / "a.tsv").read_bytes() == (tmp_path / "b.tsv").read_bytes()


def test_different_seed_gives_different_trace():
    assert generate_requests(50, 10, seed=1) != generate_requests(50, 10, seed=2)


def test_shorter_trace_is_prefix_of_longer_one():
    assert generate_requests(1000, 10, seed=3)[:100] == generate_requests(100, 10, seed=3)


def test_generated_file_loads_back_unchanged(tmp_path):
    requests = generate_requests(300, 10, seed=0)
    for name in ("g.tsv", "g.jsonl"):
        write_dataset(requests, tmp_path / name)
        assert load_dataset(tmp_path / name) == requests


def test_arrivals_start_at_zero_and_never_decrease():
    arrivals = [r.arrival_ns for r in generate_requests(1000, 10, seed=0)]
    assert arrivals[0] == 0
    assert all(b >= a for a, b in zip(arrivals, arrivals[1:]))


@pytest.mark.parametrize("rate", [2.0, 10.0, 100.0])
def test_mean_inter_arrival_is_one_over_rate(rate):
    arrivals = np.array([r.arrival_ns for r in generate_requests(20000, rate, seed=11)])
    mean_gap_s = np.diff(arrivals).mean() / 1e9
    assert mean_gap_s == pytest.approx(1 / rate, rel=0.03)   # 4 standard errors at N = 20000


def test_lengths_follow_the_requested_means_when_unclipped():
    requests = generate_requests(20000, 10, seed=5, input_mean=100, output_mean=50, max_tokens=100000)
    assert np.mean([r.input_tokens for r in requests]) == pytest.approx(100, rel=0.05)
    assert np.mean([r.output_tokens for r in requests]) == pytest.approx(50, rel=0.05)


def test_lengths_are_clipped_to_max_tokens():
    requests = generate_requests(5000, 10, seed=0, input_mean=400, output_mean=400, input_sigma=2, output_sigma=2,
                                 max_tokens=512)
    assert all(r.input_tokens >= 1 and r.output_tokens >= 1 for r in requests)
    assert all(r.input_tokens + r.output_tokens <= 512 for r in requests)
    assert max(r.input_tokens for r in requests) == 511    # the cap is reached, so clipping happened


def test_existing_file_is_not_overwritten_without_force(tmp_path):
    target = write(tmp_path, "x.tsv", "keep me\n")
    result = run_generator("--num", 5, "--rate", 1, "--output", target)
    assert result.exit_code != 0
    assert "already exists; pass --force" in result.output
    assert target.read_text() == "keep me\n"
    assert run_generator("--num", 5, "--rate", 1, "--output", target, "--force").exit_code == 0
    assert len(load_dataset(target)) == 5


def test_jsonl_output_by_extension(tmp_path):
    assert run_generator("--num", 3, "--rate", 1, "--output", tmp_path / "x.jsonl").exit_code == 0
    first = json.loads((tmp_path / "x.jsonl").read_text().splitlines()[0])
    assert set(first) == {"input_toks", "output_toks", "arrival_time_ns"} and first["arrival_time_ns"] == 0


@pytest.mark.parametrize("args, pattern", [
    (["--num", 0, "--rate", 1], "--num"),
    (["--num", 5, "--rate", 0], "--rate"),
    (["--num", 5, "--rate", 1, "--seed", -1], "--seed"),
])
def test_bad_generator_options(tmp_path, args, pattern):
    result = run_generator(*args, "--output", tmp_path / "x.tsv")
    assert result.exit_code == 2 and pattern in result.output
    assert not (tmp_path / "x.tsv").exists()


def test_unknown_output_extension(tmp_path):
    result = run_generator("--num", 5, "--rate", 1, "--output", tmp_path / "x.csv")
    assert result.exit_code == 2 and "unknown dataset extension '.csv'" in result.output


# ---------------------------------------------------------------- committed datasets

def readme_commands():
    """The generator commands written in dataset/README.md."""
    text = (REPO_ROOT / "dataset" / "README.md").read_text()
    return [shlex.split(line)[4:] for line in text.splitlines()
            if line.startswith("python -m inference_serving workload ")]


def test_dataset_readme_lists_every_generated_file():
    outputs = {args[args.index("--output") + 1] for args in readme_commands()}
    shipped = {f"dataset/{p.name}" for p in (REPO_ROOT / "dataset").iterdir() if p.suffix in (".tsv", ".jsonl")}
    assert outputs == shipped


@pytest.mark.parametrize("args", readme_commands(), ids=lambda args: args[args.index("--output") + 1])
def test_committed_dataset_is_reproduced_by_its_readme_command(tmp_path, args):
    committed = REPO_ROOT / args[args.index("--output") + 1]
    args[args.index("--output") + 1] = str(tmp_path / committed.name)
    assert run_generator(*args).exit_code == 0
    assert (tmp_path / committed.name).read_bytes() == committed.read_bytes()
    assert committed.stat().st_size < 100_000
