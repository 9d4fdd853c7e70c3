#include "yaml_lists.h"

#include <sstream>

#include "common.h"

namespace engine {

namespace {

std::string trim(const std::string& s) {
  size_t b = s.find_first_not_of(" \t\r");
  if (b == std::string::npos) return "";
  size_t e = s.find_last_not_of(" \t\r");
  return s.substr(b, e - b + 1);
}

std::string stripComment(const std::string& line) {
  bool inQuote = false;
  char quote = 0;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (inQuote) {
      if (c == quote) inQuote = false;
    } else if (c == '"' || c == '\'') {
      inQuote = true;
      quote = c;
    } else if (c == '#' && (i == 0 || line[i - 1] == ' ' || line[i - 1] == '\t')) {
      return line.substr(0, i);
    }
  }
  return line;
}

std::string unquote(const std::string& s) {
  if (s.size() >= 2 && (s.front() == '"' || s.front() == '\'') && s.back() == s.front()) return s.substr(1, s.size() - 2);
  return s;
}

std::vector<std::string> splitFlowList(const std::string& inner) {
  std::vector<std::string> out;
  std::string item;
  std::stringstream ss(inner);
  while (std::getline(ss, item, ',')) {
    item = trim(item);
    if (!item.empty()) out.push_back(unquote(item));
  }
  return out;
}

}  // namespace

std::vector<std::pair<std::string, std::vector<std::string>>> parseYamlLists(const std::string& text,
                                                                             const std::string& origin) {
  std::vector<std::pair<std::string, std::vector<std::string>>> entries;
  std::istringstream in(text);
  std::string raw;
  int lineNo = 0;
  auto error = [&](const std::string& what) {
    fail(kExitInput, origin + ": line " + std::to_string(lineNo) + ": " + what);
  };
  while (std::getline(in, raw)) {
    ++lineNo;
    std::string line = trim(stripComment(raw));
    if (line.empty() || line == "---") continue;
    if (line.rfind("- ", 0) == 0 || line == "-") {  // block list item of the previous key
      if (entries.empty()) error("list item without a key");
      entries.back().second.push_back(unquote(trim(line.substr(1))));
      continue;
    }
    size_t colon = line.find(':');
    if (colon == std::string::npos) error("expected 'key: value'");
    std::string key = unquote(trim(line.substr(0, colon)));
    std::string value = trim(line.substr(colon + 1));
    std::vector<std::string> items;
    if (!value.empty() && value.front() == '[') {
      if (value.back() != ']') error("unterminated flow list for '" + key + "'");
      items = splitFlowList(value.substr(1, value.size() - 2));
    } else if (!value.empty()) {
      items.push_back(unquote(value));
    }
    entries.emplace_back(key, items);
  }
  return entries;
}

}  // namespace engine
