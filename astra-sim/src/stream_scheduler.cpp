#include "stream_scheduler.h"

#include "npu.h"

namespace engine {

namespace {

// Event kinds of a stream, in the low bits of the event argument.
enum StreamEvent : uint64_t { kEndpointDelayDone = 0, kPacketReady = 1, kPacketReceived = 2 };
constexpr uint64_t kCollectiveTagBase = 1ull << 40;  // keeps collective messages apart from ET tags

}  // namespace

Stream::Stream(Npu& owner, int id, int priority, DataSet* dataset, std::vector<PhaseSpec> phases)
    : priority(priority), dataset(dataset), owner_(owner), tag_(kCollectiveTagBase + static_cast<uint64_t>(id)),
      phases_(std::move(phases)) {}

void Stream::startPhase() {
  initialized = true;
  run_.reset(phases_[nextPhase_ - 1]);
  run_.start(*this);
}

void Stream::releasePacket(uint64_t bytes, bool reduced) {
  uint64_t arg = kEndpointDelayDone | (reduced ? 4u : 0u) | (bytes << 3);
  owner_.schedule(phases_[nextPhase_ - 1].endpointDelay, this, arg);
}

void Stream::sendPacket(const Packet& packet) {
  owner_.fabric().send(tag_, owner_.id(), packet.dst, packet.bytes, Completion{});
  owner_.fabric().recv(tag_, packet.src, owner_.id(), packet.bytes, Completion{this, kPacketReceived});
}

void Stream::handleEvent(uint64_t arg) {
  switch (arg & 3) {
    case kEndpointDelayDone:
      if (arg & 4) {
        owner_.schedule(owner_.reductionDelay(arg >> 3), this, kPacketReady);
        return;
      }
      [[fallthrough]];
    case kPacketReady:
      if (run_.onPacketReady(*this)) owner_.scheduler().advance(this);  // may delete this
      return;
    case kPacketReceived:
      run_.onPacketReceived(*this);
      return;
  }
}

StreamScheduler::~StreamScheduler() {
  for (auto& queue : queues_) {
    for (Stream* s : queue.streams) delete s;
  }
}

void StreamScheduler::advance(Stream* stream) {
  int previous = stream->queue;
  if (!stream->hasNextPhase()) {
    // The collective's completion runs first (it may start the next collective on this NPU);
    // only then does this stream leave its queue, as in the reference.
    DataSet* dataset = stream->dataset;
    if (--dataset->remainingStreams == 0) {
      Completion done = dataset->done;
      delete dataset;
      done.fire();
    }
    if (previous >= 0) {
      remove(queues_[previous], stream);
      queues_[previous].running--;
      startWaiting(queues_[previous]);
    }
    delete stream;
    return;
  }
  if (previous >= 0) remove(queues_[previous], stream);
  const PhaseSpec& phase = stream->takeNextPhase();
  stream->queue = phase.queue;
  stream->initialized = false;
  insertByPriority(queues_[phase.queue], stream);
  startWaiting(queues_[phase.queue]);
  if (previous >= 0) {
    queues_[previous].running--;
    startWaiting(queues_[previous]);
  }
}

void StreamScheduler::insertByPriority(Queue& queue, Stream* stream) {
  auto it = queue.streams.begin();
  while (it != queue.streams.end() && ((*it)->initialized || (*it)->priority >= stream->priority)) ++it;
  queue.streams.insert(it, stream);
}

// Starts waiting streams while the queue has room; the first `running` entries are the running ones.
void StreamScheduler::startWaiting(Queue& queue) {
  if (queue.running >= threshold_ || queue.running >= static_cast<int>(queue.streams.size())) return;
  auto it = queue.streams.begin();
  std::advance(it, queue.running);
  while (it != queue.streams.end() && queue.running < threshold_) {
    Stream* stream = *it;
    ++it;
    queue.running++;
    stream->startPhase();
  }
}

void StreamScheduler::remove(Queue& queue, Stream* stream) {
  for (auto it = queue.streams.begin(); it != queue.streams.end(); ++it) {
    if (*it == stream) {
      queue.streams.erase(it);
      return;
    }
  }
}

}  // namespace engine
