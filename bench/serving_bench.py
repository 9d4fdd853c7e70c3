"""Wall time of the example simulation (Llama-3.1-8B-Instruct on H100s, ShareGPT-like trace).

    .venv/bin/python bench/serving_bench.py [--repeat N]

Runs 100 and 1000 requests at TP1 and TP4 through main.py (engine included) and prints wall
seconds, simulated requests per wall-second and the ratio of simulated to wall time.
"""
from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import click

REPO = Path(__file__).resolve().parent.parent
CASES = [(100, 1), (100, 4), (1000, 1), (1000, 4)]


def run_case(requests: int, tp: int) -> tuple[float, float]:
    """(wall seconds, simulated seconds) of one run."""
    cmd = [sys.executable, "main.py", "--model_name", "meta-llama/Llama-3.1-8B-Instruct", "--hardware", "H100",
           "--npu_num", str(tp), "--npu_group", "1", "--remote_bw", "64", "--block_size", "16",
           "--dataset", "dataset/sharegpt_like_1000.tsv", "--req_num", str(requests)]
    start = time.perf_counter()
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"bench: run failed: {done.stderr.strip()}")
    simulated = float(re.search(r"simulated time:\s+([\d.]+) s", done.stdout).group(1))
    return wall, simulated


@click.command()
@click.option("--repeat", default=1, show_default=True, help="Runs per case; the fastest counts.")
def main(repeat: int) -> None:
    print(f"{'requests':>8} {'TP':>3} {'wall s':>8} {'sim s':>8} {'req/wall-s':>11} {'sim/wall':>9}")
    for requests, tp in CASES:
        wall, simulated = min(run_case(requests, tp) for _ in range(repeat))
        print(f"{requests:>8} {tp:>3} {wall:>8.2f} {simulated:>8.2f} {requests / wall:>11.1f} {simulated / wall:>9.2f}")


if __name__ == "__main__":
    main()
