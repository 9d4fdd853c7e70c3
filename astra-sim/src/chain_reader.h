// The step protocol's compact chains (`chain` command, README "Step protocol"): a text listing of one
// NPU's ops in order, with a repeated run written once, expanded into the nodes of an ET.
#pragma once

#include <string>
#include <vector>

#include "et_reader.h"

namespace engine {

// Nodes 0..n-1 in listing order; the first `parallel` have no parents, the next waits for all of them,
// every later one for the one before it. Throws SimError(kExitInput) naming `name` and the line.
std::vector<EtNode> parseChain(const std::string& text, const std::string& name);

}  // namespace engine
