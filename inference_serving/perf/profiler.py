"""Profiler: time every layer of the trace in PyTorch and write the original CSV format.

    llmservingsim profile --model CONFIG --device cuda|cpu --tp N [--output FILE]

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
import time
from pathlib import Path

from ..errors import InputError
from ..inputs.model_config import ModelConfig
from .csv_provider import CSV_COLUMNS
from .layers import SHARDED
from .shard import shard

DEFAULT_TOKENS = "1,4,16,64,256,1024"
DEFAULT_ATTN_TOKENS = "1,16,128,512"
DEFAULT_KV = "0,128,512,2048"


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

    # --- layers ---------------------------------------------------------------------------------

    def linear(self, layer: str, tokens: int) -> float:
        import torch.nn.functional as F
        fan_in, fan_out = shard(self.model, self.tp).linear(layer)
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
        features = shard(self.model, self.tp).intermediate
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
                raise InputError(f"{path} exists and is not a profile CSV ({','.join(CSV_COLUMNS)}); "
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
