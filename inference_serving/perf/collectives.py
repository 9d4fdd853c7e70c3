"""Measured all-reduce times for the engine, from aiconfigurator-core's communication measurements.

For a GPU the package has measured, `collective_table(system, tp)` builds the engine's collective
table (format: astra-sim/README.md, "Measured collective table"): the tensor-parallel ALL_REDUCE of
`tp` GPUs, message size in bytes (bf16: 2 bytes per element) against the measured time in ns.

Which measurement, by the kernel vLLM runs (docs/collectives.md has the rule and its source):

* The package's vLLM table (`comm/vllm/<version>/custom_allreduce_perf`) was collected by calling
  vLLM's own `tensor_model_parallel_all_reduce`, so each size was timed on the kernel vLLM itself
  chose for it (custom all-reduce, torch symmetric memory or NCCL). Where it has the group size, it
  is used for every size, as the SDK serves it: the CUDA-graph rows where the table has them (vLLM
  runs every batch of up to 512 tokens, its largest captured graph by default, in a CUDA graph).
* Without that group size, the rule decides: vLLM 0.19 enables its custom all-reduce for more than
  two GPUs only when they are fully connected by NVLink, and torch symmetric memory needs NVLink
  multicast too; so on a node without NVLink a group of more than two GPUs runs NCCL, and the NCCL
  table (`comm/nccl/<nccl_version>/nccl_perf`, nccl-tests) is used.
* Otherwise there is no measurement of what vLLM would run: no table, the engine keeps the link model.

The tables are the ones of vLLM 0.19 (the release `serving/vllm.py` models) where the system has
them, else those of the perf model's own database (its current vLLM release).

Data-parallel MoE ranks (plan/moe_block.py) gather their tokens before the experts and reduce-scatter
the outputs after them; vLLM runs both with NCCL (its allgather_reducescatter all2all backend, over
the device communicator), so `dp_collectives` takes them from the NCCL table. Its sizes count the
per-rank part in elements (the package's own queries pass per-rank elements for both), so an
ALL_GATHER entry's bytes are the rank's input (the engine's comm_size of an all-gather) and a
REDUCE_SCATTER entry's are `npus` times the rank's output (the engine's: the whole input).
"""
from __future__ import annotations

from importlib.metadata import version
from pathlib import Path

from aiconfigurator_core.sdk import common, perf_database
from aiconfigurator_core.sdk.engine_table_view import fetch_table_view
from aiconfigurator_core.sdk.operations.base import resolve_op_data_path

from .aiconfigurator_systems import MS_TO_NS, load_database

VLLM_VERSION = "0.19.0"  # serving/vllm.py models vLLM's V1 engine as of 0.19
BYTES_PER_ELEMENT = 2    # bf16 activations; the tables count message sizes in elements
# The NCCL table's 16-bit rows ("half", nccl-tests -d half): the same bytes on the wire as bf16.
SIXTEEN_BIT = common.CommQuantMode.half


def comm_database(system: str) -> perf_database.PerfDatabase:
    """The database whose communication tables describe `system`: vLLM 0.19's own rows where the
    system ships a vLLM 0.19 all-reduce table, else the perf model's database."""
    default = load_database(system)
    data_root = Path(default.systems_root) / default.system_spec["data_dir"]
    table = perf_database.PerfDataFilename.custom_allreduce.value
    if not Path(resolve_op_data_path(str(data_root), "vllm", VLLM_VERSION, table)).is_file():
        return default
    return perf_database.get_database(system, "vllm", VLLM_VERSION, allow_unlisted_version=True, shared_layer=False)


def vllm_allreduce_ms(database: perf_database.PerfDatabase, tp: int) -> dict[int, float] | None:
    """vLLM's measured all-reduce of `tp` GPUs (elements -> ms, CUDA-graph rows), or None."""
    view = fetch_table_view(database, "_custom_allreduce_data") or {}
    rows = view.get(SIXTEEN_BIT, {}).get(tp, {}).get("AUTO")  # AUTO: vLLM picks the kernel itself
    return {size: row["latency"] for size, row in rows.items()} if rows else None


def nccl_allreduce_ms(database: perf_database.PerfDatabase, tp: int) -> dict[int, float] | None:
    """NCCL's measured all-reduce of `tp` GPUs (elements -> ms), or None."""
    view = fetch_table_view(database, "_nccl_data") or {}
    rows = view.get(SIXTEEN_BIT, {}).get("all_reduce", {}).get(tp)
    return {size: row["latency"] for size, row in rows.items()} if rows else None


def vllm_runs_nccl(node: dict, tp: int) -> bool:
    """Whether vLLM 0.19 all-reduces `tp` GPUs of this node with NCCL at every size: more than two
    GPUs without NVLink. Source, vLLM 0.19.0 vllm/distributed/device_communicators/:
    custom_all_reduce.py disables the custom all-reduce for more than two GPUs that are not fully
    connected by NVLink, symm_mem.py disables torch symmetric memory without NVLink multicast, and
    cuda_communicator.py then falls through to NCCL. NVLink: the GPUs' `intra_node_bw` exceeds
    `pcie_bw` in the package's system YAML (its PCIe-only nodes list the same figure for both)."""
    return tp > 2 and node["intra_node_bw"] <= node["pcie_bw"]


def allreduce_measurement(system: str, tp: int) -> tuple[dict[int, float], str] | None:
    """The measured all-reduce vLLM would run on `tp` GPUs of `system` and where it comes from."""
    database = comm_database(system)
    measured = vllm_allreduce_ms(database, tp)
    if measured:
        return measured, f"vllm {database.version} custom_allreduce_perf (timed through vLLM's own dispatch)"
    if vllm_runs_nccl(database.system_spec["node"], tp):
        measured = nccl_allreduce_ms(database, tp)
        if measured:
            return measured, f"nccl {database.system_spec['misc']['nccl_version']} nccl_perf all_reduce"
    return None


def table_entry(measured_ms: dict[int, float], tp: int, source: str) -> dict:
    """One ALL_REDUCE entry of the engine's table: bytes and ns, ascending."""
    sizes = sorted(measured_ms)
    return {"type": "ALL_REDUCE", "npus": tp, "bytes": [size * BYTES_PER_ELEMENT for size in sizes],
            "ns": [measured_ms[size] * MS_TO_NS for size in sizes], "source": source}


def dp_collectives(system: str, ranks: int) -> list[dict]:
    """The NCCL all-gather and reduce-scatter of `ranks` GPUs as engine table entries (none measured: [])."""
    database = comm_database(system)
    view = fetch_table_view(database, "_nccl_data") or {}
    entries = []
    for kind, operation, scale in (("ALL_GATHER", "all_gather", 1), ("REDUCE_SCATTER", "reduce_scatter", ranks)):
        rows = view.get(SIXTEEN_BIT, {}).get(operation, {}).get(ranks)
        if rows:
            sizes = sorted(rows)
            entries.append({"type": kind, "npus": ranks, "bytes": [s * BYTES_PER_ELEMENT * scale for s in sizes],
                            "ns": [rows[s]["latency"] * MS_TO_NS for s in sizes],
                            "source": f"nccl {database.system_spec['misc']['nccl_version']} nccl_perf {operation}"})
    return entries


def collective_table(system: str, tp: int, dp: int = 1) -> dict | None:
    """The engine's collective table for a tensor-parallel group of `tp` GPUs of `system` (and the
    MoE collectives of `dp` data-parallel ranks), or None where the package has no measurement of
    what vLLM would run."""
    entries = []
    measurement = allreduce_measurement(system, tp) if tp > 1 else None
    if measurement is not None:
        entries.append(table_entry(*measurement[:1], tp, measurement[1]))
    if dp > 1:
        entries += dp_collectives(system, dp * tp)
    if not entries:
        return None
    return {"source": f"aiconfigurator-core {version('aiconfigurator-core')}, system {system}", "collectives": entries}
