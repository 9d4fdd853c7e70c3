// FlashAttention-2's schedule of thread blocks (CTAs) on a GPU's slots, compiled for speed: the reference is
// inference_serving/perf/fa2.py (makespan_s and the functions it calls). Every double is computed with the
// same operations in the same order as there (integer tile counts converted exactly, no contraction into
// fused multiply-adds: built with -ffp-contract=off), so the answers are equal bit for bit; tests/test_fa2.py
// compares them.
#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

namespace {

// A binary min-heap of doubles whose pop moves the hole to a leaf choosing the lesser child without a
// branch, then sifts the last value up from there (the children's order is data, so a branch on it is
// mispredicted half the time). The schedule reads only the least value, so any min-heap gives the same
// answers.
class MinHeap {
  public:
    bool empty() const { return values_.empty(); }
    size_t size() const { return values_.size(); }
    double top() const { return values_.front(); }

    void push(double value) {
        values_.push_back(value);
        sift_up(values_.size() - 1, value);
    }

    void pop() {
        const double last = values_.back();
        values_.pop_back();
        const size_t count = values_.size();
        if (count == 0) return;
        size_t hole = 0;
        for (size_t child = 1; child + 1 < count; child = 2 * hole + 1) {
            child += values_[child + 1] < values_[child];
            values_[hole] = values_[child];
            hole = child;
        }
        if (2 * hole + 1 < count) {  // a last child alone
            values_[hole] = values_[2 * hole + 1];
            hole = 2 * hole + 1;
        }
        sift_up(hole, last);
    }

  private:
    void sift_up(size_t at, double value) {
        while (at > 0) {
            const size_t parent = (at - 1) / 2;
            if (!(value < values_[parent])) break;
            values_[at] = values_[parent];
            at = parent;
        }
        values_[at] = value;
    }

    std::vector<double> values_;
};

// Tiles per second of one CTA with `running` CTAs at work: its own cap, or (streaming from device memory)
// an even share of the device-memory rate when that is less. Python's min(cap, share).
struct Rate {
    double cap;
    double dram_tiles_per_s;
    bool dram;

    double operator()(int64_t running) const {
        if (!dram) return cap;
        const double share = dram_tiles_per_s / static_cast<double>(running);
        return share < cap ? share : cap;
    }
};

// The slots' free times (in tiles done) of the greedy schedule, as a bucket queue: a slot that frees at t takes
// a CTA of at most `widest` tiles, so every free time lies in [t, t + widest] with t the earliest, and a
// circular array of widest + 1 counts holds them; taking the earliest only ever moves forward. The same
// multiset as fa2._one_kind_s's heap, in O(CTAs + makespan) instead of O(CTAs log slots).
class FreeTimes {
  public:
    explicit FreeTimes(int64_t widest) : counts_(static_cast<size_t>(widest) + 1, 0) {}

    void add(int64_t time) { ++counts_[index(time)]; }

    int64_t take_earliest() {
        while (counts_[index(earliest_)] == 0) ++earliest_;
        --counts_[index(earliest_)];
        return earliest_;
    }

    // every free time left, ascending
    std::vector<int64_t> sorted(size_t count) {
        std::vector<int64_t> out;
        out.reserve(count);
        for (int64_t time = earliest_; out.size() < count; ++time) {
            out.insert(out.end(), counts_[index(time)], time);
        }
        return out;
    }

  private:
    size_t index(int64_t time) const { return static_cast<size_t>(time) % counts_.size(); }

    std::vector<int64_t> counts_;
    int64_t earliest_ = 0;
};

// fa2._one_kind_s: the greedy schedule in whole tiles, then each stretch timed at the rate of the CTAs
// still running in it.
double one_kind_s(const std::vector<int64_t>& tiles, int64_t slots, const Rate& rate) {
    if (tiles.empty()) return 0.0;
    const size_t first = std::min(static_cast<size_t>(slots), tiles.size());
    FreeTimes free(*std::max_element(tiles.begin(), tiles.end()));
    for (size_t i = 0; i < first; ++i) free.add(tiles[i]);
    int64_t last_start = 0;
    for (size_t i = first; i < tiles.size(); ++i) {
        last_start = free.take_earliest();
        free.add(last_start + tiles[i]);
    }
    const std::vector<int64_t> ends = free.sorted(first);
    const int64_t count = static_cast<int64_t>(ends.size());
    double elapsed = static_cast<double>(last_start) / rate(count);
    int64_t before = last_start;
    for (int64_t done = 0; done < count; ++done) {
        elapsed += static_cast<double>(ends[done] - before) / rate(count - done);
        before = ends[done];
    }
    return elapsed;
}

// fa2._two_kinds_s: CTAs reading L2 end tiles / cap after they start; those streaming device memory advance
// together on one clock (tiles done) at min(cap, rate / their number).
double two_kinds_s(const std::vector<int64_t>& tiles, const std::vector<bool>& dram, int64_t slots, double cap,
                   double dram_tiles_per_s) {
    double now = 0.0, dram_clock = 0.0;
    MinHeap l2_ends, dram_ends;
    size_t next = 0;
    while (next < tiles.size() || !l2_ends.empty() || !dram_ends.empty()) {
        while (next < tiles.size() && static_cast<int64_t>(l2_ends.size() + dram_ends.size()) < slots) {
            const double length = static_cast<double>(tiles[next]);
            if (dram[next]) {
                dram_ends.push(dram_clock + length);
            } else {
                l2_ends.push(now + length / cap);
            }
            ++next;
        }
        const Rate shared{cap, dram_tiles_per_s, true};
        const double rate = dram_ends.empty() ? 0.0 : shared(static_cast<int64_t>(dram_ends.size()));
        const double dram_next = dram_ends.empty() ? std::numeric_limits<double>::infinity()
                                                   : now + (dram_ends.top() - dram_clock) / rate;
        if (!l2_ends.empty() && l2_ends.top() <= dram_next) {
            dram_clock += rate * (l2_ends.top() - now);
            now = l2_ends.top();
            l2_ends.pop();
        } else {
            dram_clock = dram_ends.top();
            dram_ends.pop();
            now = dram_next;
        }
    }
    return now;
}

}  // namespace

// fa2.makespan_s over the CTAs of `heads` heads launched one head after the other, each head's CTAs being
// the `n` of `tiles` in order (fa2.heads_columns): CTA i of head h has tiles[i] K/V tiles and streams them
// from device memory when dram[i] is nonzero and h is a multiple of `dram_every` (else it reads L2). CTAs of
// no tiles exit at once and are left out.
extern "C" double fa2_makespan_s(const int64_t* tiles, const uint8_t* dram, int64_t n, int64_t heads,
                                 int64_t dram_every, int64_t slots, double tile_s, double dram_tiles_per_s) {
    std::vector<int64_t> working;
    std::vector<bool> working_dram;
    working.reserve(static_cast<size_t>(n * heads));
    working_dram.reserve(static_cast<size_t>(n * heads));
    bool any_dram = false, any_l2 = false;
    for (int64_t head = 0; head < heads; ++head) {
        const bool streams = head % dram_every == 0;
        for (int64_t i = 0; i < n; ++i) {
            if (tiles[i] == 0) continue;
            const bool from_dram = streams && dram[i] != 0;
            working.push_back(tiles[i]);
            working_dram.push_back(from_dram);
            (from_dram ? any_dram : any_l2) = true;
        }
    }
    const double cap = 1.0 / tile_s;
    if (any_dram && any_l2) return two_kinds_s(working, working_dram, slots, cap, dram_tiles_per_s);
    return one_kind_s(working, slots, Rate{cap, dram_tiles_per_s, any_dram});
}
