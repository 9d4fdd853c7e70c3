// Configuration files parsed by nlohmann/json and yaml-cpp; every failure names the file.
#pragma once

#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include <string>

namespace engine {

using Json = nlohmann::ordered_json;  // objects keep their keys in file order

// Throws SimError(kExitInput) naming `path` (and the line) if it cannot be read or parsed.
Json readJsonFile(const std::string& path, const std::string& what = "JSON file");
YAML::Node readYamlFile(const std::string& path, const std::string& what);

}  // namespace engine
