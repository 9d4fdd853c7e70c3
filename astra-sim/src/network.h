// Congestion-unaware analytical network: point-to-point delay over the lowest differing dimension.
#pragma once

#include <vector>

#include "common.h"
#include "config.h"

namespace engine {

class Network {
 public:
  explicit Network(const NetworkConfig& config);

  int npus() const { return total_; }
  int dims() const { return static_cast<int>(config_.dims.size()); }
  int dimSize(int dim) const { return config_.dims[dim].npus; }
  int stride(int dim) const { return strides_[dim]; }
  int coord(int npu, int dim) const { return (npu / strides_[dim]) % config_.dims[dim].npus; }

  // Delay of one message: floor(hops * latency + bytes / bandwidth) in the lowest differing dimension.
  Tick delay(int src, int dst, uint64_t bytes) const;

 private:
  NetworkConfig config_;
  std::vector<int> strides_;
  std::vector<double> bytesPerNs_;
  int total_;
};

}  // namespace engine
