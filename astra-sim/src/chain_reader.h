// The step protocol's compact chains (`chain` command, README "Step protocol"): a text listing of one
// NPU's ops in order, with a repeated run written once, expanded into the nodes of an ET.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "workload_graph.h"

namespace engine {

// Nodes 0..n-1 in listing order; the first `parallel` have no parents, the next waits for all of them,
// every later one for the one before it (the graph holds these dependencies; the nodes' dataDeps stay
// empty). Throws SimError(kExitInput) naming `name` and the line.
SharedGraph parseChain(std::string_view text, const std::string& name);

}  // namespace engine
