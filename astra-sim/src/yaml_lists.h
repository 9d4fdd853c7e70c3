// Reader for the small YAML subset used by network.yml: `key: [a, b]`, `key: value` or block lists.
#pragma once

#include <string>
#include <utility>
#include <vector>

namespace engine {

// Returns (key, list of scalar strings) in file order; throws SimError(kExitInput) naming `origin`.
std::vector<std::pair<std::string, std::vector<std::string>>> parseYamlLists(const std::string& text,
                                                                             const std::string& origin);

}  // namespace engine
