"""`--chrome-trace FILE`: the simulated execution in the Trace Event Format (chrome://tracing, Perfetto).

Inputs: the engine's span file (`--span-file`, one line `npu node_id kind start end name` per completed
node, ticks in ns), the requests' times and the per-iteration samples. Output: "X" (complete) events with
`ts`/`dur` in microseconds (fractions keep the nanoseconds):
  pid = NPU id, tid 0 compute / 1 communication / 2 memory (/ 3 pim, when the run has PIM nodes), one
      event per engine node;
  pid "requests" (= number of NPUs): one tid per request with its phases queued (arrival -> first
      scheduled), prefill (-> first token) and decode (-> last token); and tids "iterations k" with every
      iteration (batch) from its start to its end (iterations in flight at the same time use separate tids).
"""
from __future__ import annotations

import json
from pathlib import Path

KIND_TIDS = {"compute": 0, "communication": 1, "memory": 2, "pim": 3}
ITERATION_TID_BASE = 1 << 30  # request tids are request ids; iteration lanes sort after them


def read_spans(path: Path) -> list[tuple[int, int, str, int, int, str]]:
    """(npu, node id, kind, start ns, end ns, name) for every line of an engine span file."""
    spans = []
    with open(path) as handle:
        for line in handle:
            npu, node_id, kind, start, end, name = line.rstrip("\n").split(" ", 5)
            spans.append((int(npu), int(node_id), kind, int(start), int(end), name))
    return spans


def _us(ns: int) -> float:
    return ns / 1000


def _complete(name: str, pid: int, tid: int, start: int, end: int, cat: str, args: dict | None = None) -> dict:
    event = {"name": name, "cat": cat, "ph": "X", "pid": pid, "tid": tid, "ts": _us(start), "dur": _us(end - start)}
    if args:
        event["args"] = args
    return event


def _meta(kind: str, pid: int, name: str, tid: int | None = None, sort: int | None = None) -> list[dict]:
    event = {"name": kind, "ph": "M", "pid": pid, "args": {"name": name}}
    if tid is not None:
        event["tid"] = tid
    events = [event]
    if sort is not None:
        sort_kind = "thread_sort_index" if tid is not None else "process_sort_index"
        events.append({"name": sort_kind, "ph": "M", "pid": pid, **({"tid": tid} if tid is not None else {}),
                       "args": {"sort_index": sort}})
    return events


def build_trace(spans, npus: int, states, samples, end_ns: int, config: dict | None = None) -> dict:
    events: list[dict] = []
    kinds = {kind for _, _, kind, _, _, _ in spans}
    for npu in range(npus):
        events += _meta("process_name", npu, f"NPU {npu}", sort=npu)
        for kind, tid in KIND_TIDS.items():
            if kind != "pim" or kind in kinds:
                events += _meta("thread_name", npu, kind, tid=tid, sort=tid)
    for npu, node_id, kind, start, end, name in spans:
        events.append(_complete(name, npu, KIND_TIDS.get(kind, 1), start, end, kind, {"node": node_id}))

    requests_pid = npus
    events += _meta("process_name", requests_pid, "requests", sort=npus)
    for state in sorted(states, key=lambda s: s.id):
        r = state.request
        events += _meta("thread_name", requests_pid, f"request {r.id}", tid=r.id, sort=r.id)
        phases = [("queued", r.arrival_ns, state.admitted_ns), ("prefill", state.admitted_ns, state.first_token_ns),
                  ("decode", state.first_token_ns, state.end_ns)]
        args = {"input": r.input_tokens, "output": r.output_tokens}
        for name, start, end in phases:
            if start is not None and end is not None and end > start:
                events.append(_complete(name, requests_pid, r.id, start, end, "request", args))

    lane_ends: list[int] = []
    for sample in samples:
        lane = next((i for i, last in enumerate(lane_ends) if last <= sample.start_ns), len(lane_ends))
        if lane == len(lane_ends):
            lane_ends.append(0)
            events += _meta("thread_name", requests_pid, f"iterations {lane}", tid=ITERATION_TID_BASE + lane,
                            sort=-1 - (1 << 20) + lane)
        lane_ends[lane] = sample.end_ns
        events.append(_complete(f"iteration {sample.batch}", requests_pid, ITERATION_TID_BASE + lane,
                                sample.start_ns, sample.end_ns, "iteration",
                                {"requests": sample.requests, "prompt_tokens": sample.prompt_tokens,
                                 "running": sample.running, "waiting": sample.waiting,
                                 "kv_blocks_used": sample.kv_used, "kv_blocks_total": sample.kv_total}))
    return {"traceEvents": events, "displayTimeUnit": "ns",
            "otherData": {"tool": "llmservingsim", "simulated_time_ns": end_ns, "npus": npus, **({"config": config} if config else {})}}


def write_chrome_trace(path: Path, span_file: Path, npus: int, states, samples, end_ns: int,
                       config: dict | None = None) -> None:
    trace = build_trace(read_spans(span_file), npus, states, samples, end_ns, config)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        json.dump(trace, handle, separators=(",", ":"))
