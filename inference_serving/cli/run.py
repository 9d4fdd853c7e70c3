"""`llmservingsim run` (= `python main.py ...`): simulate serving a request trace on a cluster of NPUs."""
from __future__ import annotations

import os

import click

from ..config.experiment import CONFIG_OPTION
from ..config.options import run_options
from ..config.run_config import RunConfig
from . import CONTEXT
from .command import Command


@click.command("run", cls=Command, context_settings=CONTEXT)
def run(**flags) -> None:
    """Simulate LLM inference serving: iteration-level scheduling, paged KV cache, per-iteration
    Chakra graphs run on the analytical system simulator."""
    # numpy's OpenBLAS starts a thread per core when it is loaded (on two cores about 0.09 s of CPU and
    # 0.05 s of a warm start); a run does no BLAS work, so it asks for one (a value already set is kept)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    from ..simulate import simulate
    simulate(RunConfig(**flags))


run.params.append(CONFIG_OPTION)
run_options(run)
