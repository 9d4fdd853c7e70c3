"""How well `provider: scaled` reproduces measured GPUs held out of the tables.

    .venv/bin/python bench/scaled_holdout.py [--req-num 100]

For each (held-out GPU, sibling) pair, a hardware file with provider scaled is written from the
held-out GPU's own figures (the package's system YAML, as in hardware/<GPU>.yaml) and the sibling's
name; its operator latencies and a vLLM-mode run of Llama-3.1-8B-Instruct are compared with the
held-out GPU's real tables. Prints markdown tables: scaled / real - 1, in percent.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import click
import yaml

from inference_serving.config.run_config import RunConfig
from inference_serving.inputs.hardware import load_hardware
from inference_serving.inputs.model import load_model
from inference_serving.perf.aiconfigurator import AIConfiguratorProvider
from inference_serving.perf.aiconfigurator_systems import hardware_spec
from inference_serving.perf.scaled import ScaledProvider
from inference_serving.simulate import simulate

REPO = Path(__file__).resolve().parent.parent
MODEL = "meta-llama/Llama-3.1-8B-Instruct"
DATASET = REPO / "dataset" / "share-gpt-req100-rate10.tsv"
PAIRS = [("H200", "H100"), ("RTXPRO6000", "B200"), ("A100", "H100"), ("L40S", "RTXPRO6000")]
GEMM_TOKENS = (1, 64, 1024, 8192)


def scaled_file(held_out: str, sibling: str, folder: Path) -> Path:
    """A provider-scaled hardware file for `held_out` with its datasheet figures."""
    spec, own = hardware_spec(held_out), load_hardware(held_out)
    peaks = {"bf16": spec.bf16_tflops, **({"fp8": spec.fp8_tflops} if spec.fp8_tflops else {})}
    gpu = {key: getattr(own, key) for key in ("sm_count", "compute_capability", "l2_mib") if getattr(own, key)}
    data = {"name": f"{held_out}-from-{sibling}", "provider": "scaled", "sibling": sibling,
            "memory_gib": spec.memory_gb, "memory_bw_gbps": spec.memory_bw_gbps, "link_bw_gbps": spec.link_bw_gbps,
            "engine_overhead_ns": own.engine_overhead_ns, "peak_tflops": peaks, **gpu}
    path = folder / f"{data['name']}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def operator_latencies(perf) -> dict[str, float]:
    """ns of the operators compared: GEMMs at a few token counts, decode and prefill attention."""
    out = {}
    for layer in ("q_proj", "down_proj"):
        for tokens in GEMM_TOKENS:
            out[f"{layer} m={tokens}"] = perf.latency_ns(layer, tokens)
    out["lm_head m=1"] = perf.latency_ns("lm_head", 1)
    for batch, context in ((1, 1024), (32, 2048), (128, 1024)):
        out[f"decode attn {batch}x{context}"] = perf.decode_attention_ns([context - 1] * batch, 1)
    for tokens in (512, 4096):
        out[f"prefill attn {tokens}"] = perf.latency_ns("attn", tokens, 0)
    return out


def serving_means(hardware: str, req_num: int) -> tuple[float, float]:
    """(mean TTFT, mean TPOT) in ms of a vLLM-mode run."""
    req = RunConfig(model_name=MODEL, hardware=hardware, npu_num=1, dataset=str(DATASET), req_num=req_num,
                    scheduler="vllm", quiet=True)
    summary = simulate(req, log=lambda _: None)
    summary = summary.summary(summary.end_ns)
    return summary["ttft_mean_ms"], summary["tpot_mean_ms"]


def percent(scaled: float, real: float) -> str:
    return f"{100 * (scaled / real - 1):+.1f}"


@click.command()
@click.option("--req-num", default=100, show_default=True, help="Requests of the vLLM-mode runs.")
def main(req_num: int) -> None:
    model = load_model(MODEL)
    header = " | ".join(f"{held} from {sibling}" for held, sibling in PAIRS)
    rows: dict[str, list[str]] = {}
    with tempfile.TemporaryDirectory() as folder:
        for held, sibling in PAIRS:
            path = scaled_file(held, sibling, Path(folder))
            real = operator_latencies(AIConfiguratorProvider(model, load_hardware(held), 16))
            scaled = operator_latencies(ScaledProvider(model, load_hardware(str(path)), 16))
            for op in real:
                rows.setdefault(op, []).append(percent(scaled[op], real[op]))
            for name, s, r in zip(("mean TTFT", "mean TPOT"), serving_means(str(path), req_num),
                                  serving_means(held, req_num)):
                rows.setdefault(f"vLLM run, {name}", []).append(f"{percent(s, r)} ({s:.1f} vs {r:.1f} ms)")
    print(f"| operator (Llama-3.1-8B, TP1) | {header} |")
    print("|---" * (len(PAIRS) + 1) + "|")
    for op, cells in rows.items():
        print(f"| {op} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
