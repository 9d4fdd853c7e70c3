"""The command line: `llmservingsim` and its subcommands; `python main.py` is the same with `run` implied."""
from __future__ import annotations

import click

from .list import list_command
from .onnx import onnx
from .profile import main as profile
from .run import CONTEXT, run
from .search import main as search
from .sweep import main as sweep
from .validate import main as validate
from .workload import main as workload

COMMANDS = [run, validate, sweep, search, profile, workload, onnx, list_command]


class RunByDefault(click.Group):
    """main.py: `python main.py --model_name ...` is `run`; `python main.py validate ...` a subcommand."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or args[0] not in self.commands:
            args = ["run", *args]
        return super().parse_args(ctx, args)


def _group(cls: type[click.Group]) -> click.Group:
    return cls("llmservingsim", commands=COMMANDS, context_settings=CONTEXT,
               help="LLMServingSim: simulate LLM inference serving on clusters of accelerators.")


llmservingsim = _group(click.Group)
main_py = _group(RunByDefault)
