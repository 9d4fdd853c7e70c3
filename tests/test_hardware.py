"""Hardware files: loading by name or path, checking every field, defaults of the system flags."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from inference_serving.errors import InputError
from inference_serving.inputs import hardware_file
from inference_serving.inputs.hardware import known_hardware, load_hardware, read_hardware_file
from inference_serving.config.run_config import RunConfig
from inference_serving.perf.provider import build_provider
from inference_serving.simulate import run_hardware, simulate
from inference_serving.inputs.model import load_model
from inference_serving.perf.aiconfigurator_systems import SYSTEMS_DIR, hardware_spec, supported_hardware
from inference_serving.perf.csv_provider import CsvProvider
from inference_serving.perf.npu import NpuProvider

REPO = Path(__file__).resolve().parent.parent
DATA = REPO / "tests" / "data"
TINY = str(DATA / "tiny_model.json")

NPU_KEYS = """provider: npu
array_rows: 128
array_cols: 128
clock_ghz: 1.0
memory_gib: 40
memory_bw_gbps: 936
link_bw_gbps: 64
"""



def build_perf_model(config: RunConfig, model):
    """The run's provider and the hardware's flag defaults, as a run builds them."""
    hardware = run_hardware(config)
    return build_provider(model, hardware, config.fp_bits), hardware.defaults()

def request(tmp_path: Path, **overrides) -> RunConfig:
    dataset = tmp_path / "requests.tsv"
    dataset.write_text("input_toks\toutput_toks\tarrival_time_ns\n5\t3\t0\n9\t2\t100\n")
    flags = dict(model_name=TINY, hardware="NPU", npu_num=1, max_batch=0, npu_group=1, npu_mem=None,
                 local_bw=None, remote_bw=1e6, link_bw=None, link_latency=None, fp="16", block_size=4,
                 dataset=str(dataset), output=None, gen=False, req_num=100, log_interval=0.5, verbose=False)
    flags.update(overrides)
    return RunConfig(**flags)


def test_every_supported_gpu_has_a_file_matching_the_package():
    names = known_hardware()
    assert "NPU" in names
    for gpu in supported_hardware():
        assert gpu in names
        hw, spec = load_hardware(gpu), hardware_spec(gpu)
        assert hw.provider == "aiconfigurator" and hw.system == spec.system
        assert hw.memory_gib == pytest.approx(spec.memory_gb)
        assert hw.memory_bw_gbps == pytest.approx(spec.memory_bw_gbps)
        assert hw.link_bw_gbps == pytest.approx(spec.link_bw_gbps)
        assert hw.peak_tflops["bf16"] == pytest.approx(spec.bf16_tflops, rel=1e-3)
        if hw.compute_capability is not None:  # the files that state one take it from the package's sm_version
            system = yaml.safe_load((SYSTEMS_DIR / f"{spec.system}.yaml").read_text())
            assert round(hw.compute_capability * 10) == system["gpu"]["sm_version"]


def test_names_are_case_insensitive_and_package_names_still_work():
    assert load_hardware("npu").name == "NPU"
    assert load_hardware("h100").name == "H100"
    assert load_hardware("h100_sxm").system == "h100_sxm"


def test_yaml_path_with_defaults(tmp_path):
    path = tmp_path / "my_npu.yaml"
    path.write_text(NPU_KEYS)
    hw = load_hardware(str(path))
    assert (hw.name, hw.vector_lanes, hw.link_latency_ns, hw.engine_overhead_ns) == ("my_npu", 128, 0, 0)
    assert hw.defaults() == {"npu_mem": 40, "local_bw": 936, "link_bw": 64, "link_latency": 0,
                             "engine_overhead_ns": 0}


def test_values_checked_once_come_from_the_answer_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    path = tmp_path / "my_npu.yaml"
    path.write_text(NPU_KEYS)
    checked = read_hardware_file(path)
    monkeypatch.setattr(hardware_file, "checked_fields", None)  # a second check would fail
    assert read_hardware_file(path) == checked
    path.write_text(NPU_KEYS + "link_latency_ns: 5\n")
    with pytest.raises(TypeError):  # other values: checked again
        read_hardware_file(path)


@pytest.mark.parametrize("text, words", [
    (NPU_KEYS + "clock_mhz: 1000\n", ["unknown key 'clock_mhz'"]),
    (NPU_KEYS.replace("array_rows: 128\n", ""), ["missing 'array_rows'", "provider npu"]),
    (NPU_KEYS.replace("clock_ghz: 1.0", "clock_ghz: fast"), ["'clock_ghz'", "valid number", "'fast'"]),
    (NPU_KEYS.replace("array_cols: 128", "array_cols: 12.5"), ["'array_cols'", "integer"]),
    (NPU_KEYS.replace("memory_gib: 40", "memory_gib: -1"), ["'memory_gib'"]),
    (NPU_KEYS + "link_latency_ns: -5\n", ["'link_latency_ns'", "greater than or equal to 0"]),
    (NPU_KEYS.replace("provider: npu", "provider: gpu"), ["'provider'", "aiconfigurator, scaled, npu, csv"]),
    (NPU_KEYS.replace("provider: npu", "provider: csv"), ["missing 'csv'"]),
    (NPU_KEYS.replace("provider: npu", "provider: csv") + "csv: nowhere.csv\n", ["'csv'", "nowhere.csv"]),
    (NPU_KEYS + "peak_tflops: 5\n", ["'peak_tflops'"]),
    (NPU_KEYS + "peak_tflops: {bf16: 0}\n", ["'peak_tflops.bf16'"]),
    ("- a\n- list\n", ["mapping"]),
    ("provider: [npu\n", ["not valid YAML"]),
])
def test_bad_files_name_file_and_key(tmp_path, text, words):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(InputError) as err:
        read_hardware_file(path)
    message = str(err.value)
    assert str(path) in message and "\n" not in message
    for word in words:
        assert word in message


def test_unknown_name_lists_known_names():
    with pytest.raises(InputError, match="unknown hardware 'NOPE'; known: .*H100.*NPU"):
        load_hardware("NOPE")
    with pytest.raises(InputError, match="no such file"):
        load_hardware("missing/hw.yaml")


def test_providers_and_overrides(tmp_path):
    model = load_model(TINY)
    perf, defaults = build_perf_model(request(tmp_path), model)
    assert isinstance(perf, NpuProvider) and defaults["local_bw"] == 936
    # --perf-model CSV overrides the file's provider; a hardware name without a file is accepted then
    perf, defaults = build_perf_model(request(tmp_path, hardware="TINY", perf_model=str(DATA / "tiny_perf.csv")),
                                      model)
    assert isinstance(perf, CsvProvider) and defaults["npu_mem"] == 40.0
    # provider csv in a hardware file: the path is relative to the file, rows matched by its name
    (tmp_path / "tiny.yaml").write_text(NPU_KEYS.replace("provider: npu", "provider: csv")
                                        + f"name: TINY\ncsv: {DATA / 'tiny_perf.csv'}\nengine_overhead_ns: 250\n")
    perf, defaults = build_perf_model(request(tmp_path, hardware=str(tmp_path / "tiny.yaml")), model)
    assert isinstance(perf, CsvProvider) and perf.latency_ns("q_proj", 1) == 110
    assert defaults["engine_overhead_ns"] == 250
    # --perf-model npu needs the array: a GPU file has none
    with pytest.raises(InputError, match="missing .array_rows. .required for provider npu"):
        build_perf_model(request(tmp_path, hardware="H100", perf_model="npu"), model)


def test_npu_run_end_to_end_uses_file_defaults(tmp_path):
    lines: list[str] = []
    metrics = simulate(request(tmp_path, output=tmp_path / "out.csv"), log=lines.append)
    assert len(metrics.finished) == 2 and "x NPU" in lines[0]
    slow = simulate(request(tmp_path, link_latency=None, local_bw=None, hardware=str(_slow_npu(tmp_path))),
                    log=lambda _: None)
    # a 10x slower clock: the same requests finish later
    assert max(s.end_ns for s in slow.finished) > 5 * max(s.end_ns for s in metrics.finished)


def _slow_npu(tmp_path: Path) -> Path:
    path = tmp_path / "slow.yaml"
    path.write_text(NPU_KEYS.replace("clock_ghz: 1.0", "clock_ghz: 0.1") + "link_latency_ns: 100\n")
    return path


def test_cli_npu_and_bad_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(NPU_KEYS.replace("memory_bw_gbps: 936", "memory_bw_gbps: 0"))
    cmd = [sys.executable, "main.py", "--model_name", TINY, "--npu_num", "1", "--req_num", "2",
           "--dataset", "dataset/example_10.tsv"]
    done = subprocess.run(cmd + ["--hardware", str(bad)], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "memory_bw_gbps" in done.stderr and str(bad) in done.stderr
    done = subprocess.run(cmd + ["--hardware", "NPU", "--npu_mem", "1"], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert "x NPU" in done.stdout and "requests finished:        2" in done.stdout
