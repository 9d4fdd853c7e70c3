"""Speed targets of the serving simulator (README "Speed"), engine included, each as a main.py run.

    .venv/bin/python bench/serving_bench.py [--repeat N] [--only NAME,...]

Every case is one `main.py` subprocess; the table gives its wall time (best and median of --repeat
runs), simulated iterations, iterations per wall-second and peak RSS (the largest process of the run,
from wait4), against the target. Requests come from a ShareGPT-like trace (seed 0, 10 requests/s)
written to a scratch folder; the start-up cache lives in a private XDG_CACHE_HOME there, filled by a
first (cold) run; PYTHONUNBUFFERED and PYTHONDONTWRITEBYTECODE are left out of the runs' environment. Derived rows: per-iteration cost ((wall - wall of a 1-request run) / extra
iterations) of TP8 against TP1 and of pipeline stages against one stage, and the throughput of a
sweep at --jobs 1 and 2. The commands are printed under the table.
"""
from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import click

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from inference_serving.inputs.generator import generate_requests  # noqa: E402
from inference_serving.inputs.workload import Request, write_dataset  # noqa: E402

VALIDATION = Path(os.environ.get("LLMSERVINGSIM_VALIDATION",
                                 REPO.parent / "shared" / "validation" / "rtxpro6000-llama-3.1-8b"))
TRACE_REQUESTS = 10_000
SHORT_TRACE = "one_request.tsv"  # next to the trace: one request of 16 prompt tokens and 2 outputs
# left out of the runs' environment, as in a default one: an unbuffered stdout writes every log line
# on its own, and without bytecode files every module is compiled at every start
ENVIRONMENT_OFF = ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE")
LLAMA8 = ["--model_name", "meta-llama/Llama-3.1-8B", "--hardware", "H100"]
LLAMA70_A100 = ["--model_name", "meta-llama/Llama-3.1-70B", "--hardware", "A100"]
LLAMA70_H100 = ["--model_name", "meta-llama/Llama-3.1-70B", "--hardware", "H100"]


@dataclass(frozen=True)
class Case:
    name: str
    flags: tuple[str, ...]      # main.py flags; {trace} is the generated trace
    target_s: float | None = None
    target_rss_mb: float | None = None


def _case(name: str, flags: list[str], requests: int, target_s=None, target_rss_mb=None, trace="{trace}") -> Case:
    return Case(name, tuple([*flags, "--dataset", trace, "--req_num", str(requests)]), target_s, target_rss_mb)


def cases() -> list[Case]:
    vllm, orca = ["--scheduler", "vllm"], ["--scheduler", "orca"]
    one = ["--npu_num", "1"]
    validation = str(VALIDATION / "workload.jsonl")
    return [
        _case("validation 300, vllm, RTXPRO6000", [*vllm, "--hardware", "RTXPRO6000", "--model_name",
                                                    "meta-llama/Llama-3.1-8B", *one], 300, 1.0, trace=validation),
        _case("start-up (1 short request, warm)", [*vllm, *LLAMA8, *one], 1, 0.3, trace="{short}"),
        _case("3000, vllm, 8B, 1 GPU", [*vllm, *LLAMA8, *one], 3000, 3.0),
        _case("3000, orca, 8B, 1 GPU", [*orca, *LLAMA8, *one], 3000, 3.0),
        _case("3000, vllm, 70B, TP2 A100", [*vllm, *LLAMA70_A100, "--npu_num", "2"], 3000, 3.5),
        _case("10000, vllm, 8B, 1 GPU", [*vllm, *LLAMA8, *one], 10_000, 10.0, 300),
        _case("1000, orca, 70B, TP8xPP8 H100", [*orca, *LLAMA70_H100, "--npu_num", "64", "--npu_group", "8"],
              1000, 30.0),
    ]


# Per-iteration scaling: (label, flags); each is run at 300 requests and at 1 request.
SCALING = [
    ("orca TP1", ["--scheduler", "orca", *LLAMA8, "--npu_num", "1"]),
    ("orca TP8", ["--scheduler", "orca", *LLAMA8, "--npu_num", "8"]),
    ("vllm TP1", ["--scheduler", "vllm", *LLAMA8, "--npu_num", "1"]),
    ("vllm TP8", ["--scheduler", "vllm", *LLAMA8, "--npu_num", "8"]),
    ("orca PP2", ["--scheduler", "orca", *LLAMA8, "--npu_num", "2", "--npu_group", "2"]),
    ("orca PP4", ["--scheduler", "orca", *LLAMA8, "--npu_num", "4", "--npu_group", "4"]),
]
SCALING_REQUESTS = 300


@dataclass
class Result:
    wall_s: list[float]
    iterations: int
    rss_mb: float

    @property
    def best(self) -> float:
        return min(self.wall_s)

    @property
    def median(self) -> float:
        return statistics.median(self.wall_s)


def run_once(args: list[str], env: dict) -> tuple[float, int, float]:
    """(wall seconds, iterations, peak RSS MB of the largest process) of one command."""
    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        start = time.perf_counter()
        proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=out, stderr=err, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        out.seek(0)
        err.seek(0)
        if proc.returncode:
            sys.exit(f"bench: {' '.join(args)} failed: {err.read().strip().splitlines()[-1:]}")
        match = re.search(r"iterations:\s+(\d+)", out.read())
    return wall, int(match.group(1)) if match else 0, usage.ru_maxrss / 1024


def main_py(flags: tuple[str, ...] | list[str], trace: Path) -> list[str]:
    return [sys.executable, "main.py", "--quiet",
            *(f.format(trace=trace, short=trace.with_name(SHORT_TRACE)) for f in flags)]


def measure(args: list[str], env: dict, repeat: int) -> Result:
    walls, iterations, rss = [], 0, 0.0
    for _ in range(repeat):
        wall, iterations, peak = run_once(args, env)
        walls.append(wall)
        rss = max(rss, peak)
    return Result(walls, iterations, rss)


def _row(name: str, result: Result, target_s, target_rss) -> str:
    rate = result.iterations / result.best if result.iterations else 0
    met = (target_s is None or result.best <= target_s) and (target_rss is None or result.rss_mb <= target_rss)
    target = " ".join(filter(None, [f"<= {target_s:g} s" if target_s else "",
                                    f"<= {target_rss:g} MB" if target_rss else ""]))
    return (f"| {name} | {result.best:.2f} | {result.median:.2f} | {result.iterations} | {rate:,.0f} | "
            f"{result.rss_mb:.0f} | {target} | {'yes' if met else 'no'} |")


def per_iteration_ms(flags: list[str], trace: Path, env: dict, repeat: int) -> tuple[float, int]:
    """(ms per iteration beyond a 1-request run's, iterations) of SCALING_REQUESTS requests."""
    full = measure(main_py([*flags, "--dataset", str(trace), "--req_num", str(SCALING_REQUESTS)], trace), env, repeat)
    base = measure(main_py([*flags, "--dataset", str(trace), "--req_num", "1"], trace), env, repeat)
    return 1e3 * (full.best - base.best) / max(1, full.iterations - base.iterations), full.iterations


# a sweep of 6 configurations of about equal work (one GPU, both schedulers, three memory sizes), so that
# its rate at --jobs N measures the parallelism rather than how unequal the configurations are
SWEEP_GRID = "  npu_num: [1]\n  scheduler: [orca, vllm]\n  npu_mem: [40, 60, 80]\n"
SWEEP_CONFIGURATIONS = 6


def sweep_rate(jobs: int, scratch: Path, trace: Path, env: dict) -> float:
    """Configurations per wall-second of the SWEEP_GRID sweep."""
    grid = scratch / "grid.yaml"
    grid.write_text(f"base:\n  model_name: meta-llama/Llama-3.1-8B\n  hardware: H100\n  dataset: {trace}\n"
                    f"  req_num: 200\ngrid:\n{SWEEP_GRID}")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "inference_serving", "sweep", str(grid), "--jobs", str(jobs)], cwd=REPO,
                   env=env, check=True, capture_output=True)
    return SWEEP_CONFIGURATIONS / (time.perf_counter() - start)


@click.command()
@click.option("--repeat", default=3, show_default=True, help="Runs per case (best and median reported).")
@click.option("--only", default="", help="Comma-separated case names (prefixes) to run; also: scaling, sweep.")
def main(repeat: int, only: str) -> None:
    wanted = [w.strip() for w in only.split(",") if w.strip()]

    def selected(name: str) -> bool:  # a case's name up to a space or comma ("1000" is not "10000, ...")
        return not wanted or any(name == w or name.startswith((w + " ", w + ",")) for w in wanted)

    with tempfile.TemporaryDirectory(prefix="serving-bench-") as scratch_name:
        scratch = Path(scratch_name)
        trace = scratch / "sharegpt_rate10.tsv"
        write_dataset(generate_requests(TRACE_REQUESTS, 10.0, 0), trace)
        write_dataset([Request(0, 16, 2, 0)], scratch / SHORT_TRACE)
        env = {key: value for key, value in os.environ.items() if key not in ENVIRONMENT_OFF}
        env["XDG_CACHE_HOME"] = str(scratch / "cache")
        run_cases = [c for c in cases() if selected(c.name)]
        if run_cases:
            cold = measure(main_py(cases()[1].flags, trace), env, 1)
            print(f"cold start-up (empty cache, 1 short request): {cold.best:.2f} s\n")
            print("| case | wall s best | wall s median | iterations | iterations/s | peak RSS MB | target | met |")
            print("|---|---|---|---|---|---|---|---|")
        for case in run_cases:
            print(_row(case.name, measure(main_py(case.flags, trace), env, repeat), case.target_s, case.target_rss_mb),
                  flush=True)
        if selected("scaling"):
            print(f"\nper-iteration cost, {SCALING_REQUESTS} requests (Llama-3.1-8B, H100):")
            costs = {}
            for label, flags in SCALING:
                costs[label], iterations = per_iteration_ms(flags, trace, env, repeat)
                print(f"  {label}: {costs[label]:.3f} ms per iteration ({iterations} iterations)", flush=True)
            for scheduler in ("orca", "vllm"):
                print(f"  {scheduler} TP8 / TP1 = {costs[f'{scheduler} TP8'] / costs[f'{scheduler} TP1']:.2f} "
                      f"(target <= 1.5)")
            for stages in (2, 4):
                ratio = costs[f"orca PP{stages}"] / costs["orca TP1"]
                print(f"  orca PP{stages} / PP1 = {ratio:.2f}, per stage {ratio / stages:.2f} (target <= 1.5)")
        if selected("sweep"):
            rates = {jobs: sweep_rate(jobs, scratch, trace, env) for jobs in (1, 2)}
            print(f"\nsweep of {SWEEP_CONFIGURATIONS} configurations (200 requests): --jobs 1 {rates[1]:.2f}/s, "
                  f"--jobs 2 {rates[2]:.2f}/s "
                  f"({rates[2] / rates[1]:.2f}x)")
        if run_cases:
            print("\ncommands (from the repository root; TRACE = the generated trace, "
                  f"{SHORT_TRACE} = one request of 16 prompt and 2 output tokens):")
            for case in run_cases:
                print(f"  {case.name}: {' '.join(main_py(case.flags, Path('TRACE'))[1:])}")


if __name__ == "__main__":
    main()
