// Turns one chunk of a collective into its phases: which rings (dimensions or communicator group),
// which algorithm, which queue, and the size entering each phase.
#pragma once

#include <vector>

#include "collective_phase.h"
#include "config.h"
#include "network.h"

namespace engine {

class CollectivePlanner {
 public:
  CollectivePlanner(int npu, const Network& network, const SystemConfig& system, Tick endpointDelay,
                    const std::vector<int>& commGroup, int queuesPerDim);

  // Phases of one chunk; consumes queue assignments (round robin) unless `dryRun`.
  std::vector<PhaseSpec> plan(CollectiveKind kind, uint64_t chunkBytes, const std::vector<bool>& involvedDims, bool dryRun);
  // The NPUs taking part in this NPU's `kind` collective (itself included), ascending: its communicator
  // group, or every NPU that differs from it only in the dimensions the collective uses.
  std::vector<int> participants(CollectiveKind kind, const std::vector<bool>& involvedDims) const;

 private:
  // Round-robin queue choice inside one dimension: over all its queues, over the first half
  // (reduce-scatter / all-reduce steps of localBWAware) or over the second half (its all-gather steps).
  struct QueueLevel {
    int firstQueue = 0;
    int count = 1;
    int any = 0;
    int firstHalf = 0;
    int secondHalf = 0;
  };
  enum class QueueChoice { Any, FirstHalf, SecondHalf };

  PhaseSpec phase(CollectiveKind kind, int dim, uint64_t bytes, CollectiveKind algoOf, QueueChoice choice,
                  std::vector<QueueLevel>& levels) const;
  bool usable(int dim, size_t listed, const std::vector<bool>& involvedDims) const;

  int npu_;
  const Network& network_;
  const SystemConfig& system_;
  Tick endpointDelay_;
  std::vector<RingView> dimRings_;
  RingView groupRing_;
  bool useGroup_ = false;
  std::vector<QueueLevel> levels_;
};

}  // namespace engine
