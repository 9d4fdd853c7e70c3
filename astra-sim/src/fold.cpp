#include "fold.h"

#include <algorithm>

#include "simulator.h"

namespace engine {

namespace {

// Records the tick at which each member's collective completes.
class FinishRecorder : public EventHandler {
 public:
  FinishRecorder(const EventQueue& events, size_t members) : events_(events), finish_(members) {}
  void handleEvent(uint64_t member) override { finish_[member] = events_.now(); }
  const std::vector<std::optional<Tick>>& finish() const { return finish_; }

 private:
  const EventQueue& events_;
  std::vector<std::optional<Tick>> finish_;
};

}  // namespace

std::optional<Tick> CollectiveProbe::duration(CollectiveKind kind, uint64_t bytes, const std::vector<bool>& involvedDims,
                                              const std::vector<int>& group) {
  auto groupMemo = memo_.find(group);
  if (groupMemo == memo_.end()) groupMemo = memo_.emplace(group, std::map<Key, std::optional<Tick>>()).first;
  Key key{static_cast<int>(kind), bytes, involvedDims};
  auto it = groupMemo->second.find(key);
  if (it == groupMemo->second.end()) it = groupMemo->second.emplace(key, measure(kind, bytes, involvedDims, group)).first;
  return it->second;
}

std::optional<Tick> CollectiveProbe::measure(CollectiveKind kind, uint64_t bytes, const std::vector<bool>& involvedDims,
                                             const std::vector<int>& group) const {
  SimulatorInputs quiet = inputs_;
  quiet.options.spanFile.clear();
  Simulator probe(quiet);
  FinishRecorder recorder(probe.events(), group.size());
  for (size_t m = 0; m < group.size(); ++m) {
    if (!probe.npu(group[m]).startCollective(kind, bytes, involvedDims, 0, Completion{&recorder, m}).empty()) return std::nullopt;
  }
  while (probe.hasEvents()) probe.runTimestamp();
  const auto& finish = recorder.finish();
  bool together = std::all_of(finish.begin(), finish.end(), [&](const auto& tick) { return tick && *tick == *finish[0]; });
  return together ? finish[0] : std::nullopt;
}

}  // namespace engine
