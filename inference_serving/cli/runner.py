"""Many simulations at once, for sweeps and the SLO search: serially, in worker processes, or as
tasks on a Ray cluster; results come back as each configuration finishes.

A configuration that fails is a result with its one-line error, not the end of the batch. An
interrupt (Ctrl-C, or SIGTERM in the driver) stops the workers with SIGTERM, which makes each of
them unwind: its engine is stopped and its work folder removed, as a single run does.
"""
from __future__ import annotations

import importlib.util
import os
import signal
from collections.abc import Iterator
from contextlib import closing
from multiprocessing import get_context

from ..config.options import config_from_mapping
from ..errors import FAILURE, InputError, SimError
from ..paths import REPO_ROOT
from .command import TERMINATED


def run_config(flags: dict, cwd: str | None = None) -> dict:
    """One simulation; its summary metrics, or {"error": reason, "exit_code": status}. Raises only for
    interrupts."""
    if cwd and os.path.isdir(cwd):
        os.chdir(cwd)
    from ..simulate import simulate
    try:
        metrics = simulate(config_from_mapping({**flags, "quiet": True}), log=lambda line: None)
        return {**metrics.summary(metrics.end_ns), "error": ""}
    except SimError as err:
        return {"error": str(err), "exit_code": err.exit_code}
    except Exception as err:  # noqa: BLE001 - a failed configuration is a row, not the end of the sweep
        message = str(err).strip().splitlines()
        return {"error": f"internal: {type(err).__name__}: {message[0] if message else ''}", "exit_code": FAILURE}


def _exit_on_sigterm(signum, frame) -> None:
    raise SystemExit(TERMINATED)  # unwinds like an exception, and ends the worker without a traceback


def _worker_signals() -> None:
    """A worker leaves Ctrl-C to the driver, which stops it with SIGTERM."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)


def _indexed(task: tuple[int, dict, str]) -> tuple[int, dict]:
    index, flags, cwd = task
    return index, run_config(flags, cwd)


def completed(flag_sets: list[dict], jobs: int = 1, ray_address: str | None = None) -> Iterator[tuple[int, dict]]:
    """(index, result) of every flag set, as each finishes (in order when serial)."""
    cwd = os.getcwd()
    if ray_address:
        yield from enumerate(_run_ray(flag_sets, ray_address, cwd))
    elif jobs <= 1 or len(flag_sets) <= 1:
        for index, flags in enumerate(flag_sets):
            yield index, run_config(flags)
    else:
        yield from _run_pool(flag_sets, min(jobs, len(flag_sets)), cwd)


def _run_pool(flag_sets: list[dict], jobs: int, cwd: str) -> Iterator[tuple[int, dict]]:
    pool = get_context("spawn").Pool(jobs, initializer=_worker_signals)
    try:
        yield from pool.imap_unordered(_indexed, [(i, flags, cwd) for i, flags in enumerate(flag_sets)])
        pool.close()
    except BaseException:  # an interrupt, or the consumer stopped early: stop the workers
        pool.terminate()
        raise
    finally:
        pool.join()


def run_all(flag_sets: list[dict], jobs: int = 1, ray_address: str | None = None) -> list[dict]:
    """run_config for every flag set, in order."""
    results: dict[int, dict] = {}
    with closing(completed(flag_sets, jobs, ray_address)) as finished:
        for index, result in finished:
            results[index] = result
    return [results[i] for i in range(len(flag_sets))]


def check_ray(address: str | None) -> None:
    """--ray needs Ray installed; refused before any work starts."""
    if address and importlib.util.find_spec("ray") is None:
        raise InputError("--ray needs Ray: .venv/bin/pip install ray")


def _run_ray(flag_sets: list[dict], address: str, cwd: str) -> list[dict]:
    check_ray(address)
    import ray
    started = not ray.is_initialized()
    if started:
        env = {"env_vars": {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                                     os.environ.get("PYTHONPATH")]))}}
        ray.init(address=None if address == "local" else address, runtime_env=env, log_to_driver=False,
                 include_dashboard=False)
    try:
        task = ray.remote(num_cpus=1)(run_config)
        return ray.get([task.remote(flags, cwd) for flags in flag_sets])
    finally:
        if started:
            ray.shutdown()
