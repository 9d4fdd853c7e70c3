#include "npu.h"

#include <cmath>

namespace engine {

namespace {
int queueThreshold(const SimContext& context) {
  return static_cast<int>(std::ceil(static_cast<double>(context.system.activeChunksPerDim) / context.options.queuesPerDim));
}
}  // namespace

Npu::Npu(int id, SimContext& context, const std::vector<int>& commGroup)
    : id_(id),
      context_(context),
      planner_(id, context.network, context.system, context.endpointDelay, commGroup, context.options.queuesPerDim),
      scheduler_(context.network.dims() * context.options.queuesPerDim, queueThreshold(context)),
      workload_(*this) {}

Tick Npu::reductionDelay(uint64_t bytes) const {
  double bandwidth = context_.system.localMemBwGBps;
  if (bandwidth <= 0) fail(kExitInput, "system configuration: \"local-mem-bw\" must be > 0 for reducing collectives");
  // one write and two reads of the message at local memory bandwidth (GB = 10^9 bytes)
  Tick once = static_cast<Tick>(static_cast<double>(bytes) / (bandwidth * 1e9) * 1e9);
  return 3 * once;
}

int Npu::nextPriority(int explicitPriority) {
  switch (context_.system.scheduling) {
    case SchedulingPolicy::LIFO: return priorityCounter_++;
    case SchedulingPolicy::FIFO: return priorityCounter_--;
    case SchedulingPolicy::Explicit: return explicitPriority;
  }
  return 0;
}

const Npu::Route& Npu::route(CollectiveKind kind, const std::vector<bool>& involvedDims) {
  for (const Route& known : routes_) {
    if (known.kind == kind && known.involvedDims == involvedDims) return known;
  }
  Route fresh{kind, involvedDims, planner_.participants(kind, involvedDims), {}};
  fresh.measured = context_.measured.route(id_, kind, fresh.group);
  routes_.push_back(std::move(fresh));
  return routes_.back();
}

std::string Npu::startCollective(CollectiveKind kind, uint64_t bytes, const std::vector<bool>& involvedDims,
                                 int explicitPriority, Completion done) {
  const Route& route = this->route(kind, involvedDims);
  if (route.measured.group) {
    return context_.measured.join(id_, kind, bytes, route.measured, done);  // timed by the "collective-table"
  }
  uint64_t splits = static_cast<uint64_t>(context_.system.datasetSplits);
  uint64_t total = static_cast<uint64_t>(context_.network.npus());
  uint64_t chunk = bytes / splits;
  if (kind != CollectiveKind::AllGather && chunk < total) {  // tiny collectives: one NPU-count-sized chunk per split
    chunk = total;
    bytes = splits * chunk;
  }
  if (chunk == 0) {
    return "ALL_GATHER of " + std::to_string(bytes) + " bytes is smaller than preferred-dataset-splits (" +
           std::to_string(splits) + ")";
  }
  if (context_.system.implementations[static_cast<int>(kind)].empty()) {
    return std::string("system configuration lists no implementation for ") + collectiveName(kind);
  }
  std::vector<PhaseSpec> shape = planner_.plan(kind, chunk, involvedDims, true);
  if (shape.empty()) return "no network dimension with more than one NPU takes part in this collective";
  for (const PhaseSpec& phase : shape) {
    std::string problem = phaseProblem(phase);
    if (!problem.empty()) return problem;
  }

  DataSet* dataset = new DataSet{static_cast<int>((bytes + chunk - 1) / chunk), done};
  int priority = nextPriority(explicitPriority);
  // every chunk is full-sized, the remainder included
  for (uint64_t left = bytes; left > 0; left -= std::min(left, chunk)) {
    Stream* stream = new Stream(*this, streamCounter_++, priority, dataset, planner_.plan(kind, chunk, involvedDims, false));
    scheduler_.advance(stream);
  }
  return "";
}

}  // namespace engine
