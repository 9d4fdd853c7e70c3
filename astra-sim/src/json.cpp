#include "json.h"

#include <cstdlib>
#include <fstream>
#include <sstream>

#include "common.h"

namespace engine {

const JsonValue* JsonValue::find(const std::string& key) const {
  for (const auto& member : members) {
    if (member.first == key) return &member.second;
  }
  return nullptr;
}

namespace {

class JsonParser {
 public:
  JsonParser(const std::string& text, const std::string& origin) : s_(text), origin_(origin) {}

  JsonValue parseDocument() {
    JsonValue value = parseValue();
    skipSpace();
    if (pos_ != s_.size()) error("unexpected trailing characters");
    return value;
  }

 private:
  const std::string& s_;
  const std::string& origin_;
  size_t pos_ = 0;

  [[noreturn]] void error(const std::string& what) const {
    size_t line = 1;
    for (size_t i = 0; i < pos_ && i < s_.size(); ++i) line += s_[i] == '\n';
    fail(kExitInput, origin_ + ": invalid JSON at line " + std::to_string(line) + ": " + what);
  }

  void skipSpace() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n' || s_[pos_] == '\r')) ++pos_;
  }

  bool consume(char c) {
    skipSpace();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }

  void expect(char c) {
    if (!consume(c)) error(std::string("expected '") + c + "'");
  }

  bool consumeWord(const char* word) {
    size_t n = std::char_traits<char>::length(word);
    if (s_.compare(pos_, n, word) == 0) {
      pos_ += n;
      return true;
    }
    return false;
  }

  JsonValue parseValue() {
    skipSpace();
    if (pos_ >= s_.size()) error("unexpected end of input");
    JsonValue v;
    char c = s_[pos_];
    if (c == '{') {
      parseObject(v);
    } else if (c == '[') {
      parseArray(v);
    } else if (c == '"') {
      v.kind = JsonValue::Kind::String;
      v.text = parseString();
    } else if (consumeWord("true")) {
      v.kind = JsonValue::Kind::Bool;
      v.boolean = true;
    } else if (consumeWord("false")) {
      v.kind = JsonValue::Kind::Bool;
    } else if (consumeWord("null")) {
      v.kind = JsonValue::Kind::Null;
    } else {
      v.kind = JsonValue::Kind::Number;
      v.number = parseNumber();
    }
    return v;
  }

  void parseObject(JsonValue& v) {
    v.kind = JsonValue::Kind::Object;
    expect('{');
    if (consume('}')) return;
    do {
      skipSpace();
      if (pos_ >= s_.size() || s_[pos_] != '"') error("expected a string key");
      std::string key = parseString();
      expect(':');
      v.members.emplace_back(std::move(key), parseValue());
    } while (consume(','));
    expect('}');
  }

  void parseArray(JsonValue& v) {
    v.kind = JsonValue::Kind::Array;
    expect('[');
    if (consume(']')) return;
    do {
      v.items.push_back(parseValue());
    } while (consume(','));
    expect(']');
  }

  std::string parseString() {
    ++pos_;  // opening quote
    std::string out;
    while (pos_ < s_.size() && s_[pos_] != '"') {
      char c = s_[pos_++];
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= s_.size()) break;
      char e = s_[pos_++];
      switch (e) {
        case 'n': out += '\n'; break;
        case 't': out += '\t'; break;
        case 'r': out += '\r'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'u':  // keep non-ASCII escapes verbatim; config values are ASCII
          out += "\\u";
          break;
        default: out += e;
      }
    }
    if (pos_ >= s_.size()) error("unterminated string");
    ++pos_;  // closing quote
    return out;
  }

  double parseNumber() {
    const char* begin = s_.c_str() + pos_;
    char* end = nullptr;
    double value = std::strtod(begin, &end);
    if (end == begin) error("unexpected character '" + std::string(1, s_[pos_]) + "'");
    pos_ += static_cast<size_t>(end - begin);
    return value;
  }
};

}  // namespace

JsonValue parseJson(const std::string& text, const std::string& origin) {
  return JsonParser(text, origin).parseDocument();
}

std::string readTextFile(const std::string& path, const std::string& what) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(kExitInput, "cannot read " + what + " '" + path + "'");
  std::ostringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

JsonValue readJsonFile(const std::string& path) { return parseJson(readTextFile(path, "JSON file"), path); }

}  // namespace engine
