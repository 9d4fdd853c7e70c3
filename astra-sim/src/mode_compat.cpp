#include <algorithm>
#include <iostream>

#include "modes.h"

namespace engine {

namespace {

constexpr Tick kIdleTick = 100;  // a round of replies with no pending event advances time by 100 ns
// Idle rounds (with a workload still unfinished and nothing pending) after which we call it a hang.
constexpr uint64_t kMaxStuckIdleRounds = 10'000'000;

std::string trimLine(const std::string& line) {
  size_t end = line.find_last_not_of(" \t\r\n");
  size_t begin = line.find_first_not_of(" \t\r\n");
  return end == std::string::npos ? "" : line.substr(begin, end - begin + 1);
}

// The start-up lines of the reference (one per dimension of each collective's logical topology).
void printTopologyLines(const Simulator& sim) {
  const SimulatorInputs& in = sim.inputs();
  for (const auto& list : in.system.implementations) {
    int stride = 1;
    for (size_t d = 0; d < list.size(); ++d) {
      int n = in.network.dims[d].npus;
      std::cout << "[system::topology::RingTopology] [info] ring of node 0, id: 0 dimension: local total nodes in ring: "
                << n << " index in ring: 0 offset: " << stride << " total nodes in ring: " << n << '\n';
      stride *= n;
    }
  }
  for (size_t npu = 0; npu < in.groups.size(); ++npu) {  // one line per NPU in a communicator group
    const std::vector<int>& group = in.groups[npu];
    if (group.empty() || static_cast<int>(group.size()) == in.network.totalNpus()) continue;
    size_t index = std::find(group.begin(), group.end(), static_cast<int>(npu)) - group.begin();
    std::cout << "[system::topology::RingTopology] [info] custom ring, id: " << npu
              << ", dimension: local total nodes in ring: " << group.size() << " index in ring: " << index
              << " total nodes in ring " << group.size() << '\n';
  }
}

void printFinalReport(Simulator& sim) {
  std::cout << "Checking Non-Exited Systems ...\n";
  bool allDone = true;
  for (int i = 0; i < sim.npuCount(); ++i) {
    const Workload& workload = sim.npu(i).workload();
    if (workload.finished()) continue;
    allDone = false;
    std::cout << "sys[" << i << "] \n";
    for (const auto& [id, name] : workload.remainingNodes()) std::cout << '{' << id << ": " << name << "}\n";
  }
  std::cout << "---------------------------\n"
            << (allDone ? "All Request Has Been Exited" : "ERROR: Some Requests Remain") << '\n'
            << "---------------------------" << std::endl;
}

bool anyFinished(const Simulator& sim) {
  for (int i = 0; i < sim.npuCount(); ++i) {
    if (sim.finished(i)) return true;
  }
  return false;
}

}  // namespace

int runCompatProtocol(Simulator& sim, const std::string& workloadPrefix) {
  printTopologyLines(sim);
  loadAndStartAll(sim, workloadPrefix);
  uint64_t stuckIdleRounds = 0;
  std::string line;
  for (;;) {
    if (sim.hasEvents()) {
      sim.runTimestamp();
      stuckIdleRounds = 0;
    } else {
      // Nobody could ever be asked for input again: the reference would spin silently forever.
      if (!anyFinished(sim)) failDeadlock(sim);
      if (sim.anyActive() && ++stuckIdleRounds > kMaxStuckIdleRounds) failDeadlock(sim);
      sim.advanceTo(sim.now() + kIdleTick);
    }
    sim.takeFinished();
    for (int i = 0; i < sim.npuCount(); ++i) {
      if (!sim.finished(i)) continue;
      Npu& npu = sim.npu(i);
      std::cout << "[workload] [info] sys[" << i << "] iteration " << npu.iteration << " finished, " << sim.now()
                << " cycles, exposed communication " << sim.exposed(i) << " cycles.\n"
                << "[workload] [info] Waiting" << std::endl;
      if (!std::getline(std::cin, line)) {
        std::string stuck = sim.anyActive() ? "; " + sim.stuckDescription() : "";
        fail(kExitUsage, "stdin closed without 'exit' at tick " + std::to_string(sim.now()) + stuck);
      }
      std::string reply = trimLine(line);
      if (reply == "pass") continue;
      if (reply == "exit") {
        printFinalReport(sim);
        return 0;
      }
      sim.load(i, reply);
      npu.iteration++;
      sim.start(i);
    }
  }
}

}  // namespace engine
