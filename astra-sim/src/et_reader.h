// Reads a Chakra execution trace (.et): varint-length-prefixed protobuf records, GlobalMetadata first.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace engine {

enum class NodeKind { Invalid, Metadata, MemLoad, MemStore, Comp, Send, Recv, Collective, PimComp };

// Which NodeType numbers the file uses: upstream Chakra (COMP 4 ... COLL 7) or the casys-kaist fork
// used by LLMServingSim main (PIM_COMP 4, COMP 5 ... COLL 8).
enum class NodeTypeNumbering { Upstream, Casys };

// Chakra CollectiveCommType numbers.
enum CommType : int64_t {
  kAllReduce = 0, kReduce = 1, kAllGather = 2, kGather = 3, kScatter = 4, kBroadcast = 5,
  kAllToAll = 6, kReduceScatter = 7, kReduceScatterBlock = 8, kBarrier = 9,
};

// (A field added here is also reset by NodeWriter::reset in chain_reader.cpp.)
struct EtNode {
  uint64_t id = 0;
  std::string name;
  NodeKind kind = NodeKind::Invalid;
  bool isCpuOp = false;
  bool isPimOp = false;  // a COMP node of the NPU's processing-in-memory units: their own slot (workload.h)
  uint64_t durationNs = 0;  // duration_micros holds nanoseconds (LLMServingSim/C2 convention)
  int64_t numOps = 0;
  uint64_t tensorSize = 0;
  int64_t commType = 0;
  int64_t commSize = 0;
  int commSrc = 0;
  int commDst = 0;
  int commTag = 0;
  int commPriority = 0;
  int64_t memoryTier = 0;  // memory nodes: 0 = the remote memory, k = its k-th memory tier (memory_tiers.h)
  std::vector<bool> involvedDim;  // empty = every dimension
  std::vector<uint64_t> dataDeps;
};

// Throws SimError(kExitInput) when the file is missing, unreadable or not a valid trace.
std::vector<EtNode> readEtFile(const std::string& path, NodeTypeNumbering numbering);

}  // namespace engine
