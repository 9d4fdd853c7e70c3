// Collectives timed by the measured table instead of the network model.
//
// The members of a group issue their collectives in the same order; the k-th one an NPU issues in a
// group meets the k-th of every other member. When the last member has issued it, every member's
// collective completes the table's time later (the time of the whole collective, start to end, as the
// table measures it). Members must agree on the type and the size.
#pragma once

#include <deque>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "collective_table.h"
#include "event_queue.h"

namespace engine {

class MeasuredCollectives {
 private:
  struct Group;

 public:
  MeasuredCollectives(EventQueue& events, CollectiveTable table) : events_(events), table_(std::move(table)) {}

  // What join() needs of one NPU's `kind` collectives over `group` (sorted member ids, `npu` among
  // them), looked up once: an NPU keeps it for every later such collective.
  struct Route {
    Group* group = nullptr;              // null: the table does not cover these collectives
    const MeasuredCurve* curve = nullptr;
    size_t member = 0;                   // the NPU's position in the group
  };
  Route route(int npu, CollectiveKind kind, const std::vector<int>& group);

  // NPU `npu` issues a covered collective (`route`: route(npu, kind, group) of its sorted group, `npu`
  // among them); `done` fires on `npu` when it completes. Returns why it cannot run, or "" when joined.
  std::string join(int npu, CollectiveKind kind, uint64_t bytes, const Route& route, Completion done);

 private:
  struct Instance {
    CollectiveKind kind;
    uint64_t bytes;
    std::vector<std::pair<int, Completion>> arrived;  // (npu, completion) in issue order
  };
  struct Group {
    std::vector<int> members;
    std::vector<uint64_t> issued;  // per member (position): collectives issued so far
    // The k-th collectives for k = completed, completed + 1, ...: until its last member issued it. They
    // complete in order (a member issues the k-th only after the (k-1)-th).
    std::deque<Instance> pending;
    uint64_t completed = 0;
    std::vector<std::vector<std::pair<int, Completion>>> spare;  // arrival lists to reuse
  };

  EventQueue& events_;
  CollectiveTable table_;
  std::map<std::vector<int>, Group> groups_;
};

}  // namespace engine
