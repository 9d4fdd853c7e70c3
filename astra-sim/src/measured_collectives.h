// Collectives timed by the measured table instead of the network model.
//
// The members of a group issue their collectives in the same order; the k-th one an NPU issues in a
// group meets the k-th of every other member. When the last member has issued it, every member's
// collective completes the table's time later (the time of the whole collective, start to end, as the
// table measures it). Members must agree on the type and the size.
#pragma once

#include <map>
#include <string>
#include <utility>
#include <vector>

#include "collective_table.h"
#include "event_queue.h"

namespace engine {

class MeasuredCollectives {
 public:
  MeasuredCollectives(EventQueue& events, CollectiveTable table) : events_(events), table_(std::move(table)) {}

  bool covers(CollectiveKind kind, const std::vector<int>& group) const { return table_.covers(kind, group); }

  // NPU `npu` issues a covered collective over `group` (sorted member ids, `npu` among them); `done`
  // fires on `npu` when it completes. Returns why it cannot run, or "" when joined.
  std::string join(int npu, CollectiveKind kind, uint64_t bytes, const std::vector<int>& group, Completion done);

 private:
  struct Instance {
    CollectiveKind kind;
    uint64_t bytes;
    std::vector<std::pair<int, Completion>> arrived;  // (npu, completion) in issue order
  };
  struct Group {
    std::map<int, uint64_t> issued;        // per member: collectives issued so far
    std::map<uint64_t, Instance> pending;  // k -> the k-th collective, until its last member issued it
  };

  EventQueue& events_;
  CollectiveTable table_;
  std::map<std::vector<int>, Group> groups_;
};

}  // namespace engine
