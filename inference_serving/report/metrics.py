"""Clock and metrics: per-request times, throughput per log interval, the summary and the CSV."""
from __future__ import annotations

import bisect
import csv
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, NamedTuple

from ..serving.request import Batch, RequestState
from .summary_stats import mean, median, percentile

# summary key prefix and RequestTimes attribute of the per-request time statistics
SUMMARY_TIMES = (("ttft", "ttft"), ("tpot", "tpot"), ("latency", "latency"), ("queuing_delay", "queuing_delay"))

CSV_HEADER = ["request id", "model", "input", "output", "arrival", "end_time", "latency", "queuing_delay",
              "TTFT", "TPOT"]
INSTANCE_COLUMN = "instance"  # a cluster file's run: the instance(s) that served the request


@dataclass(frozen=True)
class RequestTimes:
    """All in ns."""

    ttft: int
    tpot: int
    latency: int
    queuing_delay: int

    @staticmethod
    def of(state: RequestState) -> "RequestTimes":
        r = state.request
        decode_steps = r.output_tokens - 1
        tpot = (state.end_ns - state.first_token_ns) // decode_steps if decode_steps else 0
        return RequestTimes(ttft=state.first_token_ns - r.arrival_ns, tpot=tpot,
                            latency=state.end_ns - r.arrival_ns, queuing_delay=state.admitted_ns - r.arrival_ns)


class IterationSample(NamedTuple):
    """One finished iteration (batch): its times (ns) and the state of the system when it ended.

    running = admitted, unfinished requests in device memory; waiting = arrived, never scheduled;
    swapped = requests whose KV blocks are in host memory; kv_used/kv_total = KV blocks per NPU of
    the instance that ran the iteration (`instance`). (A named tuple: one is made for every iteration.)"""

    batch: int
    start_ns: int
    end_ns: int
    requests: int
    prompt_tokens: int
    generated_tokens: int
    running: int
    waiting: int
    swapped: int
    kv_used: int
    kv_total: int
    instance: str = ""


@dataclass
class Metrics:
    model_name: str
    log_interval_ns: int
    prompt_tokens: int = 0
    generated_tokens: int = 0
    iterations: int = 0
    finished: list[RequestState] = field(default_factory=list)
    samples: list[IterationSample] = field(default_factory=list)
    # called as listener(metrics, now) after every finished iteration (the progress bar)
    listeners: list[Callable[["Metrics", int], None]] = field(default_factory=list)
    end_ns: int = 0                                    # the simulated time at the end of the run
    config: dict = field(default_factory=dict)         # the run's effective configuration
    # parts of the summary that features add: section.summary(now) -> dict, section.lines(now) -> lines
    sections: list = field(default_factory=list)
    # called as observer(batch, now) after every finished iteration (report/energy.py)
    observers: list[Callable[[Batch, int], None]] = field(default_factory=list)
    _interval_end: int = 0
    _interval_prompt: int = 0
    _interval_generated: int = 0
    served_by: dict[int, str] | None = None  # request id -> instance names (CSV column), when recorded
    instance_models: dict[str, str] = field(default_factory=dict)  # instance name -> its model (CSV column)

    def __post_init__(self) -> None:
        self._interval_end = self.log_interval_ns
        self._kvs: list = []
        self._arrivals: list[int] = []
        self._admitted: set[int] = set()

    def attach(self, kvs: list, arrivals_ns: list[int]) -> None:
        """Turns on per-iteration samples: the instances' KV caches and the requests' arrival times
        (those known before the run; `arrived` adds the others)."""
        self._kvs, self._arrivals = kvs, sorted(arrivals_ns)

    def arrived(self, arrival_ns: int) -> None:
        """A request whose arrival the run decided (a later turn of a session)."""
        bisect.insort(self._arrivals, arrival_ns)

    def batch_started(self, batch: Batch, now: int) -> None:
        self.iterations += 1
        if self._kvs:
            self._admitted.update(batch.prefill)  # the batch's requests, by id
            self._admitted.update(batch.decode)

    def batch_finished(self, batch: Batch, finished: list[RequestState], now: int, instance=None) -> list[str]:
        """Counts the batch in the log interval it ends in; returns the line of the interval that ended
        before, if tokens were counted in it (intervals without tokens have no line, so the log has at
        most one line per iteration however short the interval)."""
        lines = []
        if now > self._interval_end:
            lines = self.flush_throughput()
            behind = max(0, now - self._interval_end)
            self._interval_end += -(-behind // self.log_interval_ns) * self.log_interval_ns
        self.prompt_tokens += batch.prompt_tokens
        self.generated_tokens += batch.sampled
        self._interval_prompt += batch.prompt_tokens
        self._interval_generated += batch.sampled
        self.finished.extend(finished)
        if self.served_by is not None:
            for state in batch.states:
                self._served(state.id, instance.name)
        if self._kvs:
            self._sample(batch, now, instance)
        for observer in self.observers:
            observer(batch, now)
        for listener in self.listeners:
            listener(self, now)
        return lines

    def _served(self, request_id: int, name: str) -> None:
        names = self.served_by.get(request_id)
        if names is None:
            self.served_by[request_id] = name
        elif not names.endswith(name):
            self.served_by[request_id] = f"{names}>{name}"

    def _sample(self, batch: Batch, now: int, instance) -> None:
        kv = instance.kv if instance is not None else self._kvs[0]
        swapped = sum(k.swapped_requests() for k in self._kvs)
        admitted = len(self._admitted)
        self.samples.append(IterationSample(
            batch=batch.id, start_ns=batch.start_ns, end_ns=now, requests=len(batch.entries),
            prompt_tokens=batch.prompt_tokens, generated_tokens=batch.sampled,
            running=admitted - len(self.finished) - swapped,
            waiting=bisect.bisect_right(self._arrivals, now) - admitted, swapped=swapped,
            kv_used=kv.used_blocks, kv_total=kv.total_blocks,
            instance=instance.name if instance is not None else ""))

    def flush_throughput(self) -> list[str]:
        return [self._interval_line()] if self._interval_prompt or self._interval_generated else []

    def _interval_line(self) -> str:
        seconds = self.log_interval_ns / 1e9
        line = (f"[{self._interval_end / 1e9:.3f} s] prompt throughput {self._interval_prompt / seconds:.1f} tokens/s, "
                f"generation throughput {self._interval_generated / seconds:.1f} tokens/s")
        self._interval_end += self.log_interval_ns
        self._interval_prompt = self._interval_generated = 0
        return line

    def summary(self, now: int) -> dict:
        """Every number of the summary, unrounded: counts, seconds, rates, and mean/median/p99 in ms."""
        seconds = now / 1e9 if now else float("nan")
        times = [RequestTimes.of(s) for s in self.finished]
        out = {"requests_finished": len(self.finished), "iterations": self.iterations,
               "prompt_tokens": self.prompt_tokens, "generated_tokens": self.generated_tokens,
               "simulated_time_s": seconds,
               "prompt_throughput_tok_s": self.prompt_tokens / seconds,
               "generation_throughput_tok_s": self.generated_tokens / seconds,
               "request_throughput_req_s": len(self.finished) / seconds}
        for key, attr in SUMMARY_TIMES:
            values = [getattr(t, attr) / 1e6 for t in times]
            if values:
                ordered = sorted(values)
                stats = (mean(values), median(ordered), percentile(ordered, 99))
            else:
                stats = (float("nan"),) * 3
            for stat, value in zip(("mean", "median", "p99"), stats):
                out[f"{key}_{stat}_ms"] = value
        for section in self.sections:
            out.update(section.summary(now))
        return out

    def summary_lines(self, now: int) -> list[str]:
        m = self.summary(now)
        lines = ["=" * 20 + " Simulation summary " + "=" * 20,
                 f"requests finished:        {m['requests_finished']}",
                 f"iterations:               {m['iterations']}",
                 f"prompt tokens:            {m['prompt_tokens']}",
                 f"generated tokens:         {m['generated_tokens']}",
                 f"simulated time:           {m['simulated_time_s']:.6f} s",
                 f"prompt throughput:        {m['prompt_throughput_tok_s']:.2f} tokens/s",
                 f"generation throughput:    {m['generation_throughput_tok_s']:.2f} tokens/s",
                 f"request throughput:       {m['request_throughput_req_s']:.3f} requests/s"]
        for (key, _), label in zip(SUMMARY_TIMES, ("TTFT", "TPOT", "end-to-end latency", "queuing delay")):
            lines.append(f"{label + ' (ms):':26}mean {m[key + '_mean_ms']:.3f}  median {m[key + '_median_ms']:.3f}  "
                         f"p99 {m[key + '_p99_ms']:.3f}")
        for section in self.sections:
            lines += section.lines(now)
        return lines

    def _model_of(self, request_id: int) -> str:
        if self.served_by is None:
            return self.model_name
        return self.instance_models[self.served_by[request_id].split(">")[-1]]

    def write_csv(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_HEADER + ([INSTANCE_COLUMN] if self.served_by is not None else []))
            for state in sorted(self.finished, key=lambda s: s.id):
                r, t = state.request, RequestTimes.of(state)
                row = [r.id, self._model_of(r.id), r.input_tokens, r.output_tokens, r.arrival_ns, state.end_ns,
                       t.latency, t.queuing_delay, t.ttft, t.tpot]
                writer.writerow(row + ([self.served_by[r.id]] if self.served_by is not None else []))
