"""`llmservingsim workload`: a ShareGPT-like request trace with Poisson arrivals (inputs/generator.py), or
multi-turn sessions with --turns (inputs/session_generator.py)."""
from __future__ import annotations

from pathlib import Path

import click

from ..config.types import MAX_DIMENSION, MAX_SIM_NS, POSITIVE, REQUESTS, FiniteFloat, StrictInt
from ..errors import InputError
from ..inputs.generator import (DEFAULT_MAX_TOKENS, LOGNORMAL_SIGMA, MAX_SIGMA, SHAREGPT_INPUT_MEAN,
                                SHAREGPT_OUTPUT_MEAN, generate_requests)
from ..inputs.session_generator import generate_sessions, write_sessions
from ..inputs.workload import write_dataset
from ..report.output_paths import check_file
from .command import Command


@click.command("workload", cls=Command)
@click.option("--num", type=REQUESTS, required=True, help="Number of requests (sessions with --turns).")
@click.option("--rate", type=POSITIVE, required=True,
              help="Mean arrival rate, requests (sessions with --turns) per second (Poisson).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="numpy default_rng seed.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Dataset file to write, .tsv or .jsonl (.jsonl with --turns).")
@click.option("--input-mean", type=FiniteFloat(min=1, max=MAX_DIMENSION), default=SHAREGPT_INPUT_MEAN, show_default=True,
              help="Mean prompt length (a turn's new input with --turns) in tokens before clipping (ShareGPT, vLLM paper).")
@click.option("--output-mean", type=FiniteFloat(min=1, max=MAX_DIMENSION), default=SHAREGPT_OUTPUT_MEAN, show_default=True,
              help="Mean output length in tokens before clipping (ShareGPT, vLLM paper).")
@click.option("--input-sigma", type=FiniteFloat(min=0, max=MAX_SIGMA), default=LOGNORMAL_SIGMA, show_default=True,
              help="Log-normal shape of prompt lengths.")
@click.option("--output-sigma", type=FiniteFloat(min=0, max=MAX_SIGMA), default=LOGNORMAL_SIGMA, show_default=True,
              help="Log-normal shape of output lengths.")
@click.option("--max-tokens", type=StrictInt(min=2, max=MAX_DIMENSION), default=DEFAULT_MAX_TOKENS, show_default=True,
              help="Longest request: prompt + output tokens (with --turns: a session ends before a turn exceeds it).")
@click.option("--turns", type=StrictInt(min=1, max=MAX_DIMENSION), default=None,
              help="Multi-turn sessions of up to this many turns, each prompt the conversation so far plus new input.")
@click.option("--think", type=FiniteFloat(min=0, max=MAX_SIM_NS / 1e9), default=None,
              help="With --turns: mean seconds from a turn's end to the next turn's arrival (exponential).")
@click.option("--no-token-ids", is_flag=True, help="With --turns: write no token ids (no prefix caching).")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
def main(num, rate, seed, output, input_mean, output_mean, input_sigma, output_sigma, max_tokens, turns, think,
         no_token_ids, force):
    """Generate a ShareGPT-like request trace with Poisson arrivals, or multi-turn sessions (--turns)."""
    check_file("--output", output, lambda path: True, force)  # an existing file: refused when written, without --force
    if turns is None:
        if think is not None or no_token_ids:
            raise InputError("--think and --no-token-ids describe sessions; give --turns as well")
        requests = generate_requests(num, rate, seed, input_mean, output_mean, input_sigma, output_sigma, max_tokens)
        write_dataset(requests, output, force)
        click.echo(f"wrote {num} requests to {output}")
        return
    if think is None:
        raise InputError("--turns: give --think, the mean seconds between a turn's end and the next turn")
    lengths = {"input_mean": input_mean, "output_mean": output_mean, "input_sigma": input_sigma,
               "output_sigma": output_sigma}
    rows = generate_sessions(num, turns, rate, think, seed, lengths, max_tokens, token_ids=not no_token_ids)
    write_sessions(rows, output, force)
    click.echo(f"wrote {len(rows)} turns of {num} sessions to {output}")
