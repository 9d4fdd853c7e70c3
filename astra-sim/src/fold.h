// Folding: NPUs that start identical workloads at the same tick on a symmetric network finish every
// node at the same ticks, so one of them (the representative) can be simulated for all of them.
// A folded workload's collectives are timed by a private simulation of the whole group running that
// collective alone from an idle state: what each member's own simulation gives when all of them enter
// it at the same tick. The probe also checks that every member finishes at the same tick (otherwise the
// group is not symmetric for that collective and is not folded). A send or receive folds when every
// member's peer is the representative's shifted by the member's offset (an NPU outside the group): a
// folded send sends every member's message, a folded receive claims them (message_fabric.h),
// so a pipeline of folded groups (each stage's senders folded alike) is exact too.
#pragma once

#include <map>
#include <optional>
#include <tuple>
#include <vector>

#include "config.h"
#include "sim_context.h"

namespace engine {

struct SimulatorInputs;

class CollectiveProbe {
 public:
  explicit CollectiveProbe(const SimulatorInputs& inputs) : inputs_(inputs) {}

  // Ticks from entering to finishing a collective run by every member of `group` at once; nullopt when
  // the members do not all finish at one tick, or do not finish.
  std::optional<Tick> duration(CollectiveKind kind, uint64_t bytes, const std::vector<bool>& involvedDims,
                               const std::vector<int>& group);

 private:
  using Key = std::tuple<int, uint64_t, std::vector<bool>>;
  std::optional<Tick> measure(CollectiveKind kind, uint64_t bytes, const std::vector<bool>& involvedDims,
                              const std::vector<int>& group) const;

  const SimulatorInputs& inputs_;
  std::map<std::vector<int>, std::map<Key, std::optional<Tick>>> memo_;  // per group (looked up without a copy)
};

// What a folded workload knows: its whole group (representative first) and how to time collectives.
struct Fold {
  std::vector<int> group;
  CollectiveProbe* probe = nullptr;
  Tick gpuTicsAtStart = 0;  // the representative's ticsGpuOps when the fold began
};

}  // namespace engine
