#include "collective_phase.h"

namespace engine {

namespace {

int log2Exact(int n) {
  int k = 0;
  while ((1 << k) < n) ++k;
  return (1 << k) == n ? k : -1;
}

// Message sizes a halving-doubling phase sends, in order.
std::vector<uint64_t> halvingDoublingMessages(const PhaseSpec& spec, int k) {
  std::vector<uint64_t> sizes;
  int n = spec.ring->size();
  bool gather = spec.kind == CollectiveKind::AllGather;
  uint64_t bytes = gather ? spec.inputBytes : spec.inputBytes / 2;
  int offset = gather ? n / 2 : 1;
  double multiplier = gather ? 0.5 : 2;
  int count = spec.kind == CollectiveKind::AllReduce ? 2 * k : k;
  for (int i = 0; i < count; ++i) {
    sizes.push_back(bytes);
    offset = static_cast<int>(offset * multiplier);
    bytes = static_cast<uint64_t>(bytes / multiplier);
    if (offset == n && spec.kind == CollectiveKind::AllReduce) {
      multiplier = 0.5;
      offset = static_cast<int>(offset * multiplier);
      bytes = static_cast<uint64_t>(bytes / multiplier);
    }
  }
  return sizes;
}

}  // namespace

uint64_t phaseOutputBytes(const PhaseSpec& spec) {
  uint64_t n = static_cast<uint64_t>(spec.ring->size());
  switch (spec.kind) {
    case CollectiveKind::ReduceScatter: return spec.inputBytes / n;
    case CollectiveKind::AllGather: return spec.inputBytes * n;
    default: return spec.inputBytes;
  }
}

std::string phaseProblem(const PhaseSpec& spec) {
  int n = spec.ring->size();
  if (spec.algo.algo == CollectiveAlgo::HalvingDoubling) {
    if (spec.kind == CollectiveKind::AllToAll) return "halvingDoubling cannot run ALL_TO_ALL";
    int k = log2Exact(n);
    if (k < 0) return "halvingDoubling needs a power-of-two number of NPUs, the ring has " + std::to_string(n);
    for (uint64_t bytes : halvingDoublingMessages(spec, k)) {
      if (bytes == 0) return "halvingDoubling would send a 0-byte message (chunk of " + std::to_string(spec.inputBytes) + " bytes is smaller than 2 x " + std::to_string(n) + ")";
    }
    return "";
  }
  uint64_t message = spec.kind == CollectiveKind::AllGather ? spec.inputBytes : spec.inputBytes / static_cast<uint64_t>(n);
  if (message == 0) return "a " + std::string(collectiveName(spec.kind)) + " step of " + std::to_string(spec.inputBytes) + " bytes over " + std::to_string(n) + " NPUs would send 0-byte messages";
  return "";
}

void PhaseRun::reset(const PhaseSpec& spec) {
  spec_ = spec;
  n_ = spec.ring->size();
  self_ = spec.ring->selfIndex;
  packets_.clear();
  head_ = 0;
  freePackets_ = 0;
  received_ = 0;
  zeroDelayLeft_ = 0;
  reducedLeft_ = 0;
  toggle_ = false;
  bool allReduce = spec.kind == CollectiveKind::AllReduce;
  messageBytes_ = spec.kind == CollectiveKind::AllGather ? spec.inputBytes : spec.inputBytes / static_cast<uint64_t>(n_);
  switch (spec.algo.algo) {
    case CollectiveAlgo::Ring:
      parallel_ = 1;
      roundSize_ = n_ - 1;
      streamCount_ = allReduce ? 2 * (n_ - 1) : (spec.kind == CollectiveKind::AllToAll ? n_ * (n_ - 1) / 2 : n_ - 1);
      break;
    case CollectiveAlgo::Direct:
      parallel_ = spec.algo.window < 0 ? n_ - 1 : std::min(spec.algo.window, n_ - 1);
      roundSize_ = parallel_;
      streamCount_ = allReduce ? 2 * (n_ - 1) : n_ - 1;
      middlePoint_ = n_ - 1;
      break;
    case CollectiveAlgo::HalvingDoubling: {
      int k = log2Exact(n_);
      parallel_ = 1;
      roundSize_ = k - 1;
      streamCount_ = allReduce ? 2 * k : k;
      bool gather = spec.kind == CollectiveKind::AllGather;
      messageBytes_ = gather ? spec.inputBytes : spec.inputBytes / 2;
      rankOffset_ = gather ? n_ / 2 : 1;
      offsetMultiplier_ = gather ? 0.5 : 2;
      break;
    }
  }
  if (spec.algo.algo == CollectiveAlgo::HalvingDoubling) {
    receiver_ = sender_ = halvingDoublingPartner();
  } else {
    receiver_ = ringStep(self_, !spec.anticlockwise);
    sender_ = ringStep(self_, spec.anticlockwise);
  }
}

int PhaseRun::ringStep(int index, bool forward) const { return forward ? (index + 1) % n_ : (index - 1 + n_) % n_; }

int PhaseRun::halvingDoublingPartner() const {
  if (rankOffset_ == 0) return self_;
  bool upper = (self_ / rankOffset_) % 2 == 0;
  return upper ? (self_ + rankOffset_) % n_ : (self_ - rankOffset_ % n_ + n_) % n_;
}

void PhaseRun::start(PhaseHost& host) {
  for (int i = 0; i < parallel_; ++i) insertPacket(host);
}

void PhaseRun::onPacketReceived(PhaseHost& host) {
  ++received_;
  insertPacket(host);
}

// Packets come in rounds: the first `parallel_` of a round start from this NPU's own data (no
// reduction), the rest carry received data and are reduced in odd rounds of reducing collectives.
void PhaseRun::insertPacket(PhaseHost& host) {
  if (zeroDelayLeft_ == 0 && reducedLeft_ == 0) {
    zeroDelayLeft_ = parallel_;
    reducedLeft_ = roundSize_;
    toggle_ = !toggle_;
  }
  bool reduced = false;
  if (zeroDelayLeft_ > 0) {
    --zeroDelayLeft_;
  } else {
    reduced = spec_.kind == CollectiveKind::ReduceScatter || (spec_.kind == CollectiveKind::AllReduce && toggle_);
    --reducedLeft_;
  }
  packets_.push_back(Packet{messageBytes_, spec_.ring->members[receiver_], spec_.ring->members[sender_]});
  host.releasePacket(messageBytes_, reduced);
  advancePeers();
}

void PhaseRun::advancePeers() {
  if (spec_.algo.algo == CollectiveAlgo::Direct) {
    bool forward = !spec_.anticlockwise;
    receiver_ = ringStep(receiver_, forward);
    if (receiver_ == self_) receiver_ = ringStep(receiver_, forward);
    sender_ = ringStep(sender_, !forward);
    if (sender_ == self_) sender_ = ringStep(sender_, !forward);
  } else if (spec_.algo.algo == CollectiveAlgo::HalvingDoubling) {
    rankOffset_ = static_cast<int>(rankOffset_ * offsetMultiplier_);
    messageBytes_ = static_cast<uint64_t>(messageBytes_ / offsetMultiplier_);
    if (rankOffset_ == n_ && spec_.kind == CollectiveKind::AllReduce) {  // turn to the doubling half
      offsetMultiplier_ = 0.5;
      rankOffset_ = static_cast<int>(rankOffset_ * offsetMultiplier_);
      messageBytes_ = static_cast<uint64_t>(messageBytes_ / offsetMultiplier_);
    }
    receiver_ = sender_ = halvingDoublingPartner();
  }
}

bool PhaseRun::sendNext(PhaseHost& host) {
  if (head_ == packets_.size() || streamCount_ == 0 || freePackets_ == 0) return false;
  Packet packet = packets_[head_];
  host.sendPacket(packet);  // may receive (and insert a packet) right away
  ++head_;
  if (head_ == packets_.size()) {
    packets_.clear();
    head_ = 0;
  }
  --freePackets_;
  --streamCount_;
  return true;
}

bool PhaseRun::onPacketReady(PhaseHost& host) {
  ++freePackets_;
  bool directAllReduceSecondHalf = spec_.algo.algo == CollectiveAlgo::Direct &&
                                   spec_.kind == CollectiveKind::AllReduce && streamCount_ <= middlePoint_;
  if (directAllReduceSecondHalf) {
    // The second half starts at the first ready packet after every first-half message arrived.
    if (received_ < middlePoint_) return false;
    for (int i = 0; i < parallel_; ++i) sendNext(host);
    return finished();
  }
  sendNext(host);
  return finished();
}

}  // namespace engine
