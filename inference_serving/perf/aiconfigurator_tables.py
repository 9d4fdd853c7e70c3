"""aiconfigurator-core's measurement databases and engines, loaded only when an answer is not cached.

Loading a system's database (its version slots, the tables and their attention-lane densities) takes
about a second; the provider asks for it on the first question its answer cache (answer_cache.py)
cannot answer.
"""
from __future__ import annotations

import logging
from functools import lru_cache

from aiconfigurator_core.sdk import attention_lanes, perf_database
from aiconfigurator_core.sdk.engine import EngineHandle

from ..errors import InputError

# vLLM first: the serving system we validate against.
BACKEND_PREFERENCE = ("vllm", "sglang", "trtllm")


def _not_package_notice(record: logging.LogRecord) -> bool:
    """Drop two one-off package notices: MLA/DSA fallback tables (no layer here reads them) and
    attention-lane defaults missing for a GPU (the engine then takes the table's first lane)."""
    return not str(record.msg).startswith(("Loading low-fidelity fallback rows", "resolve_attention_lane_order:"))


logging.getLogger(perf_database.__name__).addFilter(_not_package_notice)
logging.getLogger(attention_lanes.__name__).addFilter(_not_package_notice)


@lru_cache(maxsize=None)
def load_database(system: str) -> perf_database.PerfDatabase:
    """The measurement database of the first backend in BACKEND_PREFERENCE that has one."""
    for backend in BACKEND_PREFERENCE:
        if perf_database.get_version_slots(system, backend) is None:
            continue
        database = perf_database.get_database(system, backend, "current")
        if database is not None:
            return database
    raise InputError(f"aiconfigurator-core has no measurement table for system '{system}'")


@lru_cache(maxsize=None)
def engine_for(system: str) -> EngineHandle:
    """A model-less engine bound to the system's tables; evaluates ad-hoc operation lists."""
    database = load_database(system)
    return EngineHandle.for_database(database, systems_path=database.systems_root)
