// Input configuration: system.json, network.yml, remote memory JSON, communicator groups.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "memory_tiers.h"

namespace engine {

enum class TopologyKind { Ring, FullyConnected, Switch };

struct NetworkDim {
  TopologyKind topology = TopologyKind::Ring;
  int npus = 1;
  double bandwidthGBps = 0;  // GB = 2^30 bytes
  double latencyNs = 0;      // per hop
};

struct NetworkConfig {
  std::vector<NetworkDim> dims;
  int totalNpus() const;
};

enum class CollectiveAlgo { Ring, Direct, HalvingDoubling };

struct AlgoChoice {
  CollectiveAlgo algo = CollectiveAlgo::Ring;
  int window = -1;  // direct<W>; -1 = all peers at once
};

enum class SchedulingPolicy { LIFO, FIFO, Explicit };

// Collective kinds that the system layer simulates (index into SystemConfig::implementations).
enum class CollectiveKind { AllReduce = 0, ReduceScatter = 1, AllGather = 2, AllToAll = 3 };
constexpr int kCollectiveKinds = 4;
const char* collectiveName(CollectiveKind kind);

struct SystemConfig {
  SchedulingPolicy scheduling = SchedulingPolicy::LIFO;
  bool localBWAware = false;  // "collective-optimization": localBWAware vs baseline
  int endpointDelay = 10;
  int activeChunksPerDim = 1;
  int datasetSplits = 1;
  std::vector<AlgoChoice> implementations[kCollectiveKinds];
  double localMemBwGBps = 0;  // GB = 10^9 bytes
  double peakPerfTflops = 0;
  bool roofline = false;
  bool replayOnly = false;
  std::string collectiveTable;  // "collective-table": measured collective times (collective_table.h), "" = none
};

enum class MemoryKind { None, PerNpu, PerNode, Pool };

struct MemoryConfig {
  MemoryKind kind = MemoryKind::None;
  uint64_t latencyNs = 0;
  uint64_t bandwidthGBps = 0;  // integer, GB = 10^9 bytes
  int npusPerNode = 1;
  std::vector<MemoryTier> tiers;  // "memory-tiers": memory nodes with a memory_tier attribute (memory_tiers.h)
};

// For each NPU, the member list of the communicator group it belongs to (empty = whole network).
using CommGroups = std::vector<std::vector<int>>;

NetworkConfig loadNetworkConfig(const std::string& path);
SystemConfig loadSystemConfig(const std::string& path, const NetworkConfig& network);
MemoryConfig loadMemoryConfig(const std::string& path);
CommGroups loadCommGroups(const std::string& path, int totalNpus);

}  // namespace engine
