"""LLMServingSim command line: `python main.py --model_name ... --hardware ... --npu_num ...` simulates
serving a request trace; `python main.py validate|sweep|search|...` runs the other subcommands."""
import atexit
import gc

from inference_serving.cli import main_py

if __name__ == "__main__":
    # at exit the objects are left to the end of the process instead of being searched for cycles and
    # freed one by one: about 0.07 s of a 0.4 s run (README "Speed")
    atexit.register(gc.freeze)
    main_py(prog_name="main.py")
