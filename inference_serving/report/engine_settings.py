"""A measured run's vLLM engine settings (meta.json's `engine_kwargs`, vLLM's EngineArgs names) as
simulator flags, and the settings the simulator cannot model.

Taken from meta.json: tensor_parallel_size (GPUs), max_num_seqs, max_num_batched_tokens,
gpu_memory_utilization, max_model_len, block_size, enable_prefix_caching, dtype and quantization
(--fp), kv_cache_dtype, and the KV block count the engine ended with (`kv_cache.num_gpu_blocks`,
else `num_gpu_blocks_override`). Absent or null settings take vLLM 0.19's defaults. A setting is
named as not modelled when the simulator cannot follow its value: data or pipeline parallelism
(expert parallelism over the tensor-parallel group is taken: config/vllm_parallel.py), a KV-cache
precision other than the weights', prefix caching without token
ids in the workload, and any key not known here.
"""
from __future__ import annotations

from ..config.options import values_from_mapping
from ..config.vllm_parallel import parallel_flags

# vLLM 0.19's defaults where meta.json leaves a setting out: gpu_memory_utilization and block size
# (vllm/config/cache.py; 16 on CUDA) ...
DEFAULTS = {"gpu_memory_utilization": 0.9, "block_size": 16}
# ... and the scheduler limits of its OpenAI server on GPUs under 70 GiB (vllm/engine/arg_utils.py,
# `get_batch_defaults`); vLLM picks others on larger GPUs and in other usage contexts, so these are
# assumptions, named in the output when used.
ASSUMED = {"max_num_seqs": 256, "max_num_batched_tokens": 2048}

# Settings without an effect on timing.
NO_TIMING_EFFECT = frozenset({"model", "tokenizer", "revision", "tokenizer_revision", "seed", "trust_remote_code",
                              "download_dir", "served_model_name", "disable_log_stats", "disable_log_requests",
                              "enable_log_requests", "load_format", "tokenizer_mode"})

# Settings the simulator models at one value only: vLLM's default.
DEFAULT_ONLY = {"pipeline_parallel_size": 1,
                "enable_chunked_prefill": True, "enforce_eager": False, "speculative_config": None,
                "cpu_offload_gb": 0}

# dtype -> bits of weights and activations ("auto": the checkpoint's 16-bit dtype)
DTYPE_BITS = {"auto": 16, "bfloat16": 16, "float16": 16, "half": 16, "float32": 32, "float": 32}

TAKEN = frozenset({"tensor_parallel_size", "max_num_seqs", "max_num_batched_tokens", "gpu_memory_utilization",
                   "max_model_len", "block_size", "enable_prefix_caching", "dtype", "quantization",
                   "kv_cache_dtype", "num_gpu_blocks_override", "enable_expert_parallel",
                   "data_parallel_size"})


def _value(engine: dict, key: str):
    value = engine.get(key)
    return {**DEFAULTS, **ASSUMED}.get(key) if value is None else value


def _precision(engine: dict) -> tuple[str, list[str]]:
    """--fp from dtype and quantization (fp8: 8 bits), and what of them is not modelled (the
    simulator keeps weights, activations and KV cache in one precision)."""
    dtype, quantization = _value(engine, "dtype") or "auto", engine.get("quantization")
    kv_dtype = _value(engine, "kv_cache_dtype") or "auto"
    skipped = [] if dtype in DTYPE_BITS else [f"dtype={dtype}"]
    if quantization not in (None, "fp8"):
        skipped.append(f"quantization={quantization}")
    bits = 8 if quantization == "fp8" else DTYPE_BITS.get(dtype, 16)
    kv_bits = DTYPE_BITS.get(dtype, 16) if kv_dtype == "auto" else 8 if str(kv_dtype).startswith("fp8") else None
    if kv_bits != bits:
        skipped.append(f"kv_cache_dtype={kv_dtype}")
    return str(bits), skipped


def _unmodelled(engine: dict, has_token_ids: bool) -> list[str]:
    skipped = [f"{key}={engine[key]}" for key, default in DEFAULT_ONLY.items()
               if engine.get(key) is not None and engine[key] != default]
    skipped += [f"{key}={value}" for key, value in engine.items()
                if key not in TAKEN and key not in DEFAULT_ONLY and key not in NO_TIMING_EFFECT]
    if engine.get("enable_prefix_caching") is not False and not has_token_ids:
        skipped.append("enable_prefix_caching=True (the workload has no token ids)")
    skipped += [f"{key} absent (assumed {value})" for key, value in ASSUMED.items() if engine.get(key) is None]
    return skipped


def run_settings(meta: dict, has_token_ids: bool) -> tuple[dict, list[str]]:
    """RunConfig fields from meta.json, and the settings named as not modelled."""
    engine = meta.get("engine_kwargs", {})
    fp, skipped = _precision(engine)
    recorded = (meta.get("kv_cache") or {}).get("num_gpu_blocks") or engine.get("num_gpu_blocks_override")
    fields = {name: _value(engine, name) for name in (*DEFAULTS, *ASSUMED)}
    fields.update(model_name=engine.get("model") or meta.get("model"), fp=fp, num_gpu_blocks=recorded,
                  npu_num=(_value(engine, "tensor_parallel_size") or 1) * (_value(engine, "data_parallel_size") or 1),
                  max_model_len=engine.get("max_model_len"),
                  no_prefix_caching=engine.get("enable_prefix_caching") is False, **parallel_flags(engine))
    return fields, _unmodelled(engine, has_token_ids) + skipped


# RunConfig field -> the meta.json key it comes from, for messages about a bad value
SOURCE_KEYS = {"model_name": "model", "npu_num": "tensor_parallel_size", "dp": "data_parallel_size", "fp": "dtype",
               "num_gpu_blocks": "kv_cache.num_gpu_blocks", "no_prefix_caching": "enable_prefix_caching"}


def checked_settings(settings: dict, path) -> dict:
    """The settings checked with the types of the flags they set, a bad one named by its meta.json key."""
    checked = {}
    for name, value in settings.items():
        if value is not None:
            value = values_from_mapping({name: value}, f"{path}: '{SOURCE_KEYS.get(name, name)}'")[name]
        checked[name] = value
    return checked


def kv_blocks_line(used: int, derived: int, recorded: int | None) -> str:
    """The block count the run used, beside vLLM 0.19's accounting (serving/kv/sizing.py) and the
    count the measured engine recorded."""
    measured = ("absent (meta.json has no kv_cache.num_gpu_blocks)" if recorded is None
                else f"{recorded} (derived {(derived - recorded) / recorded * 100:+.2f} %)")
    return f"KV blocks per GPU: {used} used; derived {derived}; measured {measured}"


def unmodelled_line(skipped: list[str]) -> str:
    return f"not modelled: {', '.join(skipped) if skipped else 'none'}"
