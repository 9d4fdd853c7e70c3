#include "measured_collectives.h"

namespace engine {

namespace {

std::string describe(CollectiveKind kind, uint64_t bytes) {
  return std::string(collectiveName(kind)) + " of " + std::to_string(bytes) + " bytes";
}

}  // namespace

std::string MeasuredCollectives::join(int npu, CollectiveKind kind, uint64_t bytes, const std::vector<int>& group,
                                      Completion done) {
  Group& state = groups_[group];
  uint64_t k = state.issued[npu]++;
  auto [it, first] = state.pending.try_emplace(k, Instance{kind, bytes, {}});
  Instance& instance = it->second;
  if (!first && (instance.kind != kind || instance.bytes != bytes)) {
    return describe(kind, bytes) + " meets " + describe(instance.kind, instance.bytes) + " issued by NPU " +
           std::to_string(instance.arrived.front().first) +
           " in the same group (its members must issue the same collectives in the same order)";
  }
  instance.arrived.emplace_back(npu, done);
  if (instance.arrived.size() < group.size()) return "";
  Tick time = table_.time(kind, group, bytes);
  for (const auto& [member, completion] : instance.arrived) {
    events_.scheduleForNpu(member, time, completion.handler, completion.arg);
  }
  state.pending.erase(it);
  return "";
}

}  // namespace engine
