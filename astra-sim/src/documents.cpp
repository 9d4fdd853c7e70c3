#include "documents.h"

#include "common.h"

namespace engine {

Json readJsonFile(const std::string& path, const std::string& what) {
  std::string text = readTextFile(path, what);
  try {
    return Json::parse(text);
  } catch (const Json::exception& e) {
    std::string message = e.what();  // "[json.exception.<kind>.<id>] <what went wrong>"
    fail(kExitInput, path + ": invalid JSON: " + message.substr(message.find("] ") + 2));
  }
}

YAML::Node readYamlFile(const std::string& path, const std::string& what) {
  std::string text = readTextFile(path, what);
  try {
    return YAML::Load(text);
  } catch (const YAML::ParserException& e) {
    fail(kExitInput, path + ": invalid YAML at line " + std::to_string(e.mark.line + 1) + ": " + e.msg);
  }
}

}  // namespace engine
