"""Many simulations at once, for sweeps and the SLO search: serially, in worker processes, or as
tasks on a Ray cluster; results come back as each configuration finishes.

Ray (`--ray ADDRESS`, the optional extra `ray`): `local` starts a private cluster on this machine for
the batch (its files in a temporary folder that is removed afterwards, usage statistics off, a
random token instead of one saved under ~/.ray) and stops it; `auto`, `HOST:PORT` and
`ray://HOST:PORT` join an existing one. Before any work a named address is tried with a plain TCP
connection of CONNECT_TIMEOUT_S seconds, then the cluster is joined once in a child process that is
stopped after JOIN_TIMEOUT_S: an unreachable or wrong address is one line, not Ray's minutes of retries.
Each configuration is a one-CPU task running run_config in the driver's working directory, with the
repository root on PYTHONPATH: the nodes must have the repository (engine build included) and its
Python environment at the same paths.

A configuration that fails is a result with its one-line error, not the end of the batch. An
interrupt (Ctrl-C, or SIGTERM in the driver) stops the workers with SIGTERM, which makes each of
them unwind: its engine is stopped and its work folder removed, as a single run does.
"""
from __future__ import annotations

import importlib.util
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import closing, contextmanager
from multiprocessing import get_context

from ..backend.process import usable_cores
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
        yield from _run_ray(_one_core_each(flag_sets), ray_address, cwd)
    elif jobs <= 1 or len(flag_sets) <= 1:
        for index, flags in enumerate(flag_sets):
            yield index, run_config(flags)
    else:
        jobs = min(jobs, len(flag_sets))
        yield from _run_pool(flag_sets if 2 * jobs <= usable_cores() else _one_core_each(flag_sets), jobs, cwd)


def _one_core_each(flag_sets: list[dict]) -> list[dict]:
    """Runs that share the cores (more workers than half the cores, or Ray tasks of one CPU each) do not
    poll for their engine (--engine-spin 0: a polling run holds two cores), unless a flag set says so."""
    return [flags if any(str(key).replace("-", "_") == "engine_spin" for key in flags) else {"engine_spin": 0, **flags}
            for flags in flag_sets]


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


CONNECT_TIMEOUT_S = 10  # a named Ray address must accept a TCP connection within this
LOCAL_OBJECT_STORE_BYTES = 100 * 1024 * 1024  # results are a few numbers; Ray's floor is 75 MiB
TOKEN_NOTICE_LOGGER = "ray._private.authentication.authentication_token_setup"
INSTALL_RAY = ".venv/bin/pip install -e '.[ray]' (bash setup.sh installs it)"


def _host_port(address: str) -> tuple[str, int] | None:
    """(host, port) of HOST:PORT or ray://HOST:PORT, None for local and auto; InputError otherwise."""
    if address in ("local", "auto"):
        return None
    rest = address[len("ray://"):] if address.startswith("ray://") else address
    host, sep, port = rest.rpartition(":")
    host = host.strip("[]")  # [::1]:6379
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in rest:
        raise InputError(f"--ray {address}: expected local, auto, HOST:PORT (a node of the cluster) or "
                         f"ray://HOST:PORT (the head's client server, port 10001)")
    return host, int(port)


def _own_addresses(host: str) -> list[str]:
    """Where Ray will look for HOST: itself, and for a loopback name also this machine's own address
    (Ray replaces localhost by it, and a head started by `ray start` listens there)."""
    if host not in ("localhost", "::1") and not host.startswith("127."):
        return [host]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # no packet is sent: this only asks for the outgoing interface
            own = probe.getsockname()[0]
        except OSError:
            own = None
    return [host] + ([own] if own and own != host else [])


def _probe(address: str, host: str, port: int) -> None:
    reason = ""
    for candidate in _own_addresses(host):
        try:
            with socket.create_connection((candidate, port), timeout=CONNECT_TIMEOUT_S):
                return
        except OSError as err:
            reason = reason or (f"no answer within {CONNECT_TIMEOUT_S} s" if isinstance(err, TimeoutError) else
                                (err.strerror or str(err) or type(err).__name__))
    raise InputError(f"--ray {address}: no Ray cluster answers at {host}:{port} ({reason})")


# joins the cluster in a child process, so that Ray's own retries (minutes, when something that is not
# Ray listens there) end at JOIN_TIMEOUT_S and its log lines are not the user's
JOIN_CHECK = "import sys, ray; ray.init(address=sys.argv[1], log_to_driver=False, logging_level=40); ray.shutdown()"
JOIN_TIMEOUT_S = 60


def _try_join(address: str) -> None:
    try:
        done = subprocess.run([sys.executable, "-c", JOIN_CHECK, address], capture_output=True, text=True,
                              timeout=JOIN_TIMEOUT_S, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise InputError(f"--ray {address}: no Ray cluster answered within {JOIN_TIMEOUT_S} s") from None
    if done.returncode != 0:
        lines = [line.strip() for line in done.stderr.splitlines() if line.strip()]
        raise InputError(f"--ray {address}: cannot join the Ray cluster: "
                         f"{lines[-1] if lines else f'exit status {done.returncode}'}")


_CHECKED: set[str] = set()  # addresses check_ray passed, not checked again by the batch that follows


def check_ray(address: str | None) -> None:
    """--ray needs Ray installed, an address of a known form, and a named address that answers;
    refused before any work starts."""
    if not address:
        return
    if importlib.util.find_spec("ray") is None:
        raise InputError(f"--ray needs Ray: {INSTALL_RAY}")
    named = _host_port(address)
    if address.startswith("ray://") and importlib.util.find_spec("grpc") is None:
        raise InputError(f"--ray {address}: the Ray client needs ray[client]: {INSTALL_RAY}")
    if named is None and address == "auto" and os.environ.get("RAY_ADDRESS"):
        address = os.environ["RAY_ADDRESS"]
        named = _host_port(address) if address not in ("local", "auto") else None
    if named is not None:
        _probe(address, *named)
    if address != "local":
        _try_join(address)
    _CHECKED.add(address)


@contextmanager
def _environment(values: dict[str, str], also_restored: tuple[str, ...] = ()):
    """os.environ with `values` added for the block (Ray's processes inherit them), then as it was,
    with the variables `also_restored` (set by Ray during the block) too."""
    saved = {key: os.environ.get(key) for key in (*values, *also_restored)}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextmanager
def _quiet(logger_name: str | None):
    """A logger silenced below ERROR for the block (Ray's notice that the token we gave is in use)."""
    logger = logging.getLogger(logger_name) if logger_name else None
    level = logger.level if logger else None
    if logger:
        logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        if logger:
            logger.setLevel(level)


@contextmanager
def _ray_session(address: str):
    """ray, initialised for this batch (unless the caller already did) and shut down after it."""
    if address in _CHECKED:
        _CHECKED.discard(address)
    else:
        check_ray(address)
        _CHECKED.discard(address)
    import ray
    if ray.is_initialized():
        yield ray
        return
    local = address == "local"
    temp_dir = tempfile.mkdtemp(prefix="llmss-ray-") if local else None
    # a private cluster: no usage statistics sent out; a token of its own (Ray turns token
    # authentication on when it finds one), not one generated and saved under ~/.ray
    env = {"RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_TOKEN": secrets.token_hex(32)} if local else {}
    runtime_env = {"env_vars": {"PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT),
                                                                         os.environ.get("PYTHONPATH")]))}}
    options = {"object_store_memory": LOCAL_OBJECT_STORE_BYTES, "_temp_dir": temp_dir} if local else {}
    sigterm = signal.getsignal(signal.SIGTERM)  # ray.init puts its own in place: keep the command's
    try:
        with _environment(env, ("RAY_AUTH_MODE",)), _quiet(TOKEN_NOTICE_LOGGER if local else None):
            try:
                ray.init(address=address, runtime_env=runtime_env, log_to_driver=False, include_dashboard=False,
                         logging_level=logging.WARNING, **options)
            except (KeyboardInterrupt, SystemExit):
                raise
            except Exception as err:  # noqa: BLE001 - Ray's many ways of not connecting: one line
                message = " ".join(str(err).split()) or type(err).__name__
                raise InputError(f"--ray {address}: cannot start or join the Ray cluster: {message}") from None
            finally:
                if threading.current_thread() is threading.main_thread() and sigterm is not None:
                    signal.signal(signal.SIGTERM, sigterm)
            try:
                yield ray
            finally:
                ray.shutdown()
    finally:
        if temp_dir:
            shutil.rmtree(temp_dir, ignore_errors=True)


def _run_ray(flag_sets: list[dict], address: str, cwd: str) -> Iterator[tuple[int, dict]]:
    """(index, result) as each task finishes; an interrupt cancels the tasks still running."""
    with _ray_session(address) as ray:
        task = ray.remote(num_cpus=1)(run_config)
        pending = {task.remote(flags, cwd): index for index, flags in enumerate(flag_sets)}
        try:
            while pending:
                done, _ = ray.wait(list(pending), num_returns=1)
                for ref in done:
                    index = pending.pop(ref)
                    try:
                        result = ray.get(ref)
                    except ray.exceptions.RayError as err:  # the task's worker died (run_config catches the rest)
                        lines = str(err).strip().splitlines()
                        result = {"error": f"ray: {type(err).__name__}: {lines[0] if lines else ''}",
                                  "exit_code": FAILURE}
                    yield index, result
        finally:
            for ref in pending:  # an interrupt, or the consumer stopped early
                ray.cancel(ref)
