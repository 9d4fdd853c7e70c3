// One phase of one chunk of a collective on one ring of NPUs (a network dimension or a communicator
// group), executed packet by packet like the reference system layer: every packet first waits the
// endpoint delay, reduced packets then the local reduction delay, and only then may it be sent.
#pragma once

#include <cstdint>
#include <vector>

#include "common.h"
#include "config.h"

namespace engine {

// The NPUs of one ring in ring order, and this NPU's position in it.
struct RingView {
  std::vector<int> members;
  int selfIndex = 0;
  int size() const { return static_cast<int>(members.size()); }
};

struct PhaseSpec {
  CollectiveKind kind = CollectiveKind::AllReduce;
  AlgoChoice algo;
  const RingView* ring = nullptr;
  int queue = 0;
  bool anticlockwise = false;
  uint64_t inputBytes = 0;
  Tick endpointDelay = 0;
};

uint64_t phaseOutputBytes(const PhaseSpec& spec);
// Empty when the phase can run; otherwise why it cannot (zero-byte messages, bad ring size, ...).
std::string phaseProblem(const PhaseSpec& spec);

struct Packet {
  uint64_t bytes;
  int dst;
  int src;
};

// What a running phase asks of the stream that owns it.
class PhaseHost {
 public:
  virtual void releasePacket(uint64_t bytes, bool reduced) = 0;  // start endpoint (+reduction) delay
  virtual void sendPacket(const Packet& packet) = 0;            // send it and post the matching receive

 protected:
  ~PhaseHost() = default;
};

class PhaseRun {
 public:
  void reset(const PhaseSpec& spec);
  void start(PhaseHost& host);
  void onPacketReceived(PhaseHost& host);
  // A released packet finished its delays. Returns true when the whole phase is finished.
  bool onPacketReady(PhaseHost& host);

 private:
  void insertPacket(PhaseHost& host);
  bool sendNext(PhaseHost& host);
  void advancePeers();
  int ringStep(int index, bool forward) const;
  int halvingDoublingPartner() const;
  bool finished() const { return streamCount_ == 0 && freePackets_ == parallel_; }

  PhaseSpec spec_;
  int n_ = 0;
  int self_ = 0;
  int parallel_ = 1;       // packets injected at once
  int streamCount_ = 0;    // messages still to send
  int freePackets_ = 0;    // packets that finished their delays and were not sent yet
  int received_ = 0;
  int zeroDelayLeft_ = 0;  // packets of the current round that start a round (never reduced)
  int reducedLeft_ = 0;    // remaining packets of the current round
  int roundSize_ = 0;
  bool toggle_ = false;    // odd rounds reduce (All-Reduce: the reduce-scatter half)
  int middlePoint_ = 0;    // direct All-Reduce: second half starts after this many receptions
  uint64_t messageBytes_ = 0;
  int receiver_ = 0;       // ring indices of the current peers
  int sender_ = 0;
  int rankOffset_ = 1;     // halving-doubling distance
  double offsetMultiplier_ = 2;
  std::vector<Packet> packets_;  // FIFO: packets_[head_..]
  size_t head_ = 0;
};

}  // namespace engine
