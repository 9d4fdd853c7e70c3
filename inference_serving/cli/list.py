"""`llmservingsim list`: the models, hardware, providers, schedulers, routers and engine backends, one line each."""
from __future__ import annotations

import click

from ..backend.base import BACKENDS
from ..cluster.routers import ROUTERS
from ..inputs.hardware import known_hardware, load_hardware
from ..inputs.model import available_models, load_model
from ..perf.provider import PROVIDERS
from ..serving.policy import POLICIES
from .command import Command

WHAT = ("models", "hardware", "providers", "schedulers", "routers", "backends")


def _model_line(name: str) -> str:
    m = load_model(name)
    return (f"{name:34} {m.total_parameters() / 1e9:7.2f} B parameters, {m.num_layers:3} layers, "
            f"{m.num_heads}/{m.num_kv_heads} heads/KV heads, KV {m.kv_bytes_per_token(16) // 1024} KiB/token at bf16")


def _hardware_line(name: str) -> str:
    hw = load_hardware(name)
    return f"{name:12} {hw.provider:15} {hw.memory_gib:7.1f} GiB {hw.memory_bw_gbps:7.0f} GB/s  {hw.source}"


def lines(what: str) -> list[str]:
    if what == "models":
        return [_model_line(name) for name in available_models()]
    if what == "hardware":
        return [_hardware_line(name) for name in known_hardware()]
    registry = {"providers": PROVIDERS, "schedulers": POLICIES, "routers": ROUTERS, "backends": BACKENDS}[what]
    return [f"{name:15} {doc}" for name, doc in registry.describe()]


@click.command("list", cls=Command)
@click.argument("what", required=False, type=click.Choice(WHAT))
def list_command(what: str | None) -> None:
    """List what a run can name (all six kinds, or one)."""
    for kind in [what] if what else WHAT:
        if not what:
            click.echo(f"{kind}:")
        for line in lines(kind):
            click.echo(("  " if not what else "") + line)
