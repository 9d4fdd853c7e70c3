"""The two elementary delays of the reference, used to write expected values by hand.

Everything else (closed forms of collectives, slot serialisation, pipelining) is
spelled out as arithmetic in the tests themselves.
"""

MiB = 1 << 20
GIB = 1 << 30


def T(m, hops, latency_ns, bandwidth_gbps):
    """Point-to-point delay, reference §3.2: ⌊h·lat + m / (B·2^30/10^9)⌋ ns."""
    return int(hops * latency_ns + m / (bandwidth_gbps * GIB / 1e9))


def P(m, local_mem_bw=1600):
    """Reduction delay of one m-byte packet, reference §3.5.4: 3·⌊m/(LMBW·10^9)·10^9⌋."""
    return 3 * int(m / (local_mem_bw * 1e9) * 1e9)


def mem(size, latency_ns, bw_gbps):
    """Memory service time, reference §4.1: lat + ⌊S/bw⌋ (bw integer, GB = 10^9)."""
    return latency_ns + size // bw_gbps


def roofline(num_ops, tensor_size, local_mem_bw, peak_tflops):
    """Roofline time, reference §5.6: ⌊ops / min(LMBW·10^9·OI, peak·10^12) · 10^9⌋."""
    perf = min(local_mem_bw * 1e9 * (num_ops / tensor_size), peak_tflops * 1e12)
    return int(num_ops / perf * 1e9)
