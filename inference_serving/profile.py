"""Profiler: time every layer of the trace in PyTorch and write the original CSV format.

    python -m inference_serving.profile --model CONFIG --device cuda|cpu --tp N [--output FILE]

Each layer the trace generator asks for (embedding, the norms, q/k/v/o, rope, attn, the MLP, lm_head)
runs as PyTorch ops on random weights with this tensor-parallel rank's shapes, at several token
counts (`--tokens`); rope and attn of one request at several (new tokens, cached tokens) pairs
(`--attn-tokens` x `--kv`). Rows `hardware,model,layer_name,input,kv_cache,latency(ns)` go to
perf_model/<hardware>.csv or --output (rows of other hardware/model pairs in that file are kept).

The CSV holds whole-layer latencies (CsvPerfModel divides the sharded layers by the run's TP
degree), so a sharded layer measured on one rank at --tp N is written as N x its time; a run at the
same TP degree gets exactly the measured time back. rope and attn are timed over all heads of one
request (the trace's unit), the norms and the embedding unsharded. Models with learned positions
(OPT, GPT-3) have no rotary embedding: their rope rows are 0.

PyTorch is optional (not in requirements.txt); this module imports it only when run.
"""
from __future__ import annotations

import csv
import re
import statistics
import sys
import time
from pathlib import Path

import click

from .model import REPO_ROOT, ModelConfig, ModelError, load_model
from .perf_model import CSV_COLUMNS

DEFAULT_TOKENS = "1,4,16,64,256,1024"
DEFAULT_ATTN_TOKENS = "1,16,128,512"
DEFAULT_KV = "0,128,512,2048"
SHARDED = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj", "fc1", "fc2", "lm_head",
           "act_fn")


class Profiler:
    """Builds each layer once per shape on random weights and times it (median of --repeat runs)."""

    def __init__(self, model: ModelConfig, device: str, tp: int, dtype: str, warmup: int, repeat: int, seed: int = 0):
        import torch
        self.torch, self.model, self.tp = torch, model, tp
        self.device = torch.device(device)
        self.dtype = getattr(torch, dtype)
        self.warmup, self.repeat = warmup, repeat
        self.generator = torch.Generator(device="cpu").manual_seed(seed)

    # --- helpers --------------------------------------------------------------------------------

    def rand(self, *shape: int):
        value = self.torch.randn(*shape, generator=self.generator, dtype=self.torch.float32) * 0.02
        return value.to(device=self.device, dtype=self.dtype)

    def _sync(self) -> None:
        if self.device.type == "cuda":
            self.torch.cuda.synchronize(self.device)

    def time_ns(self, fn) -> float:
        with self.torch.inference_mode():
            for _ in range(self.warmup):
                fn()
            self._sync()
            samples = []
            for _ in range(self.repeat):
                start = time.perf_counter_ns()
                fn()
                self._sync()
                samples.append(time.perf_counter_ns() - start)
        return statistics.median(samples)

    def kv_heads(self) -> int:
        return max(1, self.model.num_kv_heads // self.tp)

    def linear_shape(self, layer: str) -> tuple[int, int]:
        """(in, out) features of this rank's shard."""
        m, tp = self.model, self.tp
        if layer == "lm_head":
            return m.hidden_size, -(-m.vocab_size // tp)
        fan_in, fan_out = m.linear_shapes()[layer]
        if layer in ("k_proj", "v_proj"):
            return fan_in, self.kv_heads() * m.head_dim
        if layer in ("o_proj", "down_proj", "fc2"):
            return -(-fan_in // tp), fan_out
        return fan_in, -(-fan_out // tp)

    # --- layers ---------------------------------------------------------------------------------

    def linear(self, layer: str, tokens: int) -> float:
        import torch.nn.functional as F
        fan_in, fan_out = self.linear_shape(layer)
        x, w = self.rand(tokens, fan_in), self.rand(fan_out, fan_in)
        b = self.rand(fan_out) if self.model.has_bias and layer != "lm_head" else None
        return self.time_ns(lambda: F.linear(x, w, b))

    def norm(self, tokens: int) -> float:
        import torch.nn.functional as F
        h = self.model.hidden_size
        x, w, b = self.rand(tokens, h), self.rand(h), self.rand(h)
        if self.model.has_bias:
            return self.time_ns(lambda: F.layer_norm(x, (h,), w, b))
        return self.time_ns(lambda: F.rms_norm(x, (h,), w, 1e-6))

    def embedding(self, tokens: int) -> float:
        import torch.nn.functional as F
        m = self.model
        table = self.rand(m.vocab_size, m.hidden_size)
        ids = self.torch.randint(0, m.vocab_size, (tokens,), generator=self.generator).to(self.device)
        if not m.learned_positions:
            return self.time_ns(lambda: F.embedding(ids, table))
        positions = self.rand(m.max_position_embeddings + m.position_offset, m.hidden_size)
        pos_ids = self.torch.arange(tokens, device=self.device) % positions.shape[0]
        return self.time_ns(lambda: F.embedding(ids, table) + F.embedding(pos_ids, positions))

    def act_fn(self, tokens: int) -> float:
        import torch.nn.functional as F
        features = -(-self.model.intermediate_size // self.tp)
        x = self.rand(tokens, features)
        if self.model.gated_mlp:
            up = self.rand(tokens, features)
            return self.time_ns(lambda: F.silu(x) * up)
        return self.time_ns(lambda: F.gelu(x))

    def rope(self, tokens: int, kv_cache: int) -> float:
        """Rotate q and k of every head of one request's new tokens (cos/sin at their positions)."""
        if self.model.learned_positions:
            return 0.0
        torch, m = self.torch, self.model
        half = m.head_dim // 2
        q, k = self.rand(tokens, m.num_heads, m.head_dim), self.rand(tokens, m.num_kv_heads, m.head_dim)
        positions = torch.arange(kv_cache, kv_cache + tokens, device=self.device, dtype=torch.float32)
        inv_freq = 1.0 / (10000 ** (torch.arange(half, device=self.device, dtype=torch.float32) / half))
        angles = positions[:, None] * inv_freq[None, :]
        cos = torch.cat([angles.cos(), angles.cos()], -1)[:, None, :].to(self.dtype)
        sin = torch.cat([angles.sin(), angles.sin()], -1)[:, None, :].to(self.dtype)

        def rotate(x):
            x1, x2 = x[..., :half], x[..., half:]
            return x * cos + torch.cat([-x2, x1], -1) * sin

        return self.time_ns(lambda: (rotate(q), rotate(k)))

    def attn(self, tokens: int, kv_cache: int) -> float:
        """Causal attention of one request's new tokens over its cached and new keys, all heads."""
        import torch.nn.functional as F
        torch, m = self.torch, self.model
        keys = kv_cache + tokens
        q = self.rand(1, m.num_heads, tokens, m.head_dim)
        k, v = self.rand(1, m.num_kv_heads, keys, m.head_dim), self.rand(1, m.num_kv_heads, keys, m.head_dim)
        group = m.num_heads // m.num_kv_heads
        mask = None
        if tokens > 1:  # query i sees the cache and new tokens up to itself
            mask = torch.arange(keys, device=self.device)[None, :] <= kv_cache + torch.arange(tokens, device=self.device)[:, None]

        def run():
            kk, vv = (k.repeat_interleave(group, 1), v.repeat_interleave(group, 1)) if group > 1 else (k, v)
            return F.scaled_dot_product_attention(q, kk, vv, attn_mask=mask)

        return self.time_ns(run)

    # --- the table ------------------------------------------------------------------------------

    def layer_names(self) -> list[str]:
        m = self.model
        return ["embedding", "input_layernorm", "q_proj", "k_proj", "v_proj", "o_proj", "post_layernorm",
                *m.mlp_layers(), "final_layernorm", "lm_head"]

    def rows(self, tokens: list[int], attn_tokens: list[int], kv: list[int], log=None) -> list[tuple[str, int, int, float]]:
        """(layer, input, kv_cache, latency ns) with sharded layers scaled to the whole layer (x tp)."""
        out = []
        for layer in self.layer_names():
            for t in tokens:
                if layer == "embedding":
                    ns = self.embedding(t)
                elif layer.endswith("layernorm"):
                    ns = self.norm(t)
                elif layer == "act_fn":
                    ns = self.act_fn(t)
                else:
                    ns = self.linear(layer, t)
                out.append((layer, t, 0, ns * (self.tp if layer in SHARDED else 1)))
            if log:
                log(f"{layer}: {len(tokens)} shapes")
        for layer, fn in (("rope", self.rope), ("attn", self.attn)):
            for t in attn_tokens:
                for c in kv:
                    out.append((layer, t, c, fn(t, c)))
            if log:
                log(f"{layer}: {len(attn_tokens) * len(kv)} shapes")
        return out


def default_hardware_name(device: str) -> str:
    """A CSV hardware name for the device: the GPU's name (e.g. NVIDIA_H100_80GB_HBM3) or CPU."""
    if device.startswith("cuda"):
        import torch
        index = torch.device(device).index or 0
        return re.sub(r"[^A-Za-z0-9]+", "_", torch.cuda.get_device_name(index)).strip("_")
    return "CPU"


def write_rows(path: Path, hardware: str, model: str, rows: list[tuple[str, int, int, float]]) -> None:
    """Write (or update) the CSV: rows of other hardware/model pairs already there are kept."""
    kept = []
    if path.is_file():
        with open(path, newline="") as handle:
            reader = csv.DictReader(handle)
            if tuple(reader.fieldnames or ()) != CSV_COLUMNS:
                raise click.ClickException(f"{path} exists and is not a profile CSV ({','.join(CSV_COLUMNS)}); "
                                           f"choose another --output")
            kept = [r for r in reader if (r["hardware"], r["model"]) != (hardware, model)]
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(CSV_COLUMNS)
        for r in kept:
            writer.writerow([r[c] for c in CSV_COLUMNS])
        for layer, tokens, kv, ns in rows:
            writer.writerow([hardware, model, layer, tokens, kv, round(ns)])


def _int_list(ctx, param, value: str) -> list[int]:
    try:
        values = sorted({int(v) for v in value.split(",") if v.strip()})
    except ValueError:
        raise click.BadParameter(f"a comma-separated list of integers, got {value!r}") from None
    if not values or values[0] < (0 if param.name == "kv" else 1):
        raise click.BadParameter(f"needs {'non-negative' if param.name == 'kv' else 'positive'} integers, got {value!r}")
    return values


@click.command(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--model", "model_name", required=True, help="Model under model_configs/, a config .json or an .onnx.")
@click.option("--device", default="cuda", show_default=True, help="PyTorch device: cuda, cuda:1, cpu.")
@click.option("--tp", default=1, show_default=True, type=click.IntRange(min=1), help="Tensor-parallel degree.")
@click.option("--output", default=None, type=click.Path(dir_okay=False, path_type=Path),
              help="CSV to write [default: perf_model/<hardware>.csv].")
@click.option("--hardware", default=None, help="The CSV's hardware name [default: the GPU's name, or CPU].")
@click.option("--dtype", default=None, type=click.Choice(["bfloat16", "float16", "float32"]),
              help="Element type [default: bfloat16 on cuda, float32 on cpu].")
@click.option("--tokens", default=DEFAULT_TOKENS, show_default=True, callback=_int_list,
              help="Token counts for the non-attention layers.")
@click.option("--attn-tokens", "attn_tokens", default=DEFAULT_ATTN_TOKENS, show_default=True, callback=_int_list,
              help="New tokens of one request for rope/attn.")
@click.option("--kv", default=DEFAULT_KV, show_default=True, callback=_int_list,
              help="Cached tokens of one request for rope/attn.")
@click.option("--warmup", default=2, show_default=True, type=click.IntRange(min=0))
@click.option("--repeat", default=5, show_default=True, type=click.IntRange(min=1), help="Timed runs (median).")
def main(model_name, device, tp, output, hardware, dtype, tokens, attn_tokens, kv, warmup, repeat) -> None:
    """Time each layer of a model in PyTorch and write a CSV for --perf-model."""
    try:
        model = load_model(model_name)
    except ModelError as err:
        raise click.ClickException(str(err)) from None
    try:
        import torch
    except ImportError:
        raise click.ClickException("the profiler needs PyTorch: pip install torch") from None
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise click.ClickException("--device cuda: no CUDA device visible to PyTorch; use --device cpu")
    from .launcher import model_key
    hardware = hardware or default_hardware_name(device)
    dtype = dtype or ("bfloat16" if device.startswith("cuda") else "float32")
    output = output or REPO_ROOT / "perf_model" / f"{hardware}.csv"
    profiler = Profiler(model, device, tp, dtype, warmup, repeat)
    rows = profiler.rows(tokens, attn_tokens, kv, log=lambda line: click.echo(line, err=True))
    write_rows(output, hardware, model_key(model_name), rows)
    click.echo(f"wrote {len(rows)} rows for {model_key(model_name)} on {hardware} (tp {tp}, {dtype}) to {output}")
    click.echo(f"use: python main.py --model_name {model_name} --hardware {hardware} --perf-model {output} "
               f"--npu_num {tp}")


if __name__ == "__main__":
    main()
    sys.exit(0)
