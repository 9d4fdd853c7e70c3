#include "common.h"

#include <cmath>
#include <fstream>
#include <sstream>

namespace engine {

double parseFiniteNumber(const std::string& text, int code, const std::string& where) {
  size_t used = 0;
  double value = 0;
  try {
    value = std::stod(text, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (used == 0 || used != text.size() || !std::isfinite(value)) fail(code, where + ": '" + text + "' is not a number");
  return value;
}

std::string readTextFile(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(kExitInput, "cannot read " + what + " '" + path + "'");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

}  // namespace engine
