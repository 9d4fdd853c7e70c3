// Minimal JSON reader for the engine's configuration files (system, memory, communicator groups).
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

namespace engine {

class JsonValue {
 public:
  enum class Kind { Null, Bool, Number, String, Array, Object };

  Kind kind = Kind::Null;
  bool boolean = false;
  double number = 0;
  std::string text;                                   // String
  std::vector<JsonValue> items;                       // Array
  std::vector<std::pair<std::string, JsonValue>> members;  // Object, in file order

  const JsonValue* find(const std::string& key) const;
  bool isNumber() const { return kind == Kind::Number; }
  bool isString() const { return kind == Kind::String; }
  bool isArray() const { return kind == Kind::Array; }
  bool isObject() const { return kind == Kind::Object; }
};

// Parses `text`; throws SimError(kExitInput) naming `origin` and the line on malformed input.
JsonValue parseJson(const std::string& text, const std::string& origin);

// Reads and parses a whole file; throws SimError(kExitInput) if it cannot be read or parsed.
JsonValue readJsonFile(const std::string& path);

std::string readTextFile(const std::string& path, const std::string& what);

}  // namespace engine
