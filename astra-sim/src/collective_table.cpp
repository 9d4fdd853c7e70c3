#include "collective_table.h"

#include <algorithm>
#include <cmath>

#include "documents.h"

namespace engine {

namespace {

using json = Json;

std::optional<CollectiveKind> kindNamed(const std::string& name) {
  for (int k = 0; k < kCollectiveKinds; ++k) {
    if (name == collectiveName(static_cast<CollectiveKind>(k))) return static_cast<CollectiveKind>(k);
  }
  return std::nullopt;
}

// One entry of "collectives", checked; `where` names the file and the entry in every message.
class EntryReader {
 public:
  EntryReader(const json& entry, std::string where) : entry_(entry), where_(std::move(where)) {}

  [[noreturn]] void bad(const std::string& what) const { fail(kExitInput, where_ + ": " + what); }

  void checkKeys() const {
    if (!entry_.is_object()) bad("must be an object with \"type\", \"npus\", \"bytes\" and \"ns\"");
    for (const auto& item : entry_.items()) {
      const std::string& key = item.key();
      if (key != "type" && key != "npus" && key != "bytes" && key != "ns" && key != "source" && key != "members") {
        bad("unknown key \"" + key + "\" (expected type, npus, bytes, ns, members, source)");
      }
    }
  }

  CollectiveKind kind() const {
    const json& type = required("type");
    std::optional<CollectiveKind> kind = type.is_string() ? kindNamed(type.get<std::string>()) : std::nullopt;
    if (!kind) bad("\"type\" must be one of ALL_REDUCE, REDUCE_SCATTER, ALL_GATHER, ALL_TO_ALL");
    return *kind;
  }

  int npus() const {
    const json& npus = required("npus");
    if (!npus.is_number_integer() || npus.get<int64_t>() < 2 || npus.get<int64_t>() > (1 << 20)) {
      bad("\"npus\" must be an integer >= 2 (the group size)");
    }
    return static_cast<int>(npus.get<int64_t>());
  }

  // The optional "members": the NPU ids the entry is for (sorted, distinct, at least the group size).
  std::vector<int> members(int groupSize) const {
    auto it = entry_.find("members");
    if (it == entry_.end()) return {};
    std::vector<int> ids;
    if (it->is_array()) {
      for (const json& value : *it) {
        if (!value.is_number_integer() || value.get<int64_t>() < 0) bad("\"members\" must be a list of NPU ids");
        ids.push_back(static_cast<int>(value.get<int64_t>()));
      }
    }
    std::sort(ids.begin(), ids.end());
    if (!it->is_array() || std::adjacent_find(ids.begin(), ids.end()) != ids.end() ||
        static_cast<int>(ids.size()) < groupSize) {
      bad("\"members\" must list at least \"npus\" distinct NPU ids");
    }
    return ids;
  }

  MeasuredCurve curve() const {
    MeasuredCurve curve{numbers("bytes"), numbers("ns")};
    if (curve.bytes.empty()) bad("\"bytes\" must list at least one message size");
    if (curve.ns.size() != curve.bytes.size()) bad("\"bytes\" and \"ns\" must have the same length");
    for (size_t i = 0; i < curve.bytes.size(); ++i) {
      if (curve.bytes[i] <= 0 || curve.bytes[i] != std::floor(curve.bytes[i])) bad("\"bytes\" must be positive integers");
      if (i > 0 && curve.bytes[i] <= curve.bytes[i - 1]) bad("\"bytes\" must be strictly increasing");
      if (curve.ns[i] < 0) bad("\"ns\" must be >= 0");
    }
    return curve;
  }

 private:
  const json& required(const std::string& key) const {
    auto it = entry_.find(key);
    if (it == entry_.end()) bad("missing \"" + key + "\"");
    return *it;
  }

  std::vector<double> numbers(const std::string& key) const {
    const json& list = required(key);
    if (!list.is_array()) bad("\"" + key + "\" must be a list of numbers");
    std::vector<double> values;
    for (const json& value : list) {
      if (!value.is_number() || !std::isfinite(value.get<double>())) bad("\"" + key + "\" must be a list of numbers");
      values.push_back(value.get<double>());
    }
    return values;
  }

  const json& entry_;
  std::string where_;
};

}  // namespace

double interpolate(const MeasuredCurve& curve, double bytes) {
  const std::vector<double>& x = curve.bytes;
  const std::vector<double>& y = curve.ns;
  if (bytes <= x.front() || x.size() == 1) return bytes <= x.front() ? y.front() : y.back();
  size_t hi = std::upper_bound(x.begin(), x.end(), bytes) - x.begin();
  if (hi == x.size()) hi = x.size() - 1;  // beyond the largest size: extend the last segment
  size_t lo = hi - 1;
  double value = y[lo] + (y[hi] - y[lo]) * (bytes - x[lo]) / (x[hi] - x[lo]);
  return bytes > x.back() ? std::max(value, y.back()) : value;
}

CollectiveTable CollectiveTable::load(const std::string& path) {
  CollectiveTable table;
  if (path.empty()) return table;
  json root = readJsonFile(path, "the collective table (\"collective-table\" of the system configuration)");
  if (!root.is_object() || !root.contains("collectives") || !root["collectives"].is_array()) {
    fail(kExitInput, path + ": expected an object with a list \"collectives\"");
  }
  for (const auto& item : root.items()) {
    if (item.key() != "collectives" && item.key() != "source") {
      fail(kExitInput, path + ": unknown key \"" + item.key() + "\" (expected collectives, source)");
    }
  }
  const json& entries = root["collectives"];
  for (size_t i = 0; i < entries.size(); ++i) {
    EntryReader entry(entries[i], path + ": collectives[" + std::to_string(i) + "]");
    entry.checkKeys();
    CollectiveKind kind = entry.kind();
    int npus = entry.npus();
    EntryReader named(entries[i], path + ": collectives[" + std::to_string(i) + "] (" + collectiveName(kind) +
                                      " over " + std::to_string(npus) + " NPUs)");
    std::vector<Scoped>& same = table.curves_[{static_cast<int>(kind), npus}];
    Scoped scoped{named.members(npus), named.curve()};
    for (const Scoped& other : same) {
      if (other.members == scoped.members) named.bad("a second entry for the same type, group size and members");
    }
    same.push_back(std::move(scoped));
  }
  return table;
}

const MeasuredCurve* CollectiveTable::curveFor(CollectiveKind kind, const std::vector<int>& group) const {
  auto it = curves_.find({static_cast<int>(kind), static_cast<int>(group.size())});
  if (it == curves_.end()) return nullptr;
  const MeasuredCurve* unscoped = nullptr;
  for (const Scoped& entry : it->second) {
    if (entry.members.empty()) {
      unscoped = &entry.curve;
    } else if (std::includes(entry.members.begin(), entry.members.end(), group.begin(), group.end())) {
      return &entry.curve;
    }
  }
  return unscoped;
}

Tick CollectiveTable::time(const MeasuredCurve& curve, uint64_t bytes) {
  double ns = interpolate(curve, static_cast<double>(bytes));
  return static_cast<Tick>(std::llround(ns));
}

std::string besideFile(const std::string& configPath, const std::string& name) {
  if (name.empty() || name.front() == '/') return name;
  size_t slash = configPath.find_last_of('/');
  return slash == std::string::npos ? name : configPath.substr(0, slash + 1) + name;
}

}  // namespace engine
