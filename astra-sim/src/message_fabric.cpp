#include "message_fabric.h"

namespace engine {

MessageFabric::~MessageFabric() {
  for (Transfer* t : allTransfers_) delete t;
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

void MessageFabric::dropIfIdle(const Key& key) {
  auto it = channels_.find(key);
  if (it != channels_.end() && it->second.unmatchedSends.empty() && it->second.unmatchedRecvs.empty()) channels_.erase(it);
}

void MessageFabric::send(uint64_t tag, int src, int dst, uint64_t bytes, Completion onArrival) {
  Tick delay = network_.delay(src, dst, bytes);
  Transfer* t = newTransfer();
  t->key = Key{tag, bytes, src, dst};
  t->onArrival = onArrival;
  Channel& channel = channels_[t->key];
  if (!channel.unmatchedRecvs.empty()) {
    t->onReceived = channel.unmatchedRecvs.front();
    t->matched = true;
    channel.unmatchedRecvs.pop_front();
    dropIfIdle(t->key);
  } else {
    channel.unmatchedSends.push_back(t);
  }
  events_.schedule(delay, this, reinterpret_cast<uint64_t>(t));
}

void MessageFabric::recv(uint64_t tag, int src, int dst, uint64_t bytes, Completion onReceived) {
  Key key{tag, bytes, src, dst};
  Channel& channel = channels_[key];
  if (channel.unmatchedSends.empty()) {
    channel.unmatchedRecvs.push_back(onReceived);
    return;
  }
  Transfer* t = channel.unmatchedSends.front();
  channel.unmatchedSends.pop_front();
  dropIfIdle(key);
  t->onReceived = onReceived;
  t->matched = true;
  // Data already there: the receive completes in a zero-delay event of its own.
  if (t->arrived) events_.schedule(0, this, reinterpret_cast<uint64_t>(t) | kLateReceive);
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
