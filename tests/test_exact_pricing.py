"""The pricing shortcuts (PerfProvider.reuse: the compiled FlashAttention-2 schedule) are exact:
a vLLM run on a GPU priced by that schedule writes byte-identical per-request CSVs and iteration lines
with them and without them (--no-reuse)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from inference_serving.inputs.generator import generate_requests
from inference_serving.inputs.workload import write_dataset

REPO = Path(__file__).resolve().parent.parent


def run(tmp_path: Path, name: str, dataset: Path, without: bool) -> tuple[bytes, list[str]]:
    out = tmp_path / f"{name}.csv"
    flags = ["--quiet", "--scheduler", "vllm", "--model_name", "meta-llama/Llama-3.1-8B", "--hardware", "RTXPRO6000",
             "--npu_num", "1", "--max_num_batched_tokens", "512", "--dataset", str(dataset), "--output", str(out)]
    command = [sys.executable, "main.py", *flags, *(["--no-reuse"] if without else [])]
    done = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return out.read_bytes(), [line for line in done.stdout.splitlines() if " done in " in line]


def test_pricing_shortcuts_on_and_off_give_identical_results(tmp_path):
    dataset = tmp_path / "requests.tsv"
    write_dataset(generate_requests(40, 40.0, 3, input_mean=600, output_mean=60, max_tokens=2000), dataset)
    fast_csv, fast = run(tmp_path, "fast", dataset, without=False)
    slow_csv, slow = run(tmp_path, "slow", dataset, without=True)
    assert fast_csv == slow_csv
    assert fast == slow
    assert any("prefill []" not in line and "decode []" not in line for line in fast)  # mixed steps
