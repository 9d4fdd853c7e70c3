#include "workload.h"

#include <algorithm>
#include <functional>

#include "npu.h"

namespace engine {

namespace {

bool simulatedCollective(int64_t type) {
  return type == kAllReduce || type == kReduceScatter || type == kAllGather || type == kAllToAll || type == kBroadcast;
}

CollectiveKind collectiveKindOf(int64_t type) {
  switch (type) {
    case kReduceScatter: return CollectiveKind::ReduceScatter;
    case kAllGather: return CollectiveKind::AllGather;
    case kAllToAll: return CollectiveKind::AllToAll;
    default: return CollectiveKind::AllReduce;
  }
}

bool isMemory(const EtNode& node) { return node.kind == NodeKind::MemLoad || node.kind == NodeKind::MemStore; }
bool runsAsCompute(const EtNode& node) { return node.isCpuOp || node.kind == NodeKind::Comp; }
bool isPim(const EtNode& node) { return node.isPimOp && !node.isCpuOp; }
bool isSkipped(const EtNode& node) { return node.durationNs == 0 && node.numOps == 0; }
bool simulatedAsCollective(const EtNode& node) {
  return node.kind == NodeKind::Collective && !node.isCpuOp && node.commType != kBroadcast;
}

// A collective of a folded workload: its duration when every member of the group enters it together.
std::optional<Tick> foldedTime(const Fold& fold, const EtNode& node) {
  return fold.probe->duration(collectiveKindOf(node.commType), static_cast<uint64_t>(node.commSize), node.involvedDim,
                              fold.group);
}

// Whether two collectives take the same time in a fold: foldedTime reads just these fields.
bool sameCollective(const EtNode& a, const EtNode& b) {
  return a.commType == b.commType && a.commSize == b.commSize && a.involvedDim == b.involvedDim;
}

constexpr uint32_t kNoNode = UINT32_MAX;

}  // namespace

// --- loading ------------------------------------------------------------------------------------

void Workload::failNode(const EtNode& node, const std::string& what) const {
  fail(kExitInput, path_ + " (NPU " + std::to_string(npu_.id()) + "): node " + std::to_string(node.id) + " '" +
                       node.name + "': " + what);
}

void Workload::validate(const EtNode& node) const {
  const SimContext& context = npu_.context();
  int npus = context.network.npus();
  if (node.kind == NodeKind::Metadata) failNode(node, "METADATA_NODE in the node stream is not supported (it would never complete)");
  if (node.kind == NodeKind::PimComp) failNode(node, "PIM_COMP_NODE is not supported");
  if (isMemory(node) && !context.memory.available()) {
    failNode(node, "memory node needs a remote memory (memory-type is NO_MEMORY_EXPANSION or no --remote-memory-configuration)");
  }
  if (isMemory(node) && (node.memoryTier < 0 || static_cast<uint64_t>(node.memoryTier) > context.memory.tiers())) {
    failNode(node, "memory_tier " + std::to_string(node.memoryTier) + " is not a tier of the remote memory (it lists " +
                       std::to_string(context.memory.tiers()) + " in \"memory-tiers\")");
  }
  if (context.system.roofline && runsAsCompute(node) && !isMemory(node) && !isSkipped(node) && node.numOps == 0) {
    failNode(node, "roofline is enabled but num_ops is 0 (the reference divides 0 by 0)");
  }
  if (node.isPimOp && node.kind != NodeKind::Comp) failNode(node, "is_pim_op is set on a node that is not a COMP node");
  if (node.isCpuOp || isMemory(node)) return;
  if (node.kind == NodeKind::Collective) {
    if (!simulatedCollective(node.commType)) failNode(node, "collective type " + std::to_string(node.commType) + " is not simulated (supported: ALL_REDUCE, REDUCE_SCATTER, ALL_GATHER, ALL_TO_ALL, BROADCAST)");
    if (node.commSize < 0) failNode(node, "negative comm_size");
    return;
  }
  if (node.kind == NodeKind::Send || node.kind == NodeKind::Recv) {
    bool send = node.kind == NodeKind::Send;
    int peer = send ? node.commDst : node.commSrc;
    if (node.commSize <= 0) failNode(node, std::string(send ? "send" : "receive") + " of comm_size " + std::to_string(node.commSize) + " (must be > 0)");
    if (peer < 0 || peer >= npus) failNode(node, std::string(send ? "comm_dst " : "comm_src ") + std::to_string(peer) + " is not an NPU of this network");
    if (peer == npu_.id()) failNode(node, std::string(send ? "send to" : "receive from") + " the NPU itself");
  }
}

void Workload::load(const std::string& path, SharedGraph graph) {
  path_ = path;
  fold_ = nullptr;
  graph_ = std::move(graph);
  const WorkloadGraph& g = *graph_;
  nodes_ = NodeView(g.nodes);
  ids_ = g.ids.data();
  childStart_ = g.childStart.data();
  children_ = g.children.data();
  size_t n = nodes_.size();
  for (size_t i = 0; i < n; ++i) {
    if (i == g.duplicate) failNode(nodes_[i], "duplicate node id");
    validate(nodes_[i]);
  }
  pendingParents_.assign(g.parents.begin(), g.parents.end());
  removed_.assign(n, false);
  issuedAt_.assign(n, 0);
  remaining_ = n;
  ready_.clear();
  for (uint32_t i = 0; i < n; ++i) {
    if (pendingParents_[i] == 0) pushReady(i);
  }
  if (!active_) ++npu_.context().activeWorkloads;
  active_ = true;
  runFirst_ = kNoNode;
}

void Workload::pushReady(uint32_t index) {
  ready_.emplace_back(ids_[index], index);
  std::push_heap(ready_.begin(), ready_.end(), std::greater<ReadyEntry>());
}

uint32_t Workload::popReady() {
  std::pop_heap(ready_.begin(), ready_.end(), std::greater<ReadyEntry>());
  uint32_t index = ready_.back().second;
  ready_.pop_back();
  return index;
}

void Workload::start() {
  issueReadyNodes();
  checkFinished();
}

bool Workload::fold(const Fold* fold) {
  fold_ = nullptr;
  if (fold == nullptr) return true;
  foldedTimes_.assign(nodes_.size(), 0);
  uint32_t timed = kNoNode;  // the last collective timed: a chain's layers repeat the same few
  for (uint32_t i = 0; i < nodes_.size(); ++i) {
    const EtNode& node = nodes_[i];
    if ((node.kind == NodeKind::Send || node.kind == NodeKind::Recv) && !messagesAlike(*fold, node)) return false;
    if (!simulatedAsCollective(node)) continue;
    if (timed != kNoNode && sameCollective(nodes_[timed], node)) {
      foldedTimes_[i] = foldedTimes_[timed];
      continue;
    }
    std::optional<Tick> time = foldedTime(*fold, node);
    if (!time) return false;
    foldedTimes_[i] = *time;
    timed = i;
  }
  fold_ = fold;
  return true;
}

// Every member's message of a send or receive: its peer is the representative's shifted by the member's
// offset in the group, an NPU outside the group. (Shifted messages take the same time: the analytical
// network's delay depends on each dimension's coordinate difference, which a shift of both ends keeps.)
bool Workload::messagesAlike(const Fold& fold, const EtNode& node) const {
  int representative = fold.group.front(), peer = node.kind == NodeKind::Send ? node.commDst : node.commSrc;
  for (int member : fold.group) {
    int shifted = peer + (member - representative);
    if (shifted < 0 || shifted >= npu_.context().network.npus()) return false;
    if (std::find(fold.group.begin(), fold.group.end(), shifted) != fold.group.end()) return false;
  }
  return true;
}

std::vector<std::pair<uint64_t, std::string>> Workload::remainingNodes() const {
  std::vector<std::pair<uint64_t, std::string>> out;
  for (uint32_t i = 0; i < nodes_.size(); ++i) {
    if (!removed_[i]) out.emplace_back(nodes_[i].id, nodes_[i].name);
  }
  std::sort(out.begin(), out.end());
  return out;
}

// --- slots --------------------------------------------------------------------------------------

Workload::Slot Workload::slotOf(const EtNode& node) const {
  if (node.isCpuOp) return Slot::Cpu;
  if (isPim(node)) return Slot::Pim;
  if (node.kind == NodeKind::Comp) return Slot::Compute;
  if (node.kind == NodeKind::Recv) return Slot::None;  // any number of receives may be outstanding
  return Slot::Comm;  // every other kind, INVALID included, needs the communication slot to issue
}

void Workload::occupy(const EtNode& node) {
  Slot slot = slotOf(node);
  if (slot != Slot::None) busy_[static_cast<int>(slot)]++;
}

void Workload::releaseSlot(const EtNode& node) {
  Slot slot = slotOf(node);
  if (slot != Slot::None) busy_[static_cast<int>(slot)]--;
}

// --- issuing ------------------------------------------------------------------------------------

// Issues ready nodes in ascending id; nodes whose slot is busy wait for the next completion.
void Workload::issueReadyNodes() {
  size_t base = deferred_.size();
  while (!ready_.empty()) {
    uint32_t index = popReady();
    if (slotFree(slotOf(nodes_[index]))) {
      issue(index);
    } else {
      deferred_.push_back(index);
    }
  }
  for (size_t i = base; i < deferred_.size(); ++i) pushReady(deferred_[i]);
  deferred_.resize(base);
}

void Workload::issue(uint32_t index) {
  if (startRun(index)) return;
  const EtNode& node = nodes_[index];
  SimContext& context = npu_.context();
  issuedAt_[index] = context.events.now();
  if (std::optional<SelfTime> self = selfTime(index)) {
    if (self->skipped) return skip(index);
    occupy(node);
    npu_.ticsGpuOps += self->gpu;
    npu_.schedule(self->time, this, index);
  } else if (isMemory(node)) {
    occupy(node);
    context.memory.issue(npu_.id(), node.tensorSize, node.memoryTier, Completion{this, index});
  } else if (node.kind == NodeKind::Collective) {
    occupy(node);
    std::string problem = npu_.startCollective(collectiveKindOf(node.commType), static_cast<uint64_t>(node.commSize),
                                               node.involvedDim, node.commPriority, Completion{this, index});
    if (!problem.empty()) failNode(node, problem);
  } else if (node.kind == NodeKind::Send) {
    occupy(node);
    context.fabric.send(static_cast<uint32_t>(node.commTag), npu_.id(), node.commDst, static_cast<uint64_t>(node.commSize), Completion{this, index});
    if (fold_) sendMembersMessages(node);
  } else {
    context.fabric.recv(static_cast<uint32_t>(node.commTag), node.commSrc, npu_.id(), static_cast<uint64_t>(node.commSize), Completion{this, index});
  }
}

// --- collapsed runs -----------------------------------------------------------------------------

// How issue() times a node whose time is known when it is issued and which meets nothing but the clock:
// a replayed node, compute (skipped where it has no time and no ops), a broadcast (not simulated by the
// reference either: replayed on the comm slot), a folded collective, an INVALID node (skipped). None for
// memory, a simulated collective, a send or a receive.
std::optional<Workload::SelfTime> Workload::selfTime(uint32_t index) const {
  const EtNode& node = nodes_[index];
  if (npu_.context().system.replayOnly) return SelfTime{std::max<Tick>(1, node.durationNs), 0, false};
  if (isMemory(node)) return std::nullopt;
  if (runsAsCompute(node)) {
    if (isSkipped(node)) return SelfTime{0, 0, true};
    Tick time = computeTime(node);
    return SelfTime{time, node.isCpuOp || isPim(node) ? 0 : time, false};
  }
  if (node.kind == NodeKind::Collective) {
    if (node.commType == kBroadcast) return SelfTime{std::max<Tick>(1, node.durationNs), 0, false};
    if (fold_) return SelfTime{foldedTimes_[index], 0, false};
    return std::nullopt;
  }
  if (node.kind == NodeKind::Send || node.kind == NodeKind::Recv) return std::nullopt;
  return SelfTime{0, 0, true};  // INVALID_NODE
}

// A chain's nodes from `index` on that take their own time, issued as one event at the run's end, where
// nothing else is running or pending and no command can come before that end: then nothing could tell the
// nodes apart from the one event (the clock at every later node, the GPU time and the order of events at
// the end tick are the same), and the event queue does a few events instead of one per node.
bool Workload::startRun(uint32_t index) {
  const SimContext& context = npu_.context();
  if (!context.options.collapse || context.spans || graph_->sequentialFrom == WorkloadGraph::kNone ||
      index < graph_->sequentialFrom || context.activeWorkloads != 1 || !context.events.onlyRunning()) {
    return false;
  }
  Tick total = 0, gpu = 0;
  uint32_t last = index;
  for (uint32_t k = index; k < nodes_.size(); ++k) {
    std::optional<SelfTime> time = selfTime(k);
    // not a replayed send or receive either: a folded receive claims its members' messages when it completes
    if (!time || nodes_[k].kind == NodeKind::Send || nodes_[k].kind == NodeKind::Recv) break;
    total += time->time;
    gpu += time->gpu;
    last = k;
  }
  if (last == index || total == 0 || context.events.now() + total > context.quietUntil) return false;
  runFirst_ = index;
  runLast_ = last;
  npu_.ticsGpuOps += gpu;
  npu_.schedule(total, this, index);
  return true;
}

// The run's nodes complete, the last as a node does: what waited for it is issued.
void Workload::completeRun() {
  for (uint32_t k = runFirst_; k < runLast_; ++k) {
    --pendingParents_[k + 1];
    remove(k);
  }
  uint32_t last = runLast_;
  runFirst_ = kNoNode;
  releaseChildren(last);
  issueReadyNodes();
  remove(last);
  checkFinished();
}

Tick Workload::computeTime(const EtNode& node) const {
  const SystemConfig& system = npu_.context().system;
  if (!system.roofline) return std::max<Tick>(1, node.durationNs);
  double ops = static_cast<double>(node.numOps);
  double intensity = ops / static_cast<double>(node.tensorSize);
  double perf = std::min(system.localMemBwGBps * 1e9 * intensity, system.peakPerfTflops * 1e12);
  return static_cast<Tick>(ops / perf * 1e9);
}

// --- completion ---------------------------------------------------------------------------------

void Workload::skip(uint32_t index) {
  releaseChildren(index);
  remove(index);
}

void Workload::handleEvent(uint64_t nodeIndex) {
  if (nodeIndex == runFirst_) return completeRun();
  complete(static_cast<uint32_t>(nodeIndex));
}

// A folded send: every other member's message too, so that a receiving group that is not folded gets
// them (a folded one claims them).
void Workload::sendMembersMessages(const EtNode& node) {
  int representative = fold_->group.front();
  for (size_t m = 1; m < fold_->group.size(); ++m) {
    int member = fold_->group[m];
    npu_.context().fabric.send(static_cast<uint32_t>(node.commTag), member, node.commDst + (member - representative),
                               static_cast<uint64_t>(node.commSize), Completion{});
  }
}

// A folded receive ends for every member now: each member's message must be there, arriving so that its
// own receive would end now too (it does when its sender was folded with the same shift).
void Workload::claimMembersMessages(uint32_t index) {
  const EtNode& node = nodes_[index];
  Tick now = npu_.context().events.now();
  int representative = fold_->group.front();
  for (size_t m = 1; m < fold_->group.size(); ++m) {
    int member = fold_->group[m], sender = node.commSrc + (member - representative);
    auto due = npu_.context().fabric.claim(static_cast<uint32_t>(node.commTag), sender, member,
                                           static_cast<uint64_t>(node.commSize));
    if (!due || std::max(issuedAt_[index], *due) != now) {
      fail(kExitUsage, "step protocol: folded " + path_ + ": NPU " + std::to_string(member) + "'s message from NPU " +
                           std::to_string(sender) + " would not arrive with NPU " + std::to_string(representative) +
                           "'s (the senders of a folded group's receives must be folded with the same shift)");
    }
  }
}

void Workload::complete(uint32_t index) {
  if (fold_ && nodes_[index].kind == NodeKind::Recv) claimMembersMessages(index);
  if (npu_.context().spans) writeSpan(index);
  releaseSlot(nodes_[index]);
  releaseChildren(index);
  issueReadyNodes();
  remove(index);
  checkFinished();
}

void Workload::releaseChildren(uint32_t index) {
  for (uint32_t c = childStart_[index]; c < childStart_[index + 1]; ++c) {
    uint32_t child = children_[c];
    if (--pendingParents_[child] == 0) pushReady(child);
  }
}

void Workload::remove(uint32_t index) {
  removed_[index] = true;
  --remaining_;
}

void Workload::writeSpan(uint32_t index) {
  const EtNode& node = nodes_[index];
  const char* kind = isMemory(node) ? "memory" : isPim(node) ? "pim" : runsAsCompute(node) ? "compute" : "communication";
  std::string name = node.name.empty() ? "-" : node.name;
  for (char& c : name) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  auto line = [&](int npu) {
    *npu_.context().spans << npu << ' ' << node.id << ' ' << kind << ' ' << issuedAt_[index] << ' '
                          << npu_.context().events.now() << ' ' << name << '\n';
  };
  if (!fold_) return line(npu_.id());
  for (int member : fold_->group) line(member);  // every member ran the node at the same ticks
}

void Workload::checkFinished() {
  if (!active_ || remaining_ != 0) return;
  active_ = false;
  --npu_.context().activeWorkloads;
  if (npu_.context().spans) npu_.context().spans->flush();
  if (npu_.context().onWorkloadFinished) npu_.context().onWorkloadFinished(npu_.id());
}

}  // namespace engine
