// The workload layer of one NPU: the node graph of one .et file, the ready queue (ascending node id),
// the per-NPU slots (CPU, GPU compute, GPU communication, and PIM: the processing-in-memory units of
// its memory, for COMP nodes with `is_pim_op`) and the timing of every node kind.
#pragma once

#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "et_reader.h"
#include "event_queue.h"
#include "fold.h"
#include "workload_graph.h"

namespace engine {

class Npu;

class Workload : public EventHandler {
 public:
  explicit Workload(Npu& npu) : npu_(npu) {}

  // Replaces the node graph with the nodes of `path` (the NPU must be idle). Throws SimError.
  void load(const std::string& path, std::vector<EtNode> nodes) { load(path, buildGraph(std::move(nodes))); }
  // The same for a graph built already (shared with the other NPUs that run it).
  void load(const std::string& path, SharedGraph graph);
  // Issues the initially ready nodes (the finish check runs too: an empty workload finishes at once).
  void start();
  // Runs the loaded workload for the whole of `fold->group` (fold.h), before start(); false (and not
  // folded) when a collective's members would not finish together, or a member's send or receive would
  // not be the representative's shifted by the member's offset. fold(nullptr) ends folding.
  bool fold(const Fold* fold);

  bool active() const { return active_; }      // loaded and not finished
  bool finished() const { return !active_; }   // nothing loaded counts as finished
  const std::string& path() const { return path_; }
  // Nodes not completed yet, ascending id.
  std::vector<std::pair<uint64_t, std::string>> remainingNodes() const;

  void handleEvent(uint64_t nodeIndex) override;  // node completion

 private:
  enum class Slot { Cpu, Compute, Comm, Pim, None };

  Slot slotOf(const EtNode& node) const;
  bool slotFree(Slot slot) const { return slot == Slot::None || busy_[static_cast<int>(slot)] == 0; }
  void occupy(const EtNode& node);
  void releaseSlot(const EtNode& node);

  void issueReadyNodes();
  void issue(uint32_t index);
  void skip(uint32_t index);
  void complete(uint32_t index);
  void releaseChildren(uint32_t index);
  void remove(uint32_t index);
  void checkFinished();
  void writeSpan(uint32_t index);
  bool messagesAlike(const Fold& fold, const EtNode& node) const;
  struct SelfTime {
    Tick time;
    Tick gpu;      // what it adds to the NPU's GPU compute time
    bool skipped;  // it completes at once, without an event
  };
  std::optional<SelfTime> selfTime(uint32_t index) const;
  bool startRun(uint32_t index);
  void completeRun();
  void sendMembersMessages(const EtNode& node);
  void claimMembersMessages(uint32_t index);

  void validate(const EtNode& node) const;
  [[noreturn]] void failNode(const EtNode& node, const std::string& what) const;
  Tick computeTime(const EtNode& node) const;

  Npu& npu_;
  const Fold* fold_ = nullptr;
  std::vector<Tick> foldedTimes_;  // folded: each collective node's duration for the whole group
  std::string path_;
  bool active_ = false;
  SharedGraph graph_;
  NodeView nodes_;                       // graph_->nodes
  const uint64_t* ids_ = nullptr;        // graph_->ids
  const uint32_t* childStart_ = nullptr;  // graph_->childStart
  const uint32_t* children_ = nullptr;   // graph_->children
  std::vector<uint32_t> pendingParents_;
  std::vector<bool> removed_;
  std::vector<Tick> issuedAt_;  // issue tick per node, for --span-file
  size_t remaining_ = 0;
  int busy_[4] = {0, 0, 0, 0};
  using ReadyEntry = std::pair<uint64_t, uint32_t>;  // (node id, index)
  // Min-heap on (id, index); entries are distinct, so the order they leave in is fixed.
  std::vector<ReadyEntry> ready_;
  void pushReady(uint32_t index);
  uint32_t popReady();
  std::vector<uint32_t> deferred_;  // ready nodes whose slot is busy (stack shared by nested issue rounds)
  uint32_t runFirst_ = UINT32_MAX;  // a collapsed run in flight (startRun): its first and last node
  uint32_t runLast_ = 0;
};

}  // namespace engine
