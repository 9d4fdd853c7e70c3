// Global discrete-event queue with integer-nanosecond time.
//
// Events of one timestamp run in FIFO order, including events added for the current timestamp while it
// is being processed. Events registered by an NPU ("system layer" events) are grouped per NPU and
// timestamp: all events an NPU registers for tick t run together, at the position of the first of them,
// as long as that group has not finished running yet. This reproduces the reference's per-NPU event
// lists, which decide the order of same-tick completions (and therefore which node gets a free slot).
#pragma once

#include <cstdint>
#include <unordered_map>
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

  Tick now() const { return now_; }
  bool empty() const { return heap_.empty(); }
  Tick nextTime() const { return heap_.front().time; }

  // A network-level event: its own FIFO position.
  void schedule(Tick delay, EventHandler* handler, uint64_t arg);
  // A system-level event of `npu`: joins the NPU's group for that tick if it is still pending.
  void scheduleForNpu(int npu, Tick delay, EventHandler* handler, uint64_t arg);

  // Runs every event of the earliest timestamp (now becomes that timestamp).
  void runNextTimestamp();
  // Moves time forward while no event is pending.
  void advanceTo(Tick t) { now_ = t; }

 private:
  struct Event {
    Tick time;
    uint64_t group;  // FIFO position of the group
    uint64_t seq;    // FIFO position inside the group
    EventHandler* handler;
    uint64_t arg;
    int npu;  // -1 for network-level events
  };
  struct Later {
    bool operator()(const Event& a, const Event& b) const {
      if (a.time != b.time) return a.time > b.time;
      if (a.group != b.group) return a.group > b.group;
      return a.seq > b.seq;
    }
  };

  void push(const Event& e);
  Event pop();

  Tick now_ = 0;
  uint64_t counter_ = 0;
  std::vector<Event> heap_;
  std::vector<std::unordered_map<Tick, uint64_t>> openGroups_;  // per NPU: tick -> group id
};

}  // namespace engine
