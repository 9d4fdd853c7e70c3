"""Where the shipped data lives: the repository root holds model_configs/, hardware/ and dataset/."""
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
MODEL_CONFIG_DIR = REPO_ROOT / "model_configs"
HARDWARE_DIR = REPO_ROOT / "hardware"
DEFAULT_ENGINE = REPO_ROOT / "astra-sim" / "build" / "bin" / "astra-analytical"
FA2_LIBRARY = REPO_ROOT / "native" / "build" / "libfa2_schedule.so"  # native/build.sh
