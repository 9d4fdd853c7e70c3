"""Experiment files: `main.py --config FILE.yaml` and the base configuration of sweeps and searches.

A file is a YAML mapping from main.py's flag names to values (see options.values_from_mapping);
flags given on the command line override the file.
"""
from __future__ import annotations

from pathlib import Path

import click

from ..errors import InputError
from .options import values_from_mapping


def read_yaml(path: Path, what: str):
    """A YAML file's content; one-line InputError when it cannot be read or parsed. PyYAML is imported
    here: a run without an experiment file need not (about 0.02 s of its start)."""
    import yaml

    from . import strict_yaml
    try:
        with open(path, encoding="utf-8") as handle:
            return strict_yaml.load(handle.read())
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{what} {path}: {getattr(err, 'strerror', None) or err}") from None
    except yaml.YAMLError as err:
        raise InputError(f"{what} {path}: not valid YAML ({str(err).splitlines()[0]})") from None


def load_config(path: Path) -> dict:
    """Field name -> value for every key of an experiment file (an empty file is refused)."""
    data = read_yaml(path, "--config")
    if data is None:
        raise InputError(f"--config {path}: the file is empty; write flag names and values, e.g. npu_num: 4")
    return values_from_mapping(data, f"--config {path}")


def config_callback(ctx: click.Context, param: click.Parameter, value) -> None:
    """Eager --config: the file's values become the defaults, so command-line flags override them."""
    if value is None:
        return
    try:
        values = load_config(Path(value))
    except InputError as err:
        click.echo(f"error: {err}", err=True)
        ctx.exit(err.exit_code)
    ctx.default_map = {**(ctx.default_map or {}), **values}


CONFIG_OPTION = click.Option(["--config"], type=click.Path(dir_okay=False), is_eager=True, expose_value=False,
                             callback=config_callback,
                             help="YAML file of flag values (keys: flag names without dashes); "
                                  "command-line flags override it.")
