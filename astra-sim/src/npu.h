// The system layer of one NPU: its event group, collective generation, stream queues and workload.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "collective_planner.h"
#include "sim_context.h"
#include "stream_scheduler.h"
#include "workload.h"

namespace engine {

class Npu {
 public:
  Npu(int id, SimContext& context, const std::vector<int>& commGroup);

  int id() const { return id_; }
  SimContext& context() { return context_; }
  MessageFabric& fabric() { return context_.fabric; }
  StreamScheduler& scheduler() { return scheduler_; }
  Workload& workload() { return workload_; }
  const Workload& workload() const { return workload_; }

  void schedule(Tick delay, EventHandler* handler, uint64_t arg) {
    context_.events.scheduleForNpu(id_, delay, handler, arg);
  }
  Tick reductionDelay(uint64_t bytes) const;

  // Starts a collective of `bytes`; returns why it cannot run, or "" when started.
  std::string startCollective(CollectiveKind kind, uint64_t bytes, const std::vector<bool>& involvedDims,
                              int explicitPriority, Completion done);

  Tick ticsGpuOps = 0;  // GPU compute time issued so far (all workloads): exposed = now - ticsGpuOps
  int iteration = 0;

 private:
  int nextPriority(int explicitPriority);

  // What a collective of one kind over some dimensions needs, worked out at its first use: its
  // participants and, where the collective table covers them, their measured group.
  struct Route {
    CollectiveKind kind;
    std::vector<bool> involvedDims;
    std::vector<int> group;
    MeasuredCollectives::Route measured;
  };
  const Route& route(CollectiveKind kind, const std::vector<bool>& involvedDims);
  std::vector<Route> routes_;

  int id_;
  SimContext& context_;
  CollectivePlanner planner_;
  StreamScheduler scheduler_;
  Workload workload_;
  int streamCounter_ = 0;
  int priorityCounter_ = 0;
};

}  // namespace engine
