"""The command line: `llmservingsim` and its subcommands; `python main.py` is the same with `run` implied."""
from __future__ import annotations

import click

from .command import Group
from .list import list_command
from .onnx import onnx as onnx_command
from .profile import main as profile_command
from .run import CONTEXT
from .run import run as run_command
from .search import main as search_command
from .sweep import main as sweep_command
from .validate import main as validate_command
from .workload import main as workload_command

COMMANDS = [run_command, validate_command, sweep_command, search_command, profile_command, workload_command,
            onnx_command, list_command]


class RunByDefault(Group):
    """main.py: `python main.py --model_name ...` is `run`; `python main.py validate ...` a subcommand."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or args[0] not in self.commands:
            args = ["run", *args]
        return super().parse_args(ctx, args)


def _group(cls: type[Group]) -> Group:
    return cls("llmservingsim", commands=COMMANDS, context_settings=CONTEXT,
               help="LLMServingSim: simulate LLM inference serving on clusters of accelerators.")


llmservingsim = _group(Group)
main_py = _group(RunByDefault)
