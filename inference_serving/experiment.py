"""Experiment files: `main.py --config FILE.yaml` and the configurations of sweeps.

A file is a YAML mapping from main.py's flag names to values. Keys are the flags without the leading
dashes, with '-' and '_' interchangeable (`npu_num`, `perf-model`, `perf_model`); flags given on the
command line override the file. An unknown key or a file that is not such a mapping is one line on stderr and
exit status 2 (ConfigError elsewhere).
"""
from __future__ import annotations

import sys
from pathlib import Path

import click
import yaml

from .engine import REPO_ROOT


class ConfigError(ValueError):
    """An experiment file or configuration that cannot be used."""


def option_names(command: click.Command) -> dict[str, str]:
    """Key (flag name without leading dashes, '-' written as '_') -> parameter name, for every option."""
    names: dict[str, str] = {}
    for param in command.params:
        if not isinstance(param, click.Option) or param.name in ("config", "help"):
            continue
        names[param.name] = param.name
        for opt in param.opts:
            names[opt.lstrip("-").replace("-", "_")] = param.name
    return names


def normalize(command: click.Command, mapping: dict, source: str) -> dict:
    """Flag values keyed by parameter name; ConfigError names the first unknown key."""
    if not isinstance(mapping, dict):
        raise ConfigError(f"{source}: expected a mapping of flag names to values")
    names = option_names(command)
    out = {}
    for key, value in mapping.items():
        name = names.get(str(key).replace("-", "_"))
        if name is None:
            raise ConfigError(f"{source}: unknown key '{key}' (keys are main.py's flags without dashes, "
                              f"e.g. npu_num, perf-model)")
        out[name] = _as_flag_value(value)
    return out


def _as_flag_value(value):
    """YAML scalars as click would get them from a command line (fp: 16 -> '16' for a Choice)."""
    if isinstance(value, bool) or value is None:
        return value
    return str(value) if isinstance(value, (int, float)) else value


def load_config(command: click.Command, path: Path) -> dict:
    try:
        with open(path) as handle:
            data = yaml.safe_load(handle)
    except OSError as err:
        raise ConfigError(f"--config {path}: {err.strerror}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"--config {path}: not valid YAML ({str(err).splitlines()[0]})") from None
    return normalize(command, data or {}, f"--config {path}")


def config_callback(ctx: click.Context, param: click.Parameter, value) -> None:
    """Eager --config: the file's values become the defaults, so command-line flags override them."""
    if value is None:
        return
    try:
        values = load_config(ctx.command, Path(value))
    except ConfigError as err:
        click.echo(f"error: {err}", err=True)
        ctx.exit(2)
    ctx.default_map = {**(ctx.default_map or {}), **values}


def main_command() -> click.Command:
    """main.py's click command (the one place the flags and their defaults are defined)."""
    if str(REPO_ROOT) not in sys.path:
        sys.path.insert(0, str(REPO_ROOT))
    from main import main
    return main


def run_request(flags: dict, command: click.Command | None = None):
    """A RunRequest for `flags` (keys as in a config file) with main.py's defaults for the rest."""
    from .launcher import RunRequest
    command = command or main_command()
    values = normalize(command, flags, "configuration")
    try:
        ctx = command.make_context("main.py", [], default_map=values)
    except click.ClickException as err:
        raise ConfigError(err.format_message()) from None
    params = {k: v for k, v in ctx.params.items() if k != "config"}
    return RunRequest(**params)
