"""`llmservingsim workload`: a ShareGPT-like request trace with Poisson arrivals (inputs/generator.py)."""
from __future__ import annotations

from pathlib import Path

import click

from ..config.types import MAX_DIMENSION, POSITIVE, REQUESTS, FiniteFloat, StrictInt
from ..inputs.generator import (DEFAULT_MAX_TOKENS, LOGNORMAL_SIGMA, MAX_SIGMA, SHAREGPT_INPUT_MEAN,
                                SHAREGPT_OUTPUT_MEAN, generate_requests)
from ..inputs.workload import write_dataset
from ..report.output_paths import check_file
from .command import Command


@click.command("workload", cls=Command)
@click.option("--num", type=REQUESTS, required=True, help="Number of requests.")
@click.option("--rate", type=POSITIVE, required=True,
              help="Mean arrival rate, requests per second (Poisson).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True, help="numpy default_rng seed.")
@click.option("--output", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Dataset file to write, .tsv or .jsonl.")
@click.option("--input-mean", type=FiniteFloat(min=1, max=MAX_DIMENSION), default=SHAREGPT_INPUT_MEAN, show_default=True,
              help="Mean prompt length in tokens before clipping (ShareGPT, vLLM paper).")
@click.option("--output-mean", type=FiniteFloat(min=1, max=MAX_DIMENSION), default=SHAREGPT_OUTPUT_MEAN, show_default=True,
              help="Mean output length in tokens before clipping (ShareGPT, vLLM paper).")
@click.option("--input-sigma", type=FiniteFloat(min=0, max=MAX_SIGMA), default=LOGNORMAL_SIGMA, show_default=True,
              help="Log-normal shape of prompt lengths.")
@click.option("--output-sigma", type=FiniteFloat(min=0, max=MAX_SIGMA), default=LOGNORMAL_SIGMA, show_default=True,
              help="Log-normal shape of output lengths.")
@click.option("--max-tokens", type=StrictInt(min=2, max=MAX_DIMENSION), default=DEFAULT_MAX_TOKENS, show_default=True,
              help="Longest request: prompt + output tokens.")
@click.option("--force", is_flag=True, help="Overwrite an existing output file.")
def main(num, rate, seed, output, input_mean, output_mean, input_sigma, output_sigma, max_tokens, force):
    """Generate a ShareGPT-like request trace with Poisson arrivals."""
    check_file("--output", output, lambda path: True, force)  # an existing file: refused when written, without --force
    requests = generate_requests(num, rate, seed, input_mean, output_mean, input_sigma, output_sigma, max_tokens)
    write_dataset(requests, output, force)
    click.echo(f"wrote {num} requests to {output}")
