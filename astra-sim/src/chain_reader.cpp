#include "chain_reader.h"

#include <sstream>

#include "common.h"

namespace engine {

namespace {

struct Listing {
  const std::string& name;
  int line = 0;
  [[noreturn]] void bad(const std::string& what) const { fail(kExitInput, name + " line " + std::to_string(line) + ": " + what); }
};

uint64_t number(std::istringstream& in, const Listing& at, const char* what) {
  std::string word;
  if (!(in >> word) || word.find_first_not_of("0123456789") != std::string::npos || word.size() > 19) {
    at.bad(std::string("expected ") + what + ", got '" + word + "'");
  }
  return std::stoull(word);
}

// One op line: `<kind> <value> [<src> <dst> <tag>] <name>`.
EtNode op(const std::string& text, const Listing& at) {
  std::istringstream in(text);
  std::string kind;
  in >> kind;
  EtNode node;
  uint64_t value = number(in, at, kind == "comp" ? "ns" : "bytes");
  if (kind == "comp") {
    node.kind = NodeKind::Comp;
    node.durationNs = value;
  } else if (kind == "allreduce" || kind == "allgather" || kind == "reducescatter" || kind == "alltoall") {
    node.kind = NodeKind::Collective;
    node.commType = kind == "allreduce" ? kAllReduce : kind == "allgather" ? kAllGather
                    : kind == "reducescatter" ? kReduceScatter : kAllToAll;
    node.commSize = static_cast<int64_t>(value);
  } else if (kind == "load" || kind == "store") {
    node.kind = kind == "load" ? NodeKind::MemLoad : NodeKind::MemStore;
    node.tensorSize = value;
  } else if (kind == "send" || kind == "recv") {
    node.kind = kind == "send" ? NodeKind::Send : NodeKind::Recv;
    node.commSize = static_cast<int64_t>(value);
    node.commSrc = static_cast<int>(number(in, at, "a source NPU"));
    node.commDst = static_cast<int>(number(in, at, "a destination NPU"));
    node.commTag = static_cast<int>(number(in, at, "a tag"));
  } else {
    at.bad("unknown op '" + kind + "' (comp, allreduce, allgather, reducescatter, alltoall, load, store, send, recv, "
           "repeat)");
  }
  std::getline(in >> std::ws, node.name);
  return node;
}

}  // namespace

std::vector<EtNode> parseChain(const std::string& text, const std::string& name) {
  std::istringstream lines(text);
  std::string line;
  Listing at{name};
  ++at.line;
  if (!std::getline(lines, line)) at.bad("empty chain (the first line is the number of parallel ops)");
  std::istringstream first(line);
  uint64_t parallel = number(first, at, "the number of parallel ops");
  std::vector<EtNode> nodes;
  while (std::getline(lines, line)) {
    ++at.line;
    if (line.rfind("repeat ", 0) != 0) {
      nodes.push_back(op(line, at));
      continue;
    }
    std::istringstream header(line.substr(7));
    uint64_t times = number(header, at, "a repeat count"), count = number(header, at, "a number of lines");
    std::vector<EtNode> unit;
    for (uint64_t i = 0; i < count; ++i) {
      ++at.line;
      if (!std::getline(lines, line)) at.bad("the repeated run ends early");
      unit.push_back(op(line, at));
    }
    for (uint64_t t = 0; t < times; ++t) nodes.insert(nodes.end(), unit.begin(), unit.end());
  }
  for (size_t i = 0; i < nodes.size(); ++i) {
    nodes[i].id = i;
    if (i > parallel) nodes[i].dataDeps = {i - 1};
    if (i == parallel) {
      for (uint64_t p = 0; p < parallel; ++p) nodes[i].dataDeps.push_back(p);
    }
  }
  return nodes;
}

}  // namespace engine
