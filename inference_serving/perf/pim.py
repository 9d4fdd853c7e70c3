"""Decode attention on processing-in-memory units (`--pim`, NeuPIMs / AttAcc style).

The device memory's PIM units (a bank-level processing unit per pair of DRAM banks, as in Samsung's
HBM-PIM) read the KV cache at the memory's internal bandwidth and compute both GEMVs of a decode
step's attention there; the NPU sends the query and receives the output over the memory's external
bus. For one request of this shard (Hq query heads, Hk KV heads of size d, L keys, c bytes per KV
element, e per activation element):
  KV bytes  2 L Hk d c, streamed once at the PIM bandwidth P (`pim_bw_gbps`: bytes / GB/s = ns)
  FLOPs     4 Hq L d (QK^T and PV, 2 per multiply-add) at the PIM peak F (`pim_tflops`)
  transfer  the query in and the output back, 2 Hq d e bytes at the external bandwidth B
  time      max(KV bytes / P, FLOPs / F) + transfer
The softmax of the scores runs beside the stream (AttAcc puts it in the buffer die's logic) and is
not timed; prefill attention, a GEMM, stays on the NPU.
"""
from __future__ import annotations

from dataclasses import dataclass

from ..errors import InputError
from ..inputs.hardware import Hardware
from ..inputs.model_config import ModelConfig
from .precision import Precision
from .shard import shard


@dataclass(frozen=True)
class PimModel:
    model: ModelConfig
    precision: Precision
    bandwidth_gbps: float   # internal, all PIM units of one NPU's memory
    tflops: float           # their peak
    external_gbps: float    # the NPU's memory bus

    @classmethod
    def of(cls, model: ModelConfig, hardware: Hardware, precision: Precision, memory_bw_gbps: float) -> "PimModel":
        for key in ("pim_bw_gbps", "pim_tflops"):
            if getattr(hardware, key) is None:
                raise InputError(f"--pim: {hardware.source} has no '{key}' (a hardware file with PIM units: "
                                 f"hardware/NPU-PIM.yaml)")
        return cls(model, precision, hardware.pim_bw_gbps, hardware.pim_tflops, memory_bw_gbps)

    def attention_ns(self, keys: int, tp: int) -> int:
        """One decode token of one request against `keys` keys, this shard's heads."""
        part, d = shard(self.model, tp), self.model.head_dim
        kv_bytes = 2 * keys * part.kv_heads * d * self.precision.kv_bits / 8
        flops = 4 * part.heads * keys * d
        transfer = 2 * part.heads * d * self.precision.fp_bits / 8 / self.external_gbps
        return round(max(kv_bytes / self.bandwidth_gbps, flops / (self.tflops * 1e3)) + transfer)
