// The step protocol's compact chains (`chain` command, README "Step protocol"): a text listing of one
// NPU's ops in order, with a repeated run written once, expanded into the nodes of an ET.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "workload_graph.h"

namespace engine {

// Nodes 0..n-1 in listing order; the first `parallel` have no parents, the next waits for all of them,
// every later one for the one before it (the graph holds these dependencies; the nodes' dataDeps stay
// empty). Throws SimError(kExitInput) naming `name` and the line.
SharedGraph parseChain(std::string_view text, const std::string& name);

// parseChain for a stream of chains: a graph that no workload holds any more is refilled (its vectors and
// its nodes' names keep their memory) instead of a new one allocated.
class ChainReader {
 public:
  SharedGraph parse(std::string_view text, const std::string& name);

 private:
  std::shared_ptr<WorkloadGraph> spare();

  std::vector<std::shared_ptr<WorkloadGraph>> graphs_;  // every graph this reader made
  size_t next_ = 0;                                     // where the search for a free one starts
};

}  // namespace engine
