#include "config.h"

#include <cmath>
#include <set>

#include "collective_table.h"
#include "common.h"
#include "documents.h"

namespace engine {

int NetworkConfig::totalNpus() const {
  int total = 1;
  for (const auto& dim : dims) total *= dim.npus;
  return total;
}

const char* collectiveName(CollectiveKind kind) {
  switch (kind) {
    case CollectiveKind::AllReduce: return "ALL_REDUCE";
    case CollectiveKind::ReduceScatter: return "REDUCE_SCATTER";
    case CollectiveKind::AllGather: return "ALL_GATHER";
    case CollectiveKind::AllToAll: return "ALL_TO_ALL";
  }
  return "?";
}

namespace {

double parseDouble(const std::string& text, const std::string& where) {
  return parseFiniteNumber(text, kExitInput, where);
}

TopologyKind parseTopology(const std::string& name, const std::string& where) {
  if (name == "Ring") return TopologyKind::Ring;
  if (name == "FullyConnected") return TopologyKind::FullyConnected;
  if (name == "Switch") return TopologyKind::Switch;
  fail(kExitInput, where + ": topology '" + name + "' not supported (Ring, FullyConnected, Switch)");
}

// A network.yml value as its scalars: a flow or block list, one scalar, or nothing.
std::vector<std::string> scalarList(const YAML::Node& value, const std::string& where) {
  if (value.IsNull()) return {};
  if (value.IsScalar()) return {value.Scalar()};
  std::vector<std::string> items;
  for (const auto& item : value) {
    if (!value.IsSequence() || !item.IsScalar()) fail(kExitInput, where + " must be a value or a list of values");
    items.push_back(item.Scalar());
  }
  return items;
}

// --- system.json helpers -------------------------------------------------------------------------

struct SystemFile {
  const Json& root;
  const std::string& path;

  [[noreturn]] void bad(const std::string& key, const std::string& what) const {
    fail(kExitInput, path + ": \"" + key + "\" " + what);
  }

  const Json* get(const std::string& key) const {
    auto it = root.find(key);
    return it == root.end() ? nullptr : &*it;
  }

  double number(const std::string& key, double fallback) const {
    const Json* v = get(key);
    if (!v) return fallback;
    if (v->is_boolean()) return v->get<bool>() ? 1 : 0;
    if (!v->is_number()) bad(key, "must be a number");
    return v->get<double>();
  }

  int integer(const std::string& key, int fallback, int minimum) const {
    double value = number(key, fallback);
    if (value != std::floor(value) || value < minimum || value > 2e9) {
      bad(key, "must be an integer >= " + std::to_string(minimum));
    }
    return static_cast<int>(value);
  }

  std::string text(const std::string& key, const std::string& fallback) const {
    const Json* v = get(key);
    if (!v) return fallback;
    if (!v->is_string()) bad(key, "must be a string");
    return v->get<std::string>();
  }
};

AlgoChoice parseAlgo(const std::string& name, const SystemFile& file, const std::string& key) {
  AlgoChoice choice;
  if (name == "ring") return choice;
  if (name == "halvingDoubling") {
    choice.algo = CollectiveAlgo::HalvingDoubling;
    return choice;
  }
  if (name.rfind("direct", 0) == 0) {
    choice.algo = CollectiveAlgo::Direct;
    std::string window = name.substr(6);
    if (window.empty()) return choice;
    if (window.find_first_not_of("0123456789") == std::string::npos && window.size() < 9 && std::stoi(window) > 0) {
      choice.window = std::stoi(window);
      return choice;
    }
  }
  file.bad(key, "has unsupported implementation '" + name + "' (supported: ring, direct, direct<W>, halvingDoubling)");
}

std::vector<AlgoChoice> parseImplementationList(const SystemFile& file, const std::string& key, size_t networkDims) {
  std::vector<AlgoChoice> list;
  const Json* v = file.get(key);
  if (!v) return list;
  if (!v->is_array()) file.bad(key, "must be a list of strings");
  for (const auto& item : *v) {
    if (!item.is_string()) file.bad(key, "must be a list of strings");
    list.push_back(parseAlgo(item.get<std::string>(), file, key));
  }
  if (list.size() > networkDims) {
    file.bad(key, "lists " + std::to_string(list.size()) + " dimensions but the network has " +
                      std::to_string(networkDims));
  }
  return list;
}

}  // namespace

NetworkConfig loadNetworkConfig(const std::string& path) {
  YAML::Node root = readYamlFile(path, "network configuration");
  if (!root.IsMap() && !root.IsNull()) fail(kExitInput, path + ": expected 'key: value' lines");
  std::vector<std::string> topology, npus, bandwidth, latency;
  for (const auto& entry : root) {
    std::string key = entry.first.Scalar();
    auto items = scalarList(entry.second, path + ": line " + std::to_string(entry.second.Mark().line + 1) + ": '" + key + "'");
    if (key == "topology") topology = items;
    else if (key == "npus_count") npus = items;
    else if (key == "bandwidth") bandwidth = items;
    else if (key == "latency") latency = items;
    else fail(kExitInput, path + ": unknown key '" + key + "' (expected topology, npus_count, bandwidth, latency)");
  }
  if (topology.empty()) fail(kExitInput, path + ": 'topology' is missing or empty");
  size_t n = topology.size();
  if (npus.size() != n || bandwidth.size() != n || latency.size() != n) {
    fail(kExitInput, path + ": topology, npus_count, bandwidth and latency must list the same number of dimensions");
  }
  NetworkConfig config;
  long long total = 1;
  for (size_t i = 0; i < n; ++i) {
    std::string where = path + " dimension " + std::to_string(i);
    NetworkDim dim;
    dim.topology = parseTopology(topology[i], where);
    double count = parseDouble(npus[i], where + " npus_count");
    if (count < 1 || count != std::floor(count) || count > 1e6) fail(kExitInput, where + ": npus_count must be an integer >= 1");
    dim.npus = static_cast<int>(count);
    dim.bandwidthGBps = parseDouble(bandwidth[i], where + " bandwidth");
    if (dim.bandwidthGBps <= 0) fail(kExitInput, where + ": bandwidth must be > 0");
    dim.latencyNs = parseDouble(latency[i], where + " latency");
    if (dim.latencyNs < 0) fail(kExitInput, where + ": latency must be >= 0");
    total *= dim.npus;
    if (total > (1 << 20)) fail(kExitInput, path + ": too many NPUs");
    config.dims.push_back(dim);
  }
  return config;
}

SystemConfig loadSystemConfig(const std::string& path, const NetworkConfig& network) {
  Json root = readJsonFile(path);
  if (!root.is_object()) fail(kExitInput, path + ": expected a JSON object");
  SystemFile file{root, path};
  SystemConfig config;

  std::string policy = file.text("scheduling-policy", "LIFO");
  if (policy == "LIFO") config.scheduling = SchedulingPolicy::LIFO;
  else if (policy == "FIFO") config.scheduling = SchedulingPolicy::FIFO;
  else if (policy == "EXPLICIT") config.scheduling = SchedulingPolicy::Explicit;
  else file.bad("scheduling-policy", "must be LIFO, FIFO or EXPLICIT (got '" + policy + "')");

  std::string optimization = file.text("collective-optimization", "baseline");
  if (optimization == "localBWAware") config.localBWAware = true;
  else if (optimization != "baseline") file.bad("collective-optimization", "must be baseline or localBWAware (got '" + optimization + "')");

  config.endpointDelay = file.integer("endpoint-delay", 10, 0);
  config.activeChunksPerDim = file.integer("active-chunks-per-dimension", 1, 1);
  config.datasetSplits = file.integer("preferred-dataset-splits", 1, 1);
  const char* keys[kCollectiveKinds] = {"all-reduce-implementation", "reduce-scatter-implementation",
                                        "all-gather-implementation", "all-to-all-implementation"};
  for (int k = 0; k < kCollectiveKinds; ++k) {
    config.implementations[k] = parseImplementationList(file, keys[k], network.dims.size());
  }
  config.localMemBwGBps = file.number("local-mem-bw", 0);
  if (config.localMemBwGBps < 0) file.bad("local-mem-bw", "must be >= 0");
  config.peakPerfTflops = file.number("peak-perf", 0);
  config.roofline = file.integer("roofline-enabled", 0, 0) != 0;
  config.replayOnly = file.integer("replay-only", 0, 0) != 0;
  if (config.roofline && (config.peakPerfTflops <= 0 || config.localMemBwGBps <= 0)) {
    file.bad("roofline-enabled", "needs \"peak-perf\" > 0 and \"local-mem-bw\" > 0");
  }
  config.collectiveTable = besideFile(path, file.text("collective-table", ""));
  if (file.integer("model-shared-bus", 0, 0) != 0) file.bad("model-shared-bus", "= 1 (LogGP bus model) is not supported");
  return config;
}

MemoryConfig loadMemoryConfig(const std::string& path) {
  Json root = readJsonFile(path);
  if (!root.is_object()) fail(kExitInput, path + ": expected a JSON object");
  SystemFile file{root, path};
  MemoryConfig config;
  std::string type = file.text("memory-type", "");
  if (type == "NO_MEMORY_EXPANSION") config.kind = MemoryKind::None;
  else if (type == "PER_NPU_MEMORY_EXPANSION") config.kind = MemoryKind::PerNpu;
  else if (type == "PER_NODE_MEMORY_EXPANSION") config.kind = MemoryKind::PerNode;
  else if (type == "MEMORY_POOL") config.kind = MemoryKind::Pool;
  else file.bad("memory-type", "must be NO_MEMORY_EXPANSION, PER_NPU_MEMORY_EXPANSION, PER_NODE_MEMORY_EXPANSION or MEMORY_POOL (got '" + type + "')");
  double latency = file.number("remote-mem-latency", 0);
  double bandwidth = file.number("remote-mem-bw", 0);
  if (latency < 0) file.bad("remote-mem-latency", "must be >= 0");
  config.latencyNs = static_cast<uint64_t>(latency);
  config.bandwidthGBps = bandwidth < 0 ? 0 : static_cast<uint64_t>(bandwidth);  // integer GB/s, as upstream
  if (config.kind != MemoryKind::None && config.bandwidthGBps == 0) file.bad("remote-mem-bw", "must be >= 1");
  if (config.kind == MemoryKind::PerNode) config.npusPerNode = file.integer("num-npus-per-node", 1, 1);
  config.tiers = parseMemoryTiers(root, path);
  return config;
}

CommGroups loadCommGroups(const std::string& path, int totalNpus) {
  CommGroups groups(totalNpus);
  if (path.empty() || path.find("empty") != std::string::npos) return groups;
  Json root = readJsonFile(path);
  if (!root.is_object()) fail(kExitInput, path + ": expected an object {\"<group id>\": [npu ids...]}");
  for (const auto& [key, value] : root.items()) {
    if (!value.is_array() || value.empty()) fail(kExitInput, path + ": group \"" + key + "\" must be a non-empty list of NPU ids");
    std::vector<int> members;
    std::set<int> seen;
    for (const auto& item : value) {
      double number = item.is_number() ? item.get<double>() : -1;
      if (number != std::floor(number) || number < 0 || number >= totalNpus) {
        fail(kExitInput, path + ": group \"" + key + "\" has an invalid NPU id (network has " + std::to_string(totalNpus) + " NPUs)");
      }
      int id = static_cast<int>(number);
      if (!seen.insert(id).second) fail(kExitInput, path + ": group \"" + key + "\" lists NPU " + std::to_string(id) + " twice");
      members.push_back(id);
    }
    for (int id : members) groups[id] = members;  // the last group naming an NPU wins, as upstream C2
  }
  return groups;
}

}  // namespace engine
