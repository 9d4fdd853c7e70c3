// All NPUs of one run plus the operations the three front ends (compat, batch, step) need.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "fold.h"
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
  // No command can start anything before tick `t` (0: one may at any time); a lone chain's runs end by then.
  void quietUntil(Tick t) { context_.quietUntil = t; }

  // Reads `<prefix>.<npu>.et` into the (idle) NPU; start() issues its first nodes.
  void load(int npu, const std::string& prefix);
  // The same for a trace already parsed; `name` stands for its path in messages.
  void load(int npu, const std::string& name, std::vector<EtNode> nodes);
  // The same for a graph built already, shared by every NPU it is loaded into.
  void load(int npu, const std::string& name, SharedGraph graph) { npus_[npu]->workload().load(name, std::move(graph)); }
  void start(int npu) { npus_[npu]->workload().start(); }

  // After load(group[0], ...): the other members of `group` (idle) run the same workload from now on,
  // simulated once by group[0] (fold.h). False, and nothing changed, where folding would not be exact:
  // a shared remote memory, several queues per dimension, point-to-point nodes, or a collective whose
  // members would not finish together.
  bool fold(const std::vector<int>& group);
  // The NPU whose workload runs this NPU's part: itself, or the representative it follows.
  int runner(int npu) const { return mirrorOf_[npu] >= 0 ? mirrorOf_[npu] : npu; }
  bool busy(int npu) { return npus_[runner(npu)]->workload().active(); }

  bool finished(int npu) const { return npus_[npu]->workload().finished(); }
  bool anyActive() const;
  int64_t exposed(int npu) const { return static_cast<int64_t>(now()) - static_cast<int64_t>(npus_[npu]->ticsGpuOps); }

  // NPUs whose workload finished since the last call, in completion order.
  std::vector<int> takeFinished();
  // One line naming every unfinished NPU, its file and (some of) its stuck nodes.
  std::string stuckDescription() const;

  const SimulatorInputs& inputs() const { return inputs_; }
  const EventQueue& events() const { return context_.events; }

 private:
  void workloadFinished(int npu);

  SimulatorInputs inputs_;
  SimContext context_;
  std::vector<std::unique_ptr<Npu>> npus_;
  std::vector<int> justFinished_;
  CollectiveProbe probe_;
  std::vector<Fold> folds_;      // per representative NPU: its fold (empty group: none)
  std::vector<int> mirrorOf_;    // per NPU: the representative it follows, -1 if none
};

std::string workloadPath(const std::string& prefix, int npu);

}  // namespace engine
