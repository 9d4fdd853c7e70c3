// Memory tiers below device memory, for the serving simulator's KV-cache tiers (CPU DRAM, CXL memory,
// SSD). The remote memory file may list them:
//   "memory-tiers": [{"name": "cpu", "bandwidth": 307.2, "latency": 100}, ...]
// bandwidth in GB/s (GB = 10^9 bytes, > 0, fractions kept), latency in ns (>= 0, an integer). A MEM_LOAD or
// MEM_STORE node whose integer attribute `memory_tier` is k >= 1 is served by the k-th tier in
// latency + floor(bytes / bandwidth) ns, on its NPU without contention (each NPU has its own path to a
// tier, as with PER_NPU_MEMORY_EXPANSION); without the attribute (or 0) the remote memory serves it.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common.h"
#include "documents.h"

namespace engine {

struct MemoryTier {
  std::string name;
  double bandwidthGBps = 0;
  Tick latencyNs = 0;

  Tick serviceTime(uint64_t bytes) const {
    return latencyNs + static_cast<Tick>(static_cast<double>(bytes) / bandwidthGBps);
  }
};

// The "memory-tiers" list of the remote memory file `root` (empty without one); errors name `path`.
std::vector<MemoryTier> parseMemoryTiers(const Json& root, const std::string& path);

}  // namespace engine
