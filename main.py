"""LLMServingSim command line: `python main.py --model_name ... --hardware ... --npu_num ...` simulates
serving a request trace; `python main.py validate|sweep|search|...` runs the other subcommands."""
from inference_serving.cli import main_py

if __name__ == "__main__":
    main_py(prog_name="main.py")
