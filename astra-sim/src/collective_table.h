// Measured collective times: the optional "collective-table" file named in system.json.
//
// For each (collective type, group size) the file lists message sizes in bytes and the measured time of
// the whole collective in ns. A collective whose type and group size have an entry takes its time from
// the entry (see interpolate() for between and beyond the measured sizes); every other collective keeps
// the network model. Format and timing rule: astra-sim/README.md, "Measured collective table".
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common.h"
#include "config.h"

namespace engine {

// One (type, group size) entry: strictly increasing sizes and their times.
struct MeasuredCurve {
  std::vector<double> bytes;
  std::vector<double> ns;
};

// Time of `bytes` on the curve: linear in bytes between neighbouring measured sizes; below the smallest,
// the smallest size's time; beyond the largest, the last segment's slope (never below the last time).
double interpolate(const MeasuredCurve& curve, double bytes);

class CollectiveTable {
 public:
  // An empty `path` is no table. A file that cannot be read or breaks the format fails with exit 1.
  static CollectiveTable load(const std::string& path);

  // The curve that times `kind` collectives over `group` (sorted NPU ids), and a time on it. A group is
  // covered (the curve is not null) by an entry of its size whose "members" hold the whole group, or one
  // of its size without "members".
  const MeasuredCurve* curve(CollectiveKind kind, const std::vector<int>& group) const { return curveFor(kind, group); }
  static Tick time(const MeasuredCurve& curve, uint64_t bytes);

 private:
  // An entry: the curve and the NPUs it is for (empty: any group of its size).
  struct Scoped {
    std::vector<int> members;  // sorted
    MeasuredCurve curve;
  };
  const MeasuredCurve* curveFor(CollectiveKind kind, const std::vector<int>& group) const;

  std::map<std::pair<int, int>, std::vector<Scoped>> curves_;  // (kind, group size) -> its entries
};

// `name` as given when absolute, else relative to the folder of `configPath` ("" stays "").
std::string besideFile(const std::string& configPath, const std::string& name);

}  // namespace engine
