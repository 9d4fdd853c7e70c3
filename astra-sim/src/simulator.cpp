#include "simulator.h"

namespace engine {

std::string workloadPath(const std::string& prefix, int npu) { return prefix + "." + std::to_string(npu) + ".et"; }

Simulator::Simulator(const SimulatorInputs& inputs)
    : inputs_(inputs),
      context_(inputs.network, inputs.system, inputs.memory, inputs.options),
      probe_(inputs_),
      folds_(context_.network.npus()),
      mirrorOf_(context_.network.npus(), -1) {
  for (int i = 0; i < context_.network.npus(); ++i) {
    npus_.push_back(std::make_unique<Npu>(i, context_, inputs.groups.empty() ? std::vector<int>() : inputs.groups[i]));
  }
  context_.onWorkloadFinished = [this](int npu) { workloadFinished(npu); };
  if (!inputs.options.spanFile.empty()) {
    context_.spans = std::make_unique<std::ofstream>(inputs.options.spanFile, std::ios::app);
    if (!*context_.spans) fail(kExitInput, "--span-file: cannot open '" + inputs.options.spanFile + "' for appending");
  }
}

void Simulator::load(int npu, const std::string& prefix) {
  std::string path = workloadPath(prefix, npu);
  load(npu, path, readEtFile(path, inputs_.options.numbering));
}

void Simulator::load(int npu, const std::string& name, std::vector<EtNode> nodes) {
  npus_[npu]->workload().load(name, std::move(nodes));
}

bool Simulator::fold(const std::vector<int>& group) {
  bool sharedMemory = inputs_.memory.kind == MemoryKind::PerNode || inputs_.memory.kind == MemoryKind::Pool;
  if (group.size() < 2 || sharedMemory || inputs_.options.queuesPerDim != 1) return false;
  int representative = group.front();
  Fold& fold = folds_[representative];
  fold = Fold{group, &probe_, npus_[representative]->ticsGpuOps};
  if (!npus_[representative]->workload().fold(&fold)) {
    fold = Fold{};
    return false;
  }
  for (size_t m = 1; m < group.size(); ++m) mirrorOf_[group[m]] = representative;
  return true;
}

void Simulator::workloadFinished(int npu) {
  justFinished_.push_back(npu);
  Fold& fold = folds_[npu];
  if (fold.group.empty()) return;
  Tick computed = npus_[npu]->ticsGpuOps - fold.gpuTicsAtStart;
  for (size_t m = 1; m < fold.group.size(); ++m) {
    int member = fold.group[m];
    npus_[member]->ticsGpuOps += computed;
    mirrorOf_[member] = -1;
    justFinished_.push_back(member);
  }
  npus_[npu]->workload().fold(nullptr);
  fold = Fold{};
}

bool Simulator::anyActive() const {
  for (const auto& npu : npus_) {
    if (npu->workload().active()) return true;
  }
  return false;
}

std::vector<int> Simulator::takeFinished() {
  std::vector<int> out;
  out.swap(justFinished_);
  return out;
}

std::string Simulator::stuckDescription() const {
  constexpr size_t kNodesShown = 8;
  std::string text;
  for (const auto& npu : npus_) {
    const Workload& workload = npu->workload();
    if (!workload.active()) continue;
    auto nodes = workload.remainingNodes();
    if (!text.empty()) text += "; ";
    text += "NPU " + std::to_string(npu->id()) + " (" + workload.path() + ") stuck at node(s)";
    for (size_t i = 0; i < nodes.size() && i < kNodesShown; ++i) {
      text += (i ? ", " : " ") + std::to_string(nodes[i].first) + " '" + nodes[i].second + "'";
    }
    if (nodes.size() > kNodesShown) text += " and " + std::to_string(nodes.size() - kNodesShown) + " more";
  }
  return text;
}

}  // namespace engine
