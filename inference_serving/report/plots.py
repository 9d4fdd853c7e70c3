"""`--plot DIR`: PNG figures of a run (matplotlib, Agg backend: no display needed).

  throughput.png      prompt and generation throughput (tokens/s) over simulated time
  requests_kv.png     running / waiting / swapped requests and KV-cache use (% of blocks) over time,
                      one KV line per instance of a cluster
  latency_cdf.png     CDFs of TTFT, TPOT and end-to-end latency (ms)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from .metrics import Metrics, RequestTimes

PLOT_FILES = ("throughput.png", "requests_kv.png", "latency_cdf.png")


def pyplot():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def throughput_series(metrics: Metrics, end_ns: int, bins: int = 200) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bin centres (s) and prompt / generation tokens per second, counting each iteration's tokens in
    the bin its end falls into; the bin is the log interval unless that gives more than `bins` bins."""
    width = max(metrics.log_interval_ns, -(-max(end_ns, 1) // bins))
    count = max(1, -(-max(end_ns, 1) // width))
    prompt, generated = np.zeros(count), np.zeros(count)
    for s in metrics.samples:
        k = min(count - 1, max(0, (s.end_ns - 1) // width))
        prompt[k] += s.prompt_tokens
        generated[k] += s.generated_tokens
    seconds = width / 1e9
    centres = (np.arange(count) + 0.5) * seconds
    return centres, prompt / seconds, generated / seconds


def write_plots(directory: Path, metrics: Metrics, end_ns: int, title: str = "") -> list[Path]:
    """The three figures of PLOT_FILES, written into `directory`."""
    plt = pyplot()
    directory.mkdir(parents=True, exist_ok=True)
    paths = [directory / name for name in PLOT_FILES]
    for draw, path in zip((_throughput_figure, _requests_kv_figure, _latency_cdf_figure), paths):
        fig = draw(plt, metrics, end_ns, title)
        fig.tight_layout()
        fig.savefig(path, dpi=110)
        plt.close(fig)
    return paths


def _throughput_figure(plt, metrics: Metrics, end_ns: int, title: str):
    fig, ax = plt.subplots(figsize=(9, 4.5))
    t, prompt, generated = throughput_series(metrics, end_ns)
    ax.step(t, prompt, where="mid", label="prompt (prefill)")
    ax.step(t, generated, where="mid", label="generation (decode)")
    ax.set_xlabel("simulated time (s)")
    ax.set_ylabel("tokens / s")
    ax.set_title(f"Throughput over time  {title}".strip())
    ax.set_xlim(0, end_ns / 1e9 if end_ns else 1)
    ax.grid(alpha=0.3)
    ax.legend()
    return fig


def _requests_kv_figure(plt, metrics: Metrics, end_ns: int, title: str):
    samples = metrics.samples
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(9, 6.5), sharex=True)
    ends = np.array([s.end_ns for s in samples], dtype=float) / 1e9
    for attr, label in (("running", "running"), ("waiting", "waiting"), ("swapped", "swapped to host")):
        values = [getattr(s, attr) for s in samples]
        if attr != "swapped" or any(values):
            top.step(ends, values, where="post", label=label)
    top.set_ylabel("requests")
    top.set_title(f"Requests and KV cache over time  {title}".strip())
    top.grid(alpha=0.3)
    top.legend()
    names = list(dict.fromkeys(s.instance for s in samples))
    for name in names:
        own = [s for s in samples if s.instance == name]
        kv = [100.0 * s.kv_used / s.kv_total if s.kv_total else 0.0 for s in own]
        bottom.step(np.array([s.end_ns for s in own], dtype=float) / 1e9, kv, where="post",
                    **({"label": name} if len(names) > 1 else {"color": "tab:purple"}))
    bottom.set_ylabel("KV blocks in use (%)")
    bottom.set_ylim(0, 105)
    if len(names) > 1:
        bottom.legend(fontsize=8)
        bottom.set_title("KV cache use per NPU, per instance", fontsize=10)
    else:
        bottom.set_title(f"KV cache use per NPU ({samples[0].kv_total if samples else 0} blocks)", fontsize=10)
    bottom.set_xlabel("simulated time (s)")
    bottom.set_xlim(0, end_ns / 1e9 if end_ns else 1)
    bottom.grid(alpha=0.3)
    return fig


def _latency_cdf_figure(plt, metrics: Metrics, end_ns: int, title: str):
    times = [RequestTimes.of(s) for s in metrics.finished]
    fig, axes = plt.subplots(1, 3, figsize=(13, 4))
    for ax, (attr, label) in zip(axes, (("ttft", "TTFT"), ("tpot", "TPOT"), ("latency", "end-to-end latency"))):
        values = np.sort(np.array([getattr(x, attr) for x in times], dtype=float) / 1e6)
        if len(values):
            ax.step(values, np.arange(1, len(values) + 1) / len(values), where="post")
            p99 = np.percentile(values, 99)
            ax.axvline(p99, color="tab:red", linestyle="--", linewidth=1, label=f"p99 {p99:.2f} ms")
            ax.legend(loc="lower right")
        ax.set_xlabel(f"{label} (ms)")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("fraction of requests")
    fig.suptitle(f"Latency CDFs ({len(times)} requests)  {title}".strip())
    return fig
