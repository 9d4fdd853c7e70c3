#include "modes.h"

namespace engine {

void loadAndStartAll(Simulator& sim, const std::string& prefix) {
  for (int i = 0; i < sim.npuCount(); ++i) sim.load(i, prefix);
  for (int i = 0; i < sim.npuCount(); ++i) sim.start(i);
}

void failDeadlock(const Simulator& sim) {
  fail(kExitDeadlock, "deadlock at tick " + std::to_string(sim.now()) + ": no event is pending but " + sim.stuckDescription());
}

}  // namespace engine
