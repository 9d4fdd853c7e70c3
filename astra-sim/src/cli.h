// Command-line flags (ASTRA-sim names, `--name=value` or `--name value`), read with cxxopts.
#pragma once

#include <string>

#include "et_reader.h"

namespace engine {

enum class Mode { Interactive, Batch, Step };

struct CommandLine {
  std::string workload;  // ET prefix
  std::string system;
  std::string network;
  std::string memory;
  std::string commGroups;
  std::string spanFile;  // --span-file: one line per completed node appended here
  int queuesPerDim = 1;
  double injectionScale = 1;
  int spinMicros = 0;  // --spin-us: how long the step protocol polls stdin before a blocking read
  bool collapse = true;  // off with --no-collapse: a lone chain's self-timed runs as one event each
  Mode mode = Mode::Interactive;
  NodeTypeNumbering numbering = NodeTypeNumbering::Upstream;
};

// Throws SimError(kExitUsage) for an unknown flag, a missing value or a bad number.
CommandLine parseCommandLine(int argc, char** argv);

std::string usage();

}  // namespace engine
