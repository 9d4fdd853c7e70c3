"""The summary's mean, median and 99th percentile (report/summary_stats.py): by hand, and bit for bit
against numpy, which computed them before."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from inference_serving.report.summary_stats import mean, median, percentile

TOP = 2.0 ** 53  # adding 1 to it is a tie that rounds back to it (ties to even)


def test_mean_sums_pairwise_in_eight_running_sums():
    # one value at a time: 2^53 + 1 = 2^53, seven times over -> mean 2^53 / 8 = 2^50. numpy's 8 running
    # sums hold the 8 values; ((2^53 + 1) + (1 + 1)) + ((1 + 1) + (1 + 1)) = (2^53 + 2) + 4 = 2^53 + 6
    assert mean([TOP] + [1.0] * 7) == (TOP + 6) / 8 == 2.0 ** 50 + 0.75


def test_mean_of_a_block_and_its_tail():
    # 9 values: the running sums take 8 (2^53 + 6, as above), the ninth is added after they are combined:
    # 2^53 + 7 is a tie between 2^53 + 6 and 2^53 + 8, which rounds to the even 2^53 + 8
    assert mean([TOP] + [1.0] * 8) == (TOP + 8) / 9


def test_median_of_odd_and_even_counts():
    assert median([1.0, 2.0, 7.0]) == 2.0
    assert median([1.0, 2.0, 3.0, 7.0]) == 2.5


def test_percentile_interpolates_between_neighbours():
    assert percentile([5.0], 99) == 5.0
    assert percentile([0.0, 100.0], 99) == 99.0                    # 0.99 of the way from 0 to 100
    assert percentile([float(v) for v in range(101)], 99) == 99.0  # index 100 x 0.99 = 99 exactly


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(0, 10 ** 13), min_size=1, max_size=2000))
def test_same_bits_as_numpy(ns):
    """The summary's values: integer nanoseconds in ms."""
    values = [v / 1e6 for v in ns]
    ordered = sorted(values)
    array = np.array(ns, dtype=float) / 1e6
    assert [repr(mean(values)), repr(median(ordered)), repr(percentile(ordered, 99))] == [
        repr(float(array.mean())), repr(float(np.median(array))), repr(float(np.percentile(array, 99)))]
