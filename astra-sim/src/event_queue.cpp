#include "event_queue.h"

#include <algorithm>

namespace engine {

void EventQueue::push(const Event& e) {
  heap_.push_back(e);
  std::push_heap(heap_.begin(), heap_.end(), Later());
}

EventQueue::Event EventQueue::pop() {
  std::pop_heap(heap_.begin(), heap_.end(), Later());
  Event e = heap_.back();
  heap_.pop_back();
  return e;
}

void EventQueue::schedule(Tick delay, EventHandler* handler, uint64_t arg) {
  uint64_t id = counter_++;
  push(Event{now_ + delay, id, id, handler, arg, -1});
}

void EventQueue::scheduleForNpu(int npu, Tick delay, EventHandler* handler, uint64_t arg) {
  Tick time = now_ + delay;
  auto [it, inserted] = openGroups_[npu].try_emplace(time, counter_);
  uint64_t seq = counter_++;
  push(Event{time, it->second, seq, handler, arg, npu});
}

void EventQueue::runNextTimestamp() {
  if (heap_.empty()) return;
  now_ = heap_.front().time;
  while (!heap_.empty() && heap_.front().time == now_) {
    Event e = pop();
    e.handler->handleEvent(e.arg);
    if (e.npu >= 0) {
      bool groupContinues = !heap_.empty() && heap_.front().time == e.time && heap_.front().group == e.group;
      if (!groupContinues) openGroups_[e.npu].erase(e.time);
    }
  }
}

}  // namespace engine
