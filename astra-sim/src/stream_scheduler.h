// Chunk streams of collectives and the per-dimension queues that decide which of them run.
#pragma once

#include <list>
#include <vector>

#include "collective_phase.h"
#include "event_queue.h"

namespace engine {

class Npu;

// All chunks of one collective; `done` fires when the last chunk finished its last phase.
struct DataSet {
  int remainingStreams = 0;
  Completion done;
};

// One chunk of a collective, walking through its phases (one per used dimension).
class Stream final : public EventHandler, public PhaseHost {
 public:
  Stream(Npu& owner, int id, int priority, DataSet* dataset, std::vector<PhaseSpec> phases);

  void handleEvent(uint64_t arg) override;
  void releasePacket(uint64_t bytes, bool reduced) override;
  void sendPacket(const Packet& packet) override;

  void startPhase();  // called by the scheduler when the queue lets this stream run
  bool hasNextPhase() const { return nextPhase_ < phases_.size(); }
  const PhaseSpec& takeNextPhase() { return phases_[nextPhase_++]; }

  const int priority;
  DataSet* const dataset;
  int queue = -1;            // queue of the current phase, -1 before the first
  bool initialized = false;  // current phase started

 private:
  Npu& owner_;
  const uint64_t tag_;
  std::vector<PhaseSpec> phases_;
  size_t nextPhase_ = 0;
  PhaseRun run_;
};

// Queues per network dimension; at most `threshold` streams run per queue; waiting streams are
// ordered by priority (higher first), FIFO among equals, behind the running ones.
class StreamScheduler {
 public:
  StreamScheduler(int queueCount, int threshold) : queues_(queueCount), threshold_(threshold) {}
  ~StreamScheduler();

  // Moves a new stream to its first phase, or a stream that finished a phase to its next one
  // (finishing the stream, and possibly its collective, after its last phase).
  void advance(Stream* stream);

 private:
  struct Queue {
    std::list<Stream*> streams;  // running ones first
    int running = 0;
  };
  void insertByPriority(Queue& queue, Stream* stream);
  void startWaiting(Queue& queue);
  static void remove(Queue& queue, Stream* stream);

  std::vector<Queue> queues_;
  int threshold_;
};

}  // namespace engine
