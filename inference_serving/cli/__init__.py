"""The command line: `llmservingsim` and its subcommands; `python main.py` is the same with `run` implied.

A subcommand's module is imported when it is asked for (its help included), not at start-up: a run does
not pay for the imports of `onnx`, `list` or `validate`.
"""
from __future__ import annotations

from importlib import import_module

import click

from .command import Group

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 110}
# subcommand -> "module:attribute" under this package, in the order `--help` lists them
COMMANDS = {"run": "run:run", "validate": "validate:main", "sweep": "sweep:main", "search": "search:main",
            "profile": "profile:main", "workload": "workload:main", "onnx": "onnx:onnx", "list": "list:list_command"}


class LazyGroup(Group):
    """The subcommands of COMMANDS, each imported at its first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module, attribute = COMMANDS[name].split(":")
        return getattr(import_module(f"{__name__}.{module}"), attribute)


class RunByDefault(LazyGroup):
    """main.py: `python main.py --model_name ...` is `run`; `python main.py validate ...` a subcommand."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if not args or args[0] not in COMMANDS:
            args = ["run", *args]
        return super().parse_args(ctx, args)


def _group(cls: type[Group]) -> Group:
    return cls("llmservingsim", context_settings=CONTEXT,
               help="LLMServingSim: simulate LLM inference serving on clusters of accelerators.")


llmservingsim = _group(LazyGroup)
main_py = _group(RunByDefault)
