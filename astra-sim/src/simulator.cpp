#include "simulator.h"

namespace engine {

std::string workloadPath(const std::string& prefix, int npu) { return prefix + "." + std::to_string(npu) + ".et"; }

Simulator::Simulator(const SimulatorInputs& inputs)
    : inputs_(inputs), context_(inputs.network, inputs.system, inputs.memory, inputs.options) {
  for (int i = 0; i < context_.network.npus(); ++i) {
    npus_.push_back(std::make_unique<Npu>(i, context_, inputs.groups.empty() ? std::vector<int>() : inputs.groups[i]));
  }
  context_.onWorkloadFinished = [this](int npu) { justFinished_.push_back(npu); };
  if (!inputs.options.spanFile.empty()) {
    context_.spans = std::make_unique<std::ofstream>(inputs.options.spanFile, std::ios::app);
    if (!*context_.spans) fail(kExitInput, "--span-file: cannot open '" + inputs.options.spanFile + "' for appending");
  }
}

void Simulator::load(int npu, const std::string& prefix) {
  std::string path = workloadPath(prefix, npu);
  npus_[npu]->workload().load(path, readEtFile(path, inputs_.options.numbering));
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
