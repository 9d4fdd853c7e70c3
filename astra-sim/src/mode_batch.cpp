#include <iostream>

#include "modes.h"

namespace engine {

namespace {
void printFinished(Simulator& sim) {
  for (int npu : sim.takeFinished()) {
    std::cout << "sys[" << npu << "] finished, " << sim.now() << " cycles, exposed communication " << sim.exposed(npu)
              << " cycles.\n";
  }
}
}  // namespace

int runBatch(Simulator& sim, const std::string& workloadPrefix) {
  loadAndStartAll(sim, workloadPrefix);
  printFinished(sim);
  while (sim.hasEvents()) {
    sim.runTimestamp();
    printFinished(sim);
  }
  std::cout.flush();
  if (sim.anyActive()) failDeadlock(sim);
  return 0;
}

}  // namespace engine
