// astra-analytical: an ASTRA-sim-compatible analytical (congestion-unaware) system simulator.
#include <iostream>

#include "cli.h"
#include "config.h"
#include "modes.h"

using namespace engine;

namespace {

SimulatorInputs loadInputs(const CommandLine& cli) {
  SimulatorInputs inputs;
  inputs.network = loadNetworkConfig(cli.network);
  inputs.system = loadSystemConfig(cli.system, inputs.network);
  if (!cli.memory.empty()) inputs.memory = loadMemoryConfig(cli.memory);
  inputs.groups = loadCommGroups(cli.commGroups, inputs.network.totalNpus());
  inputs.options.queuesPerDim = cli.queuesPerDim;
  inputs.options.injectionScale = cli.injectionScale;
  inputs.options.numbering = cli.numbering;
  inputs.options.spanFile = cli.spanFile;
  inputs.options.collapse = cli.collapse;
  return inputs;
}

int run(int argc, char** argv) {
  for (int i = 1; i < argc; ++i) {
    if (std::string(argv[i]) == "--help" || std::string(argv[i]) == "-h") {
      std::cout << usage();
      return 0;
    }
  }
  CommandLine cli = parseCommandLine(argc, argv);
  Simulator sim(loadInputs(cli));
  switch (cli.mode) {
    case Mode::Batch: return runBatch(sim, cli.workload);
    case Mode::Step: return runStepProtocol(sim, cli.workload, cli.spinMicros);
    case Mode::Interactive: break;
  }
  return runCompatProtocol(sim, cli.workload);
}

}  // namespace

int main(int argc, char** argv) {
  std::ios::sync_with_stdio(false);
  try {
    return run(argc, argv);
  } catch (const SimError& e) {
    std::cout.flush();
    std::cerr << "error: " << e.what() << std::endl;
    return e.code();
  } catch (const std::exception& e) {
    std::cout.flush();
    std::cerr << "error: internal: " << e.what() << std::endl;
    return kExitInput;
  }
}
