// Global discrete-event queue with integer-nanosecond time.
//
// Events of one timestamp run in FIFO order, including events added for the current timestamp while it
// is being processed. Events registered by an NPU ("system layer" events) are grouped per NPU and
// timestamp: all events an NPU registers for tick t run together, at the position of the first of them,
// as long as that group has not finished running yet. This reproduces the reference's per-NPU event
// lists, which decide the order of same-tick completions (and therefore which node gets a free slot).
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "common.h"

namespace engine {

class EventHandler {
 public:
  virtual void handleEvent(uint64_t arg) = 0;

 protected:
  ~EventHandler() = default;
};

// A callback target plus its argument; an empty one does nothing.
struct Completion {
  EventHandler* handler = nullptr;
  uint64_t arg = 0;
  void fire() const {
    if (handler) handler->handleEvent(arg);
  }
};

class EventQueue {
 public:
  explicit EventQueue(int npus) : openGroups_(npus) {}
  ~EventQueue();

  Tick now() const { return now_; }
  bool empty() const { return buckets_.empty(); }
  Tick nextTime() const { return buckets_.begin()->first; }

  // A network-level event: its own FIFO position.
  void schedule(Tick delay, EventHandler* handler, uint64_t arg);
  // A system-level event of `npu`: joins the NPU's group for that tick if it is still pending.
  void scheduleForNpu(int npu, Tick delay, EventHandler* handler, uint64_t arg);

  // Runs every event of the earliest timestamp (now becomes that timestamp).
  void runNextTimestamp();
  // Whether an event is being run and no other is pending, at any tick (its handler may ask).
  bool onlyRunning() const;
  // Moves time forward while no event is pending.
  void advanceTo(Tick t) { now_ = t; }

 private:
  static constexpr uint32_t kEnd = UINT32_MAX;
  struct Entry {
    EventHandler* handler;
    uint64_t arg;
    uint32_t next;  // next entry of the same group
  };
  struct Group {
    uint32_t head;
    uint32_t tail;
    int npu;  // -1 for network-level events
  };
  // All events of one timestamp: groups in FIFO order, each a linked list of entries.
  struct Bucket {
    std::vector<Entry> entries;
    std::vector<Group> groups;
  };
  struct OpenGroup {
    Tick time;
    Bucket* bucket;
    uint32_t group;
  };

  Bucket* bucketAt(Tick time);
  uint32_t addEntry(Bucket* bucket, EventHandler* handler, uint64_t arg);
  uint32_t addGroup(Bucket* bucket, uint32_t entry, int npu);  // a group of that one entry
  void closeGroup(int npu, Tick time);

  Tick now_ = 0;
  const Bucket* running_ = nullptr;  // while runNextTimestamp runs: its bucket, group and entry
  size_t runningGroup_ = 0;
  uint32_t runningEntry_ = 0;
  using Buckets = std::map<Tick, Bucket*>;
  Buckets buckets_;
  std::vector<Buckets::node_type> spareNodes_;  // run timestamps' map nodes, each with its emptied bucket
  std::vector<std::vector<OpenGroup>> openGroups_;  // per NPU: its groups not yet run
};

}  // namespace engine
