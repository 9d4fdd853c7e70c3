#include "measured_collectives.h"

#include <algorithm>

namespace engine {

namespace {

std::string describe(CollectiveKind kind, uint64_t bytes) {
  return std::string(collectiveName(kind)) + " of " + std::to_string(bytes) + " bytes";
}

}  // namespace

MeasuredCollectives::Route MeasuredCollectives::route(int npu, CollectiveKind kind, const std::vector<int>& group) {
  Route route;
  route.curve = table_.curve(kind, group);
  if (!route.curve) return route;
  auto position = std::lower_bound(group.begin(), group.end(), npu);
  if (position == group.end() || *position != npu) {
    fail(kExitInput, "internal: NPU " + std::to_string(npu) + " is not a member of its collective's group");
  }
  route.member = static_cast<size_t>(position - group.begin());
  auto [it, created] = groups_.try_emplace(group);
  if (created) {
    it->second.members = group;
    it->second.issued.assign(group.size(), 0);
  }
  route.group = &it->second;
  return route;
}

std::string MeasuredCollectives::join(int npu, CollectiveKind kind, uint64_t bytes, const Route& route,
                                      Completion done) {
  Group& state = *route.group;
  uint64_t k = state.issued[route.member]++ - state.completed;  // position in `pending`
  bool first = k == state.pending.size();
  if (first) {
    Instance& fresh = state.pending.emplace_back();
    fresh.kind = kind;
    fresh.bytes = bytes;
    if (!state.spare.empty()) {
      fresh.arrived.swap(state.spare.back());
      state.spare.pop_back();
    }
  }
  Instance& instance = state.pending[k];
  if (!first && (instance.kind != kind || instance.bytes != bytes)) {
    return describe(kind, bytes) + " meets " + describe(instance.kind, instance.bytes) + " issued by NPU " +
           std::to_string(instance.arrived.front().first) +
           " in the same group (its members must issue the same collectives in the same order)";
  }
  instance.arrived.emplace_back(npu, done);
  if (instance.arrived.size() < state.members.size()) return "";
  Tick time = CollectiveTable::time(*route.curve, bytes);
  for (const auto& [member, completion] : instance.arrived) {
    events_.scheduleForNpu(member, time, completion.handler, completion.arg);
  }
  // the last member of the oldest pending collective: it is at the front
  state.pending.front().arrived.clear();
  state.spare.push_back(std::move(state.pending.front().arrived));
  state.pending.pop_front();
  ++state.completed;
  return "";
}

}  // namespace engine
