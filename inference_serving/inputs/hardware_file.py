"""The check of a hardware file's values: `HardwareFile`, pydantic's model of the `Hardware` dataclass
(hardware.py: the same fields, types and defaults) with the constraints in each field's metadata.
hardware.py imports this module for values it has not checked before, so that a warm start does not
import pydantic, and passes the dataclass in (this module does not import hardware.py)."""
from __future__ import annotations

from dataclasses import MISSING, Field as DataclassField, fields
from functools import lru_cache
from pathlib import Path
from typing import get_type_hints

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from ..errors import InputError

MAX_TFLOPS = 1e9  # a dense peak, TFLOP/s


class _Checks(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    @model_validator(mode="after")
    def _peaks_positive(self) -> "_Checks":
        for dtype, value in self.peak_tflops.items():
            if not 0 < value <= MAX_TFLOPS:
                raise ValueError(f"'peak_tflops.{dtype}' must be a number in (0, {MAX_TFLOPS:g}], got {value!r}")
        return self


def _field(f: DataclassField):
    """The pydantic Field of a dataclass field: its default (none: required) and its constraints."""
    if f.default_factory is not MISSING:
        return Field(default_factory=f.default_factory, **f.metadata)
    if f.default is not MISSING:
        return Field(f.default, **f.metadata)
    return Field(**f.metadata)


@lru_cache(maxsize=None)
def hardware_file(hardware: type) -> type[BaseModel]:
    """HardwareFile: the model of the `hardware` dataclass's fields."""
    hints = get_type_hints(hardware)
    return create_model("HardwareFile", __base__=_Checks,
                        **{f.name: (hints[f.name], _field(f)) for f in fields(hardware)})


def checked_fields(hardware: type, path: Path, values: dict) -> dict:
    """Every field of the `hardware` of a file's `values` (the file's path is its source), as HardwareFile
    reads them; the first bad value is an InputError naming the file and the key."""
    try:
        return dict(hardware_file(hardware)(source=str(path), **values))
    except ValidationError as err:
        raise InputError(_validation_message(hardware, path, err)) from None


def _validation_message(hardware: type, path: Path, err: ValidationError) -> str:
    first = err.errors()[0]
    key = ".".join(str(part) for part in first["loc"])
    if first["type"] == "extra_forbidden":
        known = ", ".join(sorted(f.name for f in fields(hardware) if f.name != "source"))
        return f"{path}: unknown key '{key}'; known keys: {known}"
    message = first["msg"].removeprefix("Value error, ")
    if not key:
        return f"{path}: {message}"
    return f"{path}: '{key}' {message[0].lower()}{message[1:]}, got {first.get('input')!r}"
