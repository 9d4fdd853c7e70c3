"""The summary's per-instance part for a cluster file's run: what each instance served and how fast.

Per instance: iterations, prompt and generated tokens, the requests it ended (for a decode instance
the ones it generated; a prefill instance ends none unless a request wants one token), their mean
TTFT and TPOT, and its peak KV use. A disaggregated run adds its KV transfers
(cluster/disaggregation.py).
"""
from __future__ import annotations

from .metrics import Metrics, RequestTimes


class InstanceBreakdown:
    def __init__(self, metrics: Metrics, names: list[str], transfers=None) -> None:
        self.metrics, self.names, self.transfers = metrics, names, transfers  # metrics.served_by is recorded

    def per_instance(self) -> dict[str, dict]:
        import numpy as np  # at first use, not at start-up

        m = self.metrics
        out = {name: {"iterations": 0, "prompt_tokens": 0, "generated_tokens": 0, "kv_peak": 0.0,
                      "requests": 0, "ttft_mean_ms": float("nan"), "tpot_mean_ms": float("nan")}
               for name in self.names}
        for sample in m.samples:
            row = out[sample.instance]
            row["iterations"] += 1
            row["prompt_tokens"] += sample.prompt_tokens
            row["generated_tokens"] += sample.generated_tokens
            row["kv_peak"] = max(row["kv_peak"], sample.kv_used / sample.kv_total)
        ended: dict[str, list[RequestTimes]] = {name: [] for name in self.names}
        for state in m.finished:
            ended[m.served_by[state.id].split(">")[-1]].append(RequestTimes.of(state))
        for name, times in ended.items():
            out[name]["requests"] = len(times)
            if times:
                out[name]["ttft_mean_ms"] = float(np.mean([t.ttft for t in times])) / 1e6
                out[name]["tpot_mean_ms"] = float(np.mean([t.tpot for t in times])) / 1e6
        return out

    def summary(self, now: int) -> dict:
        out = {f"instance_{name}_{key}": value for name, row in self.per_instance().items()
               for key, value in row.items()}
        if self.transfers is not None:
            out.update(self.transfers.summary(now))
        return out

    def lines(self, now: int) -> list[str]:
        lines = ["per instance:             iterations  prompt tok  generated tok  requests  TTFT ms  TPOT ms  "
                 "peak KV"]
        for name, row in self.per_instance().items():
            lines.append(f"  {name:24}{row['iterations']:10d}  {row['prompt_tokens']:10d}  "
                         f"{row['generated_tokens']:13d}  {row['requests']:8d}  {row['ttft_mean_ms']:7.3f}  "
                         f"{row['tpot_mean_ms']:7.3f}  {row['kv_peak'] * 100:6.1f}%")
        if self.transfers is not None:
            lines += self.transfers.lines(now)
        return lines
