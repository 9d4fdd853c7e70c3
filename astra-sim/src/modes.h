// The three ways of driving a simulation; each returns the process exit status or throws SimError.
#pragma once

#include <string>

#include "simulator.h"

namespace engine {

// ASTRA-sim (LLMServingSim C2) interactive protocol: report / Waiting / pass|exit|<prefix>.
int runCompatProtocol(Simulator& sim, const std::string& workloadPrefix);
// Every NPU runs its workload to completion; one `sys[i] finished ...` line per NPU.
int runBatch(Simulator& sim, const std::string& workloadPrefix);
// Our step protocol (see README.md): load / step / advance / exit; stdin is polled for `spinMicros`
// before each read that would sleep (StepInput).
int runStepProtocol(Simulator& sim, const std::string& workloadPrefix, int spinMicros);

// Shared by the modes: loads `<prefix>.<i>.et` on every NPU, then starts them in id order.
void loadAndStartAll(Simulator& sim, const std::string& prefix);
[[noreturn]] void failDeadlock(const Simulator& sim);

}  // namespace engine
