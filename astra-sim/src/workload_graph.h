// A workload's node graph in the form the workload layer runs it: built once (from an ET file or a
// chain listing) and shared, read-only, by every NPU that runs it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <vector>

#include "et_reader.h"

namespace engine {

struct WorkloadGraph {
  std::vector<EtNode> nodes;
  std::vector<uint64_t> ids;         // node ids, compact for the ready queue
  std::vector<uint32_t> childStart;  // children of node i: children[childStart[i] .. childStart[i + 1])
  std::vector<uint32_t> children;    // per node ascending index
  std::vector<uint32_t> parents;     // per node: how many distinct parents it waits for (a listed parent
                                     // that is no node of the graph counts: it keeps the node waiting)
  static constexpr size_t kNone = SIZE_MAX;
  size_t duplicate = kNone;  // the first node whose id an earlier node has, if any
  // A chain listing's graph: from this node on each node is the only child of the one before and its only
  // parent, and it is issued only once every earlier node completed (kNone for an ET file's graph).
  size_t sequentialFrom = kNone;
};

using SharedGraph = std::shared_ptr<const WorkloadGraph>;

// The graph of `nodes`, their dependencies taken from `dataDeps` (any order, repeats allowed).
SharedGraph buildGraph(std::vector<EtNode> nodes);

// The nodes of a graph, indexable and iterable like the vector they live in.
class NodeView {
 public:
  NodeView() = default;
  explicit NodeView(const std::vector<EtNode>& nodes) : data_(nodes.data()), size_(nodes.size()) {}
  const EtNode& operator[](size_t i) const { return data_[i]; }
  const EtNode* begin() const { return data_; }
  const EtNode* end() const { return data_ + size_; }
  size_t size() const { return size_; }
  bool empty() const { return size_ == 0; }

 private:
  const EtNode* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace engine
