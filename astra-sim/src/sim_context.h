// Everything shared by the NPUs of one simulation.
#pragma once

#include <fstream>
#include <functional>
#include <memory>
#include <string>

#include "config.h"
#include "et_reader.h"
#include "event_queue.h"
#include "measured_collectives.h"
#include "message_fabric.h"
#include "network.h"
#include "remote_memory.h"

namespace engine {

struct EngineOptions {
  int queuesPerDim = 1;
  double injectionScale = 1;
  NodeTypeNumbering numbering = NodeTypeNumbering::Upstream;
  std::string spanFile;  // empty: no spans
  bool collapse = true;  // a lone chain's runs of self-timed nodes as one event each (workload.h)
};

struct SimContext {
  SimContext(const NetworkConfig& networkConfig, const SystemConfig& systemConfig, const MemoryConfig& memoryConfig,
             const EngineOptions& engineOptions)
      : network(networkConfig),
        events(network.npus()),
        fabric(events, network),
        memory(events, memoryConfig, network.npus()),
        system(systemConfig),
        measured(events, CollectiveTable::load(systemConfig.collectiveTable)),
        options(engineOptions),
        endpointDelay(static_cast<Tick>(systemConfig.endpointDelay * engineOptions.injectionScale)) {}

  Network network;
  EventQueue events;
  MessageFabric fabric;
  RemoteMemory memory;
  SystemConfig system;
  MeasuredCollectives measured;  // collectives the "collective-table" times
  EngineOptions options;
  Tick endpointDelay;
  std::function<void(int npu)> onWorkloadFinished;
  int activeWorkloads = 0;  // loaded and not finished, on every NPU
  Tick quietUntil = 0;      // no command can start anything before this tick (the step protocol's `step` sets it)
  // With --span-file: `npu node_id kind start end name` per completed node (kind compute|communication|memory).
  std::unique_ptr<std::ofstream> spans;
};

}  // namespace engine
