"""`llmservingsim profile`: time every layer of a model in PyTorch into the profiled-CSV format."""
from __future__ import annotations

import re
from pathlib import Path

import click

from ..config.types import MAX_DIMENSION, POSITIVE_INT, StrictInt
from ..errors import InputError
from ..inputs.model import load_model
from ..inputs.moe_config import dense_only
from ..paths import REPO_ROOT
from ..perf.csv_provider import model_key
from ..perf.profiler import (CSV_COLUMNS, DEFAULT_ATTN_TOKENS, DEFAULT_KV, DEFAULT_TOKENS, Profiler,
                             default_hardware_name, write_rows)
from ..perf.shard import shard
from ..report.output_paths import check_file, first_line
from .command import Command

MAX_RUNS = 1000  # warm-up or timed runs of one shape
DEVICE = re.compile(r"(cpu|mps|(cuda|xpu)(:[0-9]+)?)")


def _int_list(ctx, param, value: str) -> list[int]:
    try:
        values = sorted({int(v) for v in value.split(",") if v.strip()})
    except ValueError:
        raise click.BadParameter(f"a comma-separated list of integers, got {value!r}") from None
    lowest = 0 if param.name == "kv" else 1
    if not values or values[0] < lowest or values[-1] > MAX_DIMENSION:
        raise click.BadParameter(f"needs integers from {lowest} to {MAX_DIMENSION}, got {value!r}")
    return values


def _device(ctx, param, value: str) -> str:
    if not DEVICE.fullmatch(value):
        raise click.BadParameter(f"{value!r} is not a PyTorch device such as cuda, cuda:1, cpu, mps or xpu")
    return value


@click.command("profile", cls=Command, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--model", "model_name", required=True, help="Model under model_configs/, a config .json or an .onnx.")
@click.option("--device", default="cuda", show_default=True, callback=_device, help="PyTorch device: cuda, cuda:1, cpu.")
@click.option("--tp", default=1, show_default=True, type=POSITIVE_INT, help="Tensor-parallel degree.")
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
@click.option("--warmup", default=2, show_default=True, type=StrictInt(min=0, max=MAX_RUNS))
@click.option("--repeat", default=5, show_default=True, type=StrictInt(min=1, max=MAX_RUNS), help="Timed runs (median).")
def main(model_name, device, tp, output, hardware, dtype, tokens, attn_tokens, kv, warmup, repeat) -> None:
    """Time each layer of a model in PyTorch and write a CSV for --perf-model."""
    model = load_model(model_name)
    dense_only(model, "profile")
    shard(model, tp)
    check_file("--output", output, is_profile_csv)
    try:
        import torch
    except ImportError:
        raise InputError("the profiler needs PyTorch: pip install torch") from None
    if device.startswith("cuda") and int(device.partition(":")[2] or 0) >= torch.cuda.device_count():
        raise InputError(f"--device {device}: PyTorch sees {torch.cuda.device_count()} CUDA devices; "
                         f"choose one of them or --device cpu")
    hardware = hardware or default_hardware_name(device)
    dtype = dtype or ("bfloat16" if device.startswith("cuda") else "float32")
    if output is None:
        output = REPO_ROOT / "perf_model" / f"{hardware}.csv"
        check_file("--output", output, is_profile_csv)
    profiler = Profiler(model, device, tp, dtype, warmup, repeat)
    rows = profiler.rows(tokens, attn_tokens, kv, log=lambda line: click.echo(line, err=True))
    write_rows(output, hardware, model_key(model_name), rows)
    click.echo(f"wrote {len(rows)} rows for {model_key(model_name)} on {hardware} (tp {tp}, {dtype}) to {output}")
    click.echo(f"use: python main.py --model_name {model_name} --hardware {hardware} --perf-model {output} "
               f"--npu_num {tp}")


def is_profile_csv(path: Path) -> bool:
    """A profile CSV: the new rows are merged into it (rows of other hardware and models are kept)."""
    return first_line(path) == ",".join(CSV_COLUMNS)
