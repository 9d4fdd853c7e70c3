#include "memory_tiers.h"

#include <cmath>

namespace engine {

namespace {

[[noreturn]] void badTier(const std::string& path, size_t index, const std::string& what) {
  fail(kExitInput, path + ": \"memory-tiers\"[" + std::to_string(index) + "] " + what);
}

double tierNumber(const Json& tier, const char* key, const std::string& path, size_t index) {
  auto it = tier.find(key);
  if (it == tier.end() || !it->is_number()) badTier(path, index, std::string("needs a number \"") + key + "\"");
  return it->get<double>();
}

}  // namespace

std::vector<MemoryTier> parseMemoryTiers(const Json& root, const std::string& path) {
  std::vector<MemoryTier> tiers;
  auto list = root.find("memory-tiers");
  if (list == root.end()) return tiers;
  if (!list->is_array()) fail(kExitInput, path + ": \"memory-tiers\" must be a list of {name, bandwidth, latency}");
  for (size_t i = 0; i < list->size(); ++i) {
    const Json& tier = (*list)[i];
    if (!tier.is_object()) badTier(path, i, "must be an object {name, bandwidth, latency}");
    for (const auto& [key, value] : tier.items()) {
      if (key != "name" && key != "bandwidth" && key != "latency") badTier(path, i, "has unknown key \"" + key + "\"");
    }
    auto name = tier.find("name");
    if (name == tier.end() || !name->is_string()) badTier(path, i, "needs a text \"name\"");
    double bandwidth = tierNumber(tier, "bandwidth", path, i);
    double latency = tierNumber(tier, "latency", path, i);
    if (!(bandwidth > 0) || !std::isfinite(bandwidth)) badTier(path, i, "\"bandwidth\" must be > 0 (GB/s)");
    if (latency < 0 || latency != std::floor(latency) || latency > 1e15) badTier(path, i, "\"latency\" must be an integer >= 0 (ns)");
    tiers.push_back(MemoryTier{name->get<std::string>(), bandwidth, static_cast<Tick>(latency)});
  }
  return tiers;
}

}  // namespace engine
