"""Number formats of a run: weights, KV cache and activations (--fp, --weight-dtype, --kv-dtype).

`--fp` gives all three their width (32, 16 or 8 bits per element). `--weight-dtype` (bf16, fp8,
int8) overrides the format of the projection matrices and `--kv-dtype` (fp16, bf16, fp8) that of
the KV cache; without them both follow `--fp`. Embedding, LM head, norms and biases keep the `--fp`
width under a narrower weight format, as FP8 checkpoints do (llm-compressor's FP8 checkpoints,
e.g. RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8, list `lm_head` under `quantization_config.ignore`
and quantise only the Linear layers of the decoder).

  fp8   e4m3, 1 byte; vLLM's W8A8 FP8: the GEMM runs on FP8 tensor cores (peak_tflops.fp8)
  int8  1 byte, weight-only (W8A16): the weights are widened in the kernel and the GEMM runs at
        the bf16 rate; aiconfigurator-core's `int8_wo` mode
  fp16 and bf16 have the same width and the same tensor-core rate (NVIDIA H100 datasheet: 989
  dense TFLOP/s for both), so an fp16 KV cache is priced with the bf16 measurements.
"""
from __future__ import annotations

from dataclasses import dataclass

DTYPE_BITS = {"fp32": 32, "fp16": 16, "bf16": 16, "fp8": 8, "int8": 8}
FP_DTYPES = {32: "fp32", 16: "bf16", 8: "fp8"}  # the format --fp stands for
WEIGHT_DTYPES = ("bf16", "fp8", "int8")
KV_DTYPES = ("fp16", "bf16", "fp8")


@dataclass(frozen=True)
class Precision:
    """`fp_bits` for activations (--fp); `weight_dtype` / `kv_dtype` as given, None = --fp's format."""

    fp_bits: int
    weight_dtype: str | None = None
    kv_dtype: str | None = None

    @property
    def weight(self) -> str:
        return self.weight_dtype or FP_DTYPES[self.fp_bits]

    @property
    def kv(self) -> str:
        return self.kv_dtype or FP_DTYPES[self.fp_bits]

    @property
    def weight_bits(self) -> int:
        return DTYPE_BITS[self.weight]

    @property
    def kv_bits(self) -> int:
        return DTYPE_BITS[self.kv]

    @property
    def weight_flag(self) -> str:
        """The flag that set the weights' format, for messages."""
        return f"--weight-dtype {self.weight_dtype}" if self.weight_dtype else f"--fp {self.fp_bits}"

    @property
    def kv_flag(self) -> str:
        return f"--kv-dtype {self.kv_dtype}" if self.kv_dtype else f"--fp {self.fp_bits}"


def as_precision(value: int | Precision) -> Precision:
    """A Precision from --fp's bits alone, or the Precision itself."""
    return value if isinstance(value, Precision) else Precision(value)
