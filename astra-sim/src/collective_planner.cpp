#include "collective_planner.h"

#include <algorithm>

namespace engine {

namespace {
constexpr Tick kGroupRingEndpointDelay = 10;  // communicator-group rings use a fixed endpoint delay
}

CollectivePlanner::CollectivePlanner(int npu, const Network& network, const SystemConfig& system, Tick endpointDelay,
                                     const std::vector<int>& commGroup, int queuesPerDim)
    : npu_(npu), network_(network), system_(system), endpointDelay_(endpointDelay) {
  for (int d = 0; d < network.dims(); ++d) {
    RingView ring;
    int base = npu - network.coord(npu, d) * network.stride(d);
    for (int i = 0; i < network.dimSize(d); ++i) ring.members.push_back(base + i * network.stride(d));
    ring.selfIndex = network.coord(npu, d);
    dimRings_.push_back(ring);
    QueueLevel level;
    level.firstQueue = d * queuesPerDim;
    level.count = queuesPerDim;
    level.secondHalf = queuesPerDim / 2;
    levels_.push_back(level);
  }
  if (!commGroup.empty() && static_cast<int>(commGroup.size()) < network.npus()) {
    useGroup_ = true;
    groupRing_.members = commGroup;
    groupRing_.selfIndex = static_cast<int>(std::find(commGroup.begin(), commGroup.end(), npu) - commGroup.begin());
  }
}

bool CollectivePlanner::usable(int dim, size_t listed, const std::vector<bool>& involvedDims) const {
  if (static_cast<size_t>(dim) >= listed || network_.dimSize(dim) < 2) return false;
  return static_cast<size_t>(dim) >= involvedDims.size() || involvedDims[dim];
}

PhaseSpec CollectivePlanner::phase(CollectiveKind kind, int dim, uint64_t bytes, CollectiveKind algoOf,
                                   QueueChoice choice, std::vector<QueueLevel>& levels) const {
  QueueLevel& level = levels[dim];
  PhaseSpec spec;
  spec.kind = kind;
  spec.inputBytes = bytes;
  switch (choice) {
    case QueueChoice::Any:
      spec.anticlockwise = level.count > 1 && level.any >= level.count / 2;
      spec.queue = level.firstQueue + level.any;
      level.any = (level.any + 1) % level.count;
      break;
    case QueueChoice::FirstHalf:
      spec.queue = level.firstQueue + level.firstHalf;
      level.firstHalf = (level.firstHalf + 1) % std::max(1, level.count / 2);
      break;
    case QueueChoice::SecondHalf:
      spec.anticlockwise = true;
      spec.queue = level.firstQueue + level.secondHalf;
      if (++level.secondHalf == level.count) level.secondHalf = level.count / 2;
      break;
  }
  if (useGroup_) {
    spec.ring = &groupRing_;
    spec.endpointDelay = kGroupRingEndpointDelay;
  } else {
    spec.ring = &dimRings_[dim];
    spec.algo = system_.implementations[static_cast<int>(algoOf)][dim];
    spec.endpointDelay = endpointDelay_;
  }
  return spec;
}

std::vector<int> CollectivePlanner::participants(CollectiveKind kind, const std::vector<bool>& involvedDims) const {
  std::vector<int> members = useGroup_ ? groupRing_.members : std::vector<int>{npu_};
  size_t listed = useGroup_ ? 0 : system_.implementations[static_cast<int>(kind)].size();
  for (size_t d = 0; d < listed; ++d) {
    if (!usable(static_cast<int>(d), listed, involvedDims)) continue;
    std::vector<int> grown;
    for (int member : members) {
      for (int peer : dimRings_[d].members) grown.push_back(member + peer - npu_);
    }
    members.swap(grown);
  }
  std::sort(members.begin(), members.end());
  return members;
}

std::vector<PhaseSpec> CollectivePlanner::plan(CollectiveKind kind, uint64_t chunkBytes,
                                               const std::vector<bool>& involvedDims, bool dryRun) {
  std::vector<QueueLevel> scratch;
  std::vector<QueueLevel>& levels = dryRun ? (scratch = levels_) : levels_;
  std::vector<PhaseSpec> phases;
  uint64_t bytes = chunkBytes;
  auto add = [&](CollectiveKind phaseKind, int dim, QueueChoice choice) {
    phases.push_back(phase(phaseKind, dim, bytes, kind, choice, levels));
    bytes = phaseOutputBytes(phases.back());
  };

  if (useGroup_) {  // one ring over the group members, always the ring algorithm
    bool allReduceFirstHalf = kind == CollectiveKind::AllReduce && system_.localBWAware;
    add(kind, 0, allReduceFirstHalf ? QueueChoice::FirstHalf : QueueChoice::Any);
    return phases;
  }

  size_t listed = system_.implementations[static_cast<int>(kind)].size();
  int dims = static_cast<int>(listed);
  if (kind != CollectiveKind::AllReduce || !system_.localBWAware) {
    for (int i = 0; i < dims; ++i) {
      int dim = kind == CollectiveKind::AllGather ? dims - 1 - i : i;  // all-gather climbs down
      if (usable(dim, listed, involvedDims)) add(kind, dim, QueueChoice::Any);
    }
    return phases;
  }
  // localBWAware All-Reduce: reduce-scatter up to the last used dimension, all-reduce there,
  // all-gather back down.
  int last = -1;
  for (int d = 0; d < dims; ++d) {
    if (usable(d, listed, involvedDims)) last = d;
  }
  if (last < 0) return phases;
  for (int d = 0; d < last; ++d) {
    if (usable(d, listed, involvedDims)) add(CollectiveKind::ReduceScatter, d, QueueChoice::FirstHalf);
  }
  add(CollectiveKind::AllReduce, last, QueueChoice::FirstHalf);
  for (int d = last - 1; d >= 0; --d) {
    if (usable(d, listed, involvedDims)) add(CollectiveKind::AllGather, d, QueueChoice::SecondHalf);
  }
  return phases;
}

}  // namespace engine
