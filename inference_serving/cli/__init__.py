"""The command line: `llmservingsim` and its subcommands; `python main.py` is the same with `run` implied.

Subcommands are imported when they are run (or listed by --help), so a run does not pay for the
imports of the others (ONNX export, plots, sweeps)."""
from __future__ import annotations

import click

from ..registry import Registry
from .run import CONTEXT

COMMANDS = Registry("command", "llmservingsim", {
    "run": ".cli.run:run",
    "validate": ".cli.validate:main",
    "sweep": ".cli.sweep:main",
    "search": ".cli.search:main",
    "profile": ".cli.profile:main",
    "workload": ".cli.workload:main",
    "onnx": ".cli.onnx:onnx",
    "list": ".cli.list:list_command",
})


class LazyGroup(click.Group):
    """Commands from COMMANDS, imported on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return COMMANDS.names()

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        return COMMANDS.get(name) if name in COMMANDS.entries else None


class RunByDefault(LazyGroup):
    """main.py: `python main.py --model_name ...` is `run`; `python main.py validate ...` a subcommand."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or args[0] not in COMMANDS.entries:
            args = ["run", *args]
        return super().parse_args(ctx, args)


def _group(cls: type[click.Group]) -> click.Group:
    return cls("llmservingsim", context_settings=CONTEXT,
               help="LLMServingSim: simulate LLM inference serving on clusters of accelerators.")


llmservingsim = _group(LazyGroup)
main_py = _group(RunByDefault)
