"""Clock and metrics: per-request times, throughput per log interval, the summary and the CSV."""
from __future__ import annotations

import csv
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .scheduler import Batch, RequestState

CSV_HEADER = ["request id", "model", "input", "output", "arrival", "end_time", "latency", "queuing_delay",
              "TTFT", "TPOT"]


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


@dataclass
class Metrics:
    model_name: str
    log_interval_ns: int
    prompt_tokens: int = 0
    generated_tokens: int = 0
    iterations: int = 0
    finished: list[RequestState] = field(default_factory=list)
    _interval_end: int = 0
    _interval_prompt: int = 0
    _interval_generated: int = 0

    def __post_init__(self) -> None:
        self._interval_end = self.log_interval_ns

    def batch_started(self, batch: Batch, now: int) -> None:
        self.iterations += 1

    def batch_finished(self, batch: Batch, finished: list[RequestState], now: int) -> list[str]:
        """Counts the batch in the log interval it ends in; returns the lines of intervals that ended before."""
        lines = []
        while now > self._interval_end:
            lines.append(self._interval_line())
        self.prompt_tokens += batch.prompt_tokens
        self.generated_tokens += len(batch.entries)
        self._interval_prompt += batch.prompt_tokens
        self._interval_generated += len(batch.entries)
        self.finished.extend(finished)
        return lines

    def flush_throughput(self) -> list[str]:
        return [self._interval_line()] if self._interval_prompt or self._interval_generated else []

    def _interval_line(self) -> str:
        seconds = self.log_interval_ns / 1e9
        line = (f"[{self._interval_end / 1e9:.3f} s] prompt throughput {self._interval_prompt / seconds:.1f} tokens/s, "
                f"generation throughput {self._interval_generated / seconds:.1f} tokens/s")
        self._interval_end += self.log_interval_ns
        self._interval_prompt = self._interval_generated = 0
        return line

    def summary_lines(self, now: int) -> list[str]:
        seconds = now / 1e9 if now else float("nan")
        times = [RequestTimes.of(s) for s in self.finished]
        lines = ["=" * 20 + " Simulation summary " + "=" * 20,
                 f"requests finished:        {len(self.finished)}",
                 f"iterations:               {self.iterations}",
                 f"prompt tokens:            {self.prompt_tokens}",
                 f"generated tokens:         {self.generated_tokens}",
                 f"simulated time:           {seconds:.6f} s",
                 f"prompt throughput:        {self.prompt_tokens / seconds:.2f} tokens/s",
                 f"generation throughput:    {self.generated_tokens / seconds:.2f} tokens/s",
                 f"request throughput:       {len(self.finished) / seconds:.3f} requests/s"]
        for label, attr in (("TTFT", "ttft"), ("TPOT", "tpot"), ("end-to-end latency", "latency"),
                            ("queuing delay", "queuing_delay")):
            values = np.array([getattr(t, attr) for t in times], dtype=float) / 1e6
            lines.append(f"{label + ' (ms):':26}mean {values.mean():.3f}  median {np.median(values):.3f}  "
                         f"p99 {np.percentile(values, 99):.3f}")
        return lines

    def write_csv(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(CSV_HEADER)
            for state in sorted(self.finished, key=lambda s: s.id):
                r, t = state.request, RequestTimes.of(state)
                writer.writerow([r.id, self.model_name, r.input_tokens, r.output_tokens, r.arrival_ns, state.end_ns,
                                 t.latency, t.queuing_delay, t.ttft, t.tpot])
