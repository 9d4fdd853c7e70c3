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
  // With --span-file: `npu node_id kind start end name` per completed node (kind compute|communication|memory).
  std::unique_ptr<std::ofstream> spans;
};

}  // namespace engine
