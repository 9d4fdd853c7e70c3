// All NPUs of one run plus the operations the three front ends (compat, batch, step) need.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "npu.h"
#include "sim_context.h"

namespace engine {

struct SimulatorInputs {
  NetworkConfig network;
  SystemConfig system;
  MemoryConfig memory;
  CommGroups groups;
  EngineOptions options;
};

class Simulator {
 public:
  explicit Simulator(const SimulatorInputs& inputs);

  int npuCount() const { return static_cast<int>(npus_.size()); }
  Npu& npu(int i) { return *npus_[i]; }
  Tick now() const { return context_.events.now(); }
  bool hasEvents() const { return !context_.events.empty(); }
  Tick nextEventTime() const { return context_.events.nextTime(); }
  void runTimestamp() { context_.events.runNextTimestamp(); }
  void advanceTo(Tick t) { context_.events.advanceTo(t); }

  // Reads `<prefix>.<npu>.et` into the (idle) NPU; start() issues its first nodes.
  void load(int npu, const std::string& prefix);
  void start(int npu) { npus_[npu]->workload().start(); }

  bool finished(int npu) const { return npus_[npu]->workload().finished(); }
  bool anyActive() const;
  int64_t exposed(int npu) const { return static_cast<int64_t>(now()) - static_cast<int64_t>(npus_[npu]->ticsGpuOps); }

  // NPUs whose workload finished since the last call, in completion order.
  std::vector<int> takeFinished();
  // One line naming every unfinished NPU, its file and (some of) its stuck nodes.
  std::string stuckDescription() const;

  const SimulatorInputs& inputs() const { return inputs_; }

 private:
  SimulatorInputs inputs_;
  SimContext context_;
  std::vector<std::unique_ptr<Npu>> npus_;
  std::vector<int> justFinished_;
};

std::string workloadPath(const std::string& prefix, int npu);

}  // namespace engine
