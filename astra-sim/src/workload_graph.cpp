#include "workload_graph.h"

#include <algorithm>
#include <unordered_map>

namespace engine {

SharedGraph buildGraph(std::vector<EtNode> nodes) {
  auto graph = std::make_shared<WorkloadGraph>();
  WorkloadGraph& g = *graph;
  g.nodes = std::move(nodes);
  size_t n = g.nodes.size();
  g.ids.resize(n);
  bool dense = true;  // ids 0..n-1 in order (chains, the usual ET file): the index is the id
  for (size_t i = 0; i < n; ++i) {
    g.ids[i] = g.nodes[i].id;
    dense = dense && g.ids[i] == i;
  }
  std::unordered_map<uint64_t, uint32_t> indexOf;
  if (!dense) {
    indexOf.reserve(n * 2);
    for (uint32_t i = 0; i < n; ++i) {
      if (!indexOf.emplace(g.ids[i], i).second) {
        g.duplicate = i;  // loading fails there; the graph is never run
        return graph;
      }
    }
  }
  auto find = [&](uint64_t id) -> int64_t {
    if (dense) return id < n ? static_cast<int64_t>(id) : int64_t{-1};
    auto it = indexOf.find(id);
    return it == indexOf.end() ? int64_t{-1} : static_cast<int64_t>(it->second);
  };
  g.parents.assign(n, 0);
  g.childStart.assign(n + 1, 0);
  for (size_t i = 0; i < n; ++i) {
    std::vector<uint64_t>& deps = g.nodes[i].dataDeps;
    std::sort(deps.begin(), deps.end());
    deps.erase(std::unique(deps.begin(), deps.end()), deps.end());
    g.parents[i] = static_cast<uint32_t>(deps.size());
    for (uint64_t parent : deps) {
      int64_t at = find(parent);
      if (at >= 0) ++g.childStart[at + 1];
    }
  }
  for (size_t i = 0; i < n; ++i) g.childStart[i + 1] += g.childStart[i];
  g.children.resize(g.childStart[n]);
  std::vector<uint32_t> fill(g.childStart.begin(), g.childStart.end() - 1);
  for (uint32_t i = 0; i < n; ++i) {
    for (uint64_t parent : g.nodes[i].dataDeps) {
      int64_t at = find(parent);
      if (at >= 0) g.children[fill[at]++] = i;
    }
  }
  return graph;
}

}  // namespace engine
