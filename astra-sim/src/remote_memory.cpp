#include "remote_memory.h"

namespace engine {

RemoteMemory::RemoteMemory(EventQueue& events, const MemoryConfig& config, int npus) : events_(events), config_(config) {
  if (config_.kind == MemoryKind::Pool) servers_.resize(1);
  if (config_.kind == MemoryKind::PerNode) servers_.resize((npus + config_.npusPerNode - 1) / config_.npusPerNode);
}

void RemoteMemory::issue(int npu, uint64_t bytes, int64_t tier, Completion done) {
  if (tier > 0) {
    events_.scheduleForNpu(npu, config_.tiers[tier - 1].serviceTime(bytes), done.handler, done.arg);
    return;
  }
  if (config_.kind == MemoryKind::PerNpu) {
    events_.scheduleForNpu(npu, serviceTime(bytes), done.handler, done.arg);
    return;
  }
  size_t server = config_.kind == MemoryKind::Pool ? 0 : static_cast<size_t>(npu / config_.npusPerNode);
  servers_[server].push_back(Request{npu, bytes, done});
  if (servers_[server].size() == 1) startHead(server);
}

void RemoteMemory::startHead(size_t server) {
  const Request& head = servers_[server].front();
  events_.scheduleForNpu(head.npu, serviceTime(head.bytes), this, server);
}

void RemoteMemory::handleEvent(uint64_t server) {
  Completion done = servers_[server].front().done;
  servers_[server].pop_front();
  if (!servers_[server].empty()) startHead(server);
  done.fire();
}

}  // namespace engine
