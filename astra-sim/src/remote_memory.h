// Remote memory model for MEM_LOAD / MEM_STORE: latency + floor(bytes / bandwidth) ns per request;
// MEMORY_POOL serves all NPUs FIFO, PER_NODE one FIFO per node, PER_NPU has no contention; a request for a
// memory tier (memory_tiers.h) is served by that tier.
#pragma once

#include <deque>
#include <vector>

#include "config.h"
#include "event_queue.h"

namespace engine {

class RemoteMemory : public EventHandler {
 public:
  RemoteMemory(EventQueue& events, const MemoryConfig& config, int npus);

  bool available() const { return config_.kind != MemoryKind::None; }
  void issue(int npu, uint64_t bytes, int64_t tier, Completion done);
  size_t tiers() const { return config_.tiers.size(); }

  void handleEvent(uint64_t server) override;  // the head request of `server` is served

 private:
  struct Request {
    int npu;
    uint64_t bytes;
    Completion done;
  };
  Tick serviceTime(uint64_t bytes) const { return config_.latencyNs + bytes / config_.bandwidthGBps; }
  void startHead(size_t server);

  EventQueue& events_;
  MemoryConfig config_;
  std::vector<std::deque<Request>> servers_;  // FIFO queues; the head is in service
};

}  // namespace engine
