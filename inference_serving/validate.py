"""`python -m inference_serving.validate ...`, the module form of `llmservingsim validate`."""
from .cli.validate import main

if __name__ == "__main__":
    main(prog_name="python -m inference_serving.validate")
