"""The package command `llmservingsim`, its subcommands, main.py and the registries' names."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from inference_serving.cli import llmservingsim, main_py

REPO = Path(__file__).resolve().parent.parent
SUBCOMMANDS = ("run", "validate", "sweep", "search", "profile", "workload", "onnx", "list")
CONSOLE = Path(sys.executable).parent / "llmservingsim"


def test_console_command_is_installed_and_lists_every_subcommand():
    done = subprocess.run([str(CONSOLE), "--help"], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0
    for name in SUBCOMMANDS:
        assert f"\n  {name} " in done.stdout


@pytest.mark.parametrize("name", SUBCOMMANDS)
def test_every_subcommand_has_help(name):
    result = CliRunner().invoke(llmservingsim, [name, "--help"])
    assert result.exit_code == 0 and result.output.startswith(f"Usage: llmservingsim {name}")


def test_list_names_every_kind_with_one_line_each():
    result = CliRunner().invoke(llmservingsim, ["list"])
    assert result.exit_code == 0
    text = result.output
    for heading in ("models:", "hardware:", "providers:", "schedulers:", "backends:"):
        assert heading in text
    for name in ("meta-llama/Llama-3.1-8B-Instruct", "H100", "NPU", "aiconfigurator", "csv", "orca", "vllm", "step"):
        assert f"  {name}" in text
    schedulers = CliRunner().invoke(llmservingsim, ["list", "schedulers"]).output.splitlines()
    assert [line.split()[0] for line in schedulers] == ["orca", "vllm"]


def test_main_py_takes_flags_as_run_and_names_subcommands():
    assert "--model_name" in CliRunner().invoke(main_py, ["--help"]).output
    assert CliRunner().invoke(main_py, ["list", "backends"]).output.split()[0] == "step"
    done = subprocess.run([sys.executable, "main.py", "validate", "--help"], cwd=REPO, capture_output=True, text=True,
                          timeout=60)
    assert done.returncode == 0 and "--measured" in done.stdout


@pytest.mark.parametrize("argv", [["-m", "inference_serving", "workload", "--help"],
                                  ["-m", "inference_serving.validate", "--help"]])
def test_module_forms(argv):
    done = subprocess.run([sys.executable, *argv], cwd=REPO, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.startswith("Usage:")


@pytest.mark.parametrize("flag, value, words", [
    ("--scheduler", "fcfs", "--scheduler: unknown scheduler 'fcfs'; known: orca, vllm"),
    ("--perf-model", "roofline", "--perf-model roofline: neither a provider (aiconfigurator, scaled, npu, csv)"),
])
def test_unknown_registry_names_are_one_line(flag, value, words):
    done = subprocess.run([sys.executable, "main.py", flag, value, "--npu_num", "1", "--req_num", "1"], cwd=REPO,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and done.stderr.count("\n") == 1 and words in done.stderr
