#include "message_fabric.h"

namespace engine {

MessageFabric::~MessageFabric() {
  for (Transfer* t : allTransfers_) delete t;
}

void MessageFabric::Fifo::push(Transfer* t) {
  t->next = nullptr;
  if (tail) tail->next = t;
  else head = t;
  tail = t;
}

MessageFabric::Transfer* MessageFabric::Fifo::pop() {
  Transfer* t = head;
  head = t->next;
  if (!head) tail = nullptr;
  return t;
}

MessageFabric::Transfer* MessageFabric::newTransfer() {
  if (freeTransfers_.empty()) {
    allTransfers_.push_back(new Transfer());
    return allTransfers_.back();
  }
  Transfer* t = freeTransfers_.back();
  freeTransfers_.pop_back();
  *t = Transfer();
  return t;
}

void MessageFabric::release(Transfer* t) { freeTransfers_.push_back(t); }

void MessageFabric::dropIfIdle(std::unordered_map<Key, Channel, KeyHash>::iterator channel) {
  if (channel->second.unmatchedSends.empty() && channel->second.unmatchedRecvs.empty()) channels_.erase(channel);
}

void MessageFabric::send(uint64_t tag, int src, int dst, uint64_t bytes, Completion onArrival) {
  Tick delay = network_.delay(src, dst, bytes);
  Transfer* t = newTransfer();
  t->key = Key{tag, bytes, src, dst};
  t->onArrival = onArrival;
  t->due = events_.now() + delay;
  auto channel = channels_.try_emplace(t->key).first;
  if (!channel->second.unmatchedRecvs.empty()) {
    Transfer* waiting = channel->second.unmatchedRecvs.pop();
    t->onReceived = waiting->onReceived;
    t->matched = true;
    release(waiting);
    dropIfIdle(channel);
  } else {
    channel->second.unmatchedSends.push(t);
  }
  events_.schedule(delay, this, reinterpret_cast<uint64_t>(t));
}

void MessageFabric::recv(uint64_t tag, int src, int dst, uint64_t bytes, Completion onReceived) {
  auto channel = channels_.try_emplace(Key{tag, bytes, src, dst}).first;
  if (channel->second.unmatchedSends.empty()) {
    Transfer* waiting = newTransfer();
    waiting->onReceived = onReceived;
    channel->second.unmatchedRecvs.push(waiting);
    return;
  }
  Transfer* t = channel->second.unmatchedSends.pop();
  dropIfIdle(channel);
  t->onReceived = onReceived;
  t->matched = true;
  // Data already there: the receive completes in a zero-delay event of its own.
  if (t->arrived) events_.schedule(0, this, reinterpret_cast<uint64_t>(t) | kLateReceive);
}

std::optional<Tick> MessageFabric::claim(uint64_t tag, int src, int dst, uint64_t bytes) {
  auto channel = channels_.find(Key{tag, bytes, src, dst});
  if (channel == channels_.end() || channel->second.unmatchedSends.empty()) return std::nullopt;
  Transfer* t = channel->second.unmatchedSends.pop();
  dropIfIdle(channel);
  t->onReceived = Completion{};
  t->matched = true;
  Tick due = t->due;
  if (t->arrived) release(t);
  return due;
}

void MessageFabric::handleEvent(uint64_t arg) {
  Transfer* t = reinterpret_cast<Transfer*>(arg & ~kLateReceive);
  if (arg & kLateReceive) {
    Completion received = t->onReceived;
    release(t);
    received.fire();
    return;
  }
  t->arrived = true;
  t->onArrival.fire();
  if (t->matched) {
    Completion received = t->onReceived;
    release(t);
    received.fire();
  }
}

}  // namespace engine
