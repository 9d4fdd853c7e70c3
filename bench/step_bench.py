#!/usr/bin/env python3
"""The policies' per-step work alone: scheduling and completing a step of N running requests that decode.

    .venv/bin/python bench/step_bench.py [--requests N,...] [--steps S] [--repeat R]

Each policy (vLLM with its prefix-cache KV manager, Orca with its host-swap one) gets N requests of 100 prompt
tokens that decode for longer than the run, KV cache to spare, so every step schedules all N; after a first
step (the prompts), S steps are timed, R times over fresh policies. Prints the best microseconds per step and
nanoseconds per request for `schedule` and for `complete`. It reports times; it never asserts them.
"""
from __future__ import annotations

import argparse
import os
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from inference_serving.inputs.workload import Request  # noqa: E402
from inference_serving.serving.kv.host_swap import HostSwapKV  # noqa: E402
from inference_serving.serving.kv.layout import MemoryLayout  # noqa: E402
from inference_serving.serving.kv.prefix_cache import PrefixCacheKV  # noqa: E402
from inference_serving.serving.orca import OrcaPolicy  # noqa: E402
from inference_serving.serving.vllm import VllmPolicy  # noqa: E402

# KV blocks of 16 tokens, one byte each, in a memory that holds 10^6 of them: no request waits for blocks
LAYOUT = MemoryLayout(weight_bytes=0, block_bytes=1, capacity_bytes=10**6, block_size=16)


# each policy, made afresh for the requests
POLICIES = {
    "vllm": lambda requests: VllmPolicy(requests, PrefixCacheKV(LAYOUT, 10**6, caching=False),
                                        max_num_seqs=len(requests), max_num_batched_tokens=100 * len(requests),
                                        memory=None),
    "orca": lambda requests: OrcaPolicy(requests, HostSwapKV(LAYOUT)),
}


def timed_steps(policy, steps: int) -> tuple[float, float]:
    """(seconds scheduling, seconds completing) over `steps` steps after the first."""
    policy.complete(policy.schedule(0), 1)
    scheduling = completing = 0.0
    for step in range(steps):
        start = time.perf_counter()
        batch = policy.schedule(step)
        scheduled = time.perf_counter()
        policy.complete(batch, step)
        scheduling += scheduled - start
        completing += time.perf_counter() - scheduled
    return scheduling, completing


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--requests", default="16,128,512", help="running requests per step, comma-separated")
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    for count in map(int, args.requests.split(",")):
        requests = [Request(i, 100, 10 * args.steps, 0) for i in range(count)]
        for name, policy in POLICIES.items():
            runs = [timed_steps(policy(requests), args.steps) for _ in range(args.repeat)]
            per_step = [1e6 * min(run[part] for run in runs) / args.steps for part in (0, 1)]
            print(f"{name} {count:4d} requests: schedule {per_step[0]:7.1f} us/step ({1e3 * per_step[0] / count:4.0f} ns "
                  f"per request), complete {per_step[1]:6.1f} us/step ({1e3 * per_step[1] / count:4.0f} ns per request)")


if __name__ == "__main__":
    main()
