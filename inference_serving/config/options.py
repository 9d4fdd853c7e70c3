"""RunConfig's fields as click options, and flag values from mappings (experiment files, grids).

Keys of a mapping are flag names without the leading dashes; '-' and '_' are interchangeable
(`npu_num`, `perf-model`, `perf_model`). Values are checked with the flag's own click type; types
are not coerced (a list, a mapping, `true`, a quoted number or 4.0 where a count belongs is refused).
"""
from __future__ import annotations

import dataclasses

import click

from ..errors import InputError
from .run_config import RunConfig, run_fields


def _option(f: dataclasses.Field) -> click.Option:
    meta = f.metadata
    opts = meta["opts"] or (f"--{f.name}",)
    kwargs = {"help": meta["help"], "show_default": meta["show_default"] and f.default is not None}
    if meta["is_flag"]:
        return click.Option([*opts, f.name], is_flag=True, default=f.default, help=meta["help"])
    return click.Option([*opts, f.name], default=f.default, type=meta["type"], **kwargs)


def run_options(command: click.Command, names: tuple[str, ...] | None = None) -> click.Command:
    """Adds every RunConfig flag, or those of `names`, to `command` (after its own parameters)."""
    command.params.extend(_option(f) for f in run_fields() if names is None or f.name in names)
    return command


def key_names() -> dict[str, str]:
    """Key as written (flag without dashes, '-' as '_') -> field name."""
    names = {}
    for f in run_fields():
        names[f.name] = f.name
        for opt in f.metadata["opts"]:
            names[opt.lstrip("-").replace("-", "_")] = f.name
    return names


def _convert(f: dataclasses.Field, value, source: str):
    """One value checked against its flag's type."""
    meta = f.metadata
    where = f"{source}: '{f.name}'"
    if value is None:
        default = "" if f.default is None else f" {f.default!r}"
        raise InputError(f"{where} must not be empty (leave the key out for the default{default})")
    if meta["is_flag"]:
        if not isinstance(value, bool):
            raise InputError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(value, (list, dict, bool)):
        raise InputError(f"{where} must be a single value, got {value!r}")
    ctype = meta["type"]
    kind, wanted = _written_kind(ctype)
    if not isinstance(value, wanted):
        raise InputError(f"{where} must be {kind}, got {value!r}")
    if isinstance(value, str) and "\0" in value:
        raise InputError(f"{where} holds a NUL character, which no file name or flag value can hold")
    if ctype is None:
        return value
    if isinstance(ctype, click.Choice):
        value = str(value)
    try:
        return ctype.convert(value, None, None)
    except click.BadParameter as err:
        raise InputError(f"{where}: {err.format_message()}") from None


def _written_kind(ctype) -> tuple[str, tuple[type, ...]]:
    """What a mapping must hold for a flag of this type: numbers as numbers, the rest as text
    (a quoted "4" for a count or 4.0 for a whole number is refused, not converted)."""
    if isinstance(ctype, click.types.IntParamType):
        return "an integer", (int,)
    if isinstance(ctype, click.types.FloatParamType):
        return "a number", (int, float)
    if isinstance(ctype, click.Choice):
        return f"one of {', '.join(map(str, ctype.choices))}", (str, int)
    return "a text", (str,)


def canonical(mapping, source: str) -> dict:
    """Field name -> value as written, for every key of `mapping` (unknown or repeated flags refused)."""
    if not isinstance(mapping, dict):
        raise InputError(f"{source}: expected a mapping of flag names to values")
    names = key_names()
    values, spelled = {}, {}
    for key, value in mapping.items():
        name = names.get(str(key).replace("-", "_"))
        if name is None:
            raise InputError(f"{source}: unknown key '{key}' (keys are main.py's flags without dashes, "
                             f"e.g. npu_num, perf-model)")
        if name in spelled:
            raise InputError(f"{source}: '{key}' and '{spelled[name]}' are the same flag; keep one")
        spelled[name] = key
        values[name] = value
    return values


def values_from_mapping(mapping, source: str) -> dict:
    """Field name -> checked value for every key of `mapping`."""
    fields = {f.name: f for f in run_fields()}
    return {name: _convert(fields[name], value, source) for name, value in canonical(mapping, source).items()}


def config_from_mapping(mapping, source: str = "configuration") -> RunConfig:
    """A RunConfig with the mapping's values and the defaults for the rest."""
    return RunConfig(**values_from_mapping(mapping, source))
