#include "network.h"

#include <algorithm>

namespace engine {

Network::Network(const NetworkConfig& config) : config_(config), total_(config.totalNpus()) {
  int stride = 1;
  for (const auto& dim : config_.dims) {
    strides_.push_back(stride);
    stride *= dim.npus;
    bytesPerNs_.push_back(dim.bandwidthGBps * static_cast<double>(1ull << 30) / 1e9);
  }
}

Tick Network::delay(int src, int dst, uint64_t bytes) const {
  for (size_t d = 0; d < config_.dims.size(); ++d) {
    int a = coord(src, static_cast<int>(d));
    int b = coord(dst, static_cast<int>(d));
    if (a == b) continue;
    const NetworkDim& dim = config_.dims[d];
    int hops = 1;
    if (dim.topology == TopologyKind::Switch) {
      hops = 2;
    } else if (dim.topology == TopologyKind::Ring) {
      int forward = ((b - a) % dim.npus + dim.npus) % dim.npus;
      hops = std::min(forward, dim.npus - forward);
    }
    double ns = hops * dim.latencyNs + static_cast<double>(bytes) / bytesPerNs_[d];
    return static_cast<Tick>(ns);
  }
  fail(kExitInput, "message from NPU " + std::to_string(src) + " to itself");
}

}  // namespace engine
