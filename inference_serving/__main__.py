"""`python -m inference_serving SUBCOMMAND ...` is `llmservingsim SUBCOMMAND ...`."""
import atexit
import gc

from .cli import llmservingsim

atexit.register(gc.freeze)  # the objects are left to the end of the process (main.py)
llmservingsim(prog_name="llmservingsim")
