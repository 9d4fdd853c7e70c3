"""Generator of ShareGPT-like Poisson traces (`llmservingsim workload --num N --rate R --seed S --output FILE`).

Arrivals form a Poisson process of R requests/s: the first request arrives at 0 ns, each next one
an exponential gap (mean 1/R s) later, rounded to whole ns. Prompt and output lengths are
log-normal with the means measured on ShareGPT by the vLLM paper (Kwon et al., "Efficient Memory
Management for Large Language Model Serving with PagedAttention", SOSP 2023, Fig. 11: mean input
161.31 tokens, mean output 337.99 tokens). The shape sigma = 1.0 (median = 0.61 x mean, a long
right tail) is our choice, not a fit. Lengths are rounded and clipped so that each is >= 1 and
prompt + output <= --max-tokens (the context the requests must fit). Arrivals, prompts and
outputs draw from three streams spawned from numpy's `default_rng(seed)`, so the same seed gives
byte-identical files (with the same numpy version) and the first k requests of a longer trace
equal a k-request trace.
"""
from __future__ import annotations

import math

import numpy as np

from ..config.types import MAX_SIM_NS
from ..errors import InputError
from .workload import Request

SHAREGPT_INPUT_MEAN = 161.31   # vLLM paper (SOSP 2023), Fig. 11
SHAREGPT_OUTPUT_MEAN = 337.99  # vLLM paper (SOSP 2023), Fig. 11
LOGNORMAL_SIGMA = 1.0          # our choice: a long tail, median 0.61 x mean
DEFAULT_MAX_TOKENS = 2048      # OPT and GPT-3 context length
MAX_SIGMA = 10.0               # the widest log-normal shape taken (e^10 = 22026 times the median per sigma)


def generate_requests(num: int, rate: float, seed: int,
                      input_mean: float = SHAREGPT_INPUT_MEAN, output_mean: float = SHAREGPT_OUTPUT_MEAN,
                      input_sigma: float = LOGNORMAL_SIGMA, output_sigma: float = LOGNORMAL_SIGMA,
                      max_tokens: int = DEFAULT_MAX_TOKENS) -> list[Request]:
    """`num` ShareGPT-like requests arriving as a Poisson process of `rate` requests/s."""
    arrival_rng, input_rng, output_rng = np.random.default_rng(seed).spawn(3)
    arrivals = poisson_arrivals_ns(arrival_rng, num, rate)
    inputs = lognormal_lengths(input_rng, num, input_mean, input_sigma, max_tokens - 1)
    outputs = np.minimum(lognormal_lengths(output_rng, num, output_mean, output_sigma, max_tokens),
                         max_tokens - inputs)
    return [Request(i, int(inputs[i]), int(outputs[i]), int(arrivals[i])) for i in range(num)]


def poisson_arrivals_ns(rng: np.random.Generator, num: int, rate: float) -> np.ndarray:
    """Arrival times in ns: 0, then exponential gaps of mean 1/rate s (rounded after summing); a trace
    whose last arrival would lie beyond the simulated clock's range is refused."""
    with np.errstate(over="ignore"):
        arrivals = np.concatenate(([0.0], np.cumsum(rng.exponential(1e9 / rate, size=num - 1))))
    if not arrivals[-1] <= MAX_SIM_NS:
        raise InputError(f"a rate of {rate:g} requests/s for {num} requests puts arrivals beyond "
                         f"{MAX_SIM_NS / 1e9:.3g} s of simulated time; raise the rate or generate fewer requests")
    return np.rint(arrivals).astype(np.int64)


def lognormal_lengths(rng: np.random.Generator, num: int, mean: float, sigma: float, longest: int) -> np.ndarray:
    """Token counts from a log-normal of the given mean and shape, rounded, clipped to [1, longest]."""
    mu = math.log(mean) - sigma ** 2 / 2
    return np.clip(np.rint(rng.lognormal(mu, sigma, size=num)), 1, longest).astype(np.int64)
