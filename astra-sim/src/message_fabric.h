// Send/receive matching on top of the network: the k-th send and the k-th receive with the same
// (tag, src, dst, size) match. A send completes at its arrival; a receive completes at
// max(arrival, time the receive was posted) - in a zero-delay event if the data already arrived.
// A folded receive (fold.h) also claims its group members' messages (`claim`).
#pragma once

#include <cstdint>
#include <optional>
#include <unordered_map>
#include <vector>

#include "event_queue.h"
#include "network.h"

namespace engine {

class MessageFabric : public EventHandler {
 public:
  MessageFabric(EventQueue& events, const Network& network) : events_(events), network_(network) {}
  ~MessageFabric();

  void send(uint64_t tag, int src, int dst, uint64_t bytes, Completion onArrival);
  void recv(uint64_t tag, int src, int dst, uint64_t bytes, Completion onReceived);
  // Receives the next unmatched message of the channel for nobody (its send still completes at its
  // arrival): the tick it arrives at, or nullopt when no such message was sent yet.
  std::optional<Tick> claim(uint64_t tag, int src, int dst, uint64_t bytes);

  void handleEvent(uint64_t arg) override;  // arrival of a transfer, or a late receive completing


 private:
  struct Key {
    uint64_t tag;
    uint64_t bytes;
    int src;
    int dst;
    bool operator==(const Key& o) const { return tag == o.tag && bytes == o.bytes && src == o.src && dst == o.dst; }
  };
  struct KeyHash {
    size_t operator()(const Key& k) const {
      uint64_t h = k.tag * 0x9E3779B97F4A7C15ull;
      h ^= k.bytes + 0x7F4A7C159E3779B9ull + (h << 6) + (h >> 2);
      h ^= (static_cast<uint64_t>(static_cast<uint32_t>(k.src)) << 32 | static_cast<uint32_t>(k.dst)) + (h << 6) + (h >> 2);
      return static_cast<size_t>(h);
    }
  };
  // A send, or a receive posted before its send (then only `onReceived` and `next` are used).
  struct Transfer {
    Key key;
    Completion onArrival;
    Completion onReceived;
    Transfer* next = nullptr;  // FIFO link inside a channel
    Tick due = 0;              // a send's arrival tick
    bool arrived = false;
    bool matched = false;
  };
  struct Fifo {
    Transfer* head = nullptr;
    Transfer* tail = nullptr;
    bool empty() const { return head == nullptr; }
    void push(Transfer* t);
    Transfer* pop();
  };
  struct Channel {
    Fifo unmatchedSends;
    Fifo unmatchedRecvs;
  };

  static constexpr uint64_t kLateReceive = 1;  // tags the event argument (transfers are aligned)

  Transfer* newTransfer();
  void release(Transfer* t);
  void dropIfIdle(std::unordered_map<Key, Channel, KeyHash>::iterator channel);

  EventQueue& events_;
  const Network& network_;
  std::unordered_map<Key, Channel, KeyHash> channels_;
  std::vector<Transfer*> freeTransfers_;
  std::vector<Transfer*> allTransfers_;
};

}  // namespace engine
