"""`python -m inference_serving SUBCOMMAND ...` is `llmservingsim SUBCOMMAND ...`."""
from .cli import llmservingsim

llmservingsim(prog_name="llmservingsim")
