#include "chain_reader.h"

#include <algorithm>
#include <cstring>
#include <string_view>

#include "common.h"

namespace engine {

namespace {

// Splits the listing into lines ('\n'; the last may lack it) and the lines into words separated by
// whitespace (space, \t, \v, \f, \r): one pass over the bytes, no copies but the names.
class Listing {
 public:
  Listing(std::string_view text, const std::string& name) : text_(text), name_(name) {}

  [[noreturn]] void bad(const std::string& what) const {
    fail(kExitInput, name_ + " line " + std::to_string(line_) + ": " + what);
  }

  // The next line into `line_`-numbered `rest_`; false at the end of the text.
  bool nextLine() {
    if (at_ >= text_.size()) return false;
    const char* start = text_.data() + at_;
    const void* newline = std::memchr(start, '\n', text_.size() - at_);
    size_t length = newline ? static_cast<const char*>(newline) - start : text_.size() - at_;
    rest_ = std::string_view(start, length);
    at_ += length + (newline ? 1 : 0);
    ++line_;
    return true;
  }
  void countLine() { ++line_; }

  // The next word of the line ("" when none is left).
  std::string_view word() {
    skipSpace();
    size_t end = 0;
    while (end < rest_.size() && !isSpace(rest_[end])) ++end;
    std::string_view w = rest_.substr(0, end);
    rest_.remove_prefix(end);
    return w;
  }

  uint64_t number(const char* what) {
    std::string_view w = word();
    if (w.empty() || w.size() > 19) badNumber(what, w);
    uint64_t value = 0;
    for (char c : w) {
      if (c < '0' || c > '9') badNumber(what, w);
      value = value * 10 + static_cast<uint64_t>(c - '0');
    }
    return value;
  }

  // The rest of the line after leading whitespace.
  std::string_view rest() {
    skipSpace();
    return rest_;
  }
  bool startsWith(std::string_view prefix) const { return rest_.substr(0, prefix.size()) == prefix; }
  void skip(size_t n) { rest_.remove_prefix(n); }

 private:
  static bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }
  void skipSpace() {
    size_t n = 0;
    while (n < rest_.size() && isSpace(rest_[n])) ++n;
    rest_.remove_prefix(n);
  }
  [[noreturn]] void badNumber(const char* what, std::string_view w) const {
    bad(std::string("expected ") + what + ", got '" + std::string(w) + "'");
  }

  std::string_view text_;
  const std::string& name_;
  size_t at_ = 0;
  int line_ = 0;
  std::string_view rest_;
};

// One op line: `<kind> <value> [<src> <dst> <tag>] <name>`.
void op(Listing& in, EtNode& node) {
  std::string_view kind = in.word();
  uint64_t value = in.number(kind == "comp" ? "ns" : "bytes");
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
    node.commSrc = static_cast<int>(in.number("a source NPU"));
    node.commDst = static_cast<int>(in.number("a destination NPU"));
    node.commTag = static_cast<int>(in.number("a tag"));
  } else {
    in.bad("unknown op '" + std::string(kind) +
           "' (comp, allreduce, allgather, reducescatter, alltoall, load, store, send, recv, repeat)");
  }
  node.name.assign(in.rest());
}

// The nodes of a graph being (re)filled: earlier nodes' buffers (their names) are reused.
class NodeWriter {
 public:
  // Every field of `node` as a new EtNode has it (et_reader.h), the memory of its name and lists kept.
  static void reset(EtNode& node) {
    node.id = 0;
    node.name.clear();
    node.kind = NodeKind::Invalid;
    node.isCpuOp = false;
    node.isPimOp = false;
    node.durationNs = 0;
    node.numOps = 0;
    node.tensorSize = 0;
    node.commType = 0;
    node.commSize = 0;
    node.commSrc = 0;
    node.commDst = 0;
    node.commTag = 0;
    node.commPriority = 0;
    node.memoryTier = 0;
    node.involvedDim.clear();
    node.dataDeps.clear();
  }

  explicit NodeWriter(std::vector<EtNode>& nodes) : nodes_(nodes) {}
  size_t size() const { return count_; }
  EtNode& operator[](size_t i) { return nodes_[i]; }
  EtNode& next() {
    if (count_ == nodes_.size()) {
      ++count_;
      return nodes_.emplace_back();
    }
    EtNode& node = nodes_[count_++];
    reset(node);
    return node;
  }
  void truncate(size_t count) { count_ = count; }
  void finish() { nodes_.resize(count_); }

 private:
  std::vector<EtNode>& nodes_;
  size_t count_ = 0;
};

}  // namespace

SharedGraph ChainReader::parse(std::string_view text, const std::string& name) {
  Listing in(text, name);
  if (!in.nextLine()) {
    in.countLine();
    in.bad("empty chain (the first line is the number of parallel ops)");
  }
  uint64_t parallel = in.number("the number of parallel ops");
  std::shared_ptr<WorkloadGraph> graph = spare();
  NodeWriter nodes(graph->nodes);
  while (in.nextLine()) {
    if (!in.startsWith("repeat ")) {
      op(in, nodes.next());
      continue;
    }
    in.skip(7);
    uint64_t times = in.number("a repeat count"), count = in.number("a number of lines");
    size_t first = nodes.size();
    for (uint64_t i = 0; i < count; ++i) {
      if (!in.nextLine()) {
        in.countLine();
        in.bad("the repeated run ends early");
      }
      op(in, nodes.next());
    }
    size_t unit = nodes.size() - first;
    if (unit == 0 || times == 0) {
      nodes.truncate(first);
      continue;
    }
    for (uint64_t t = 1; t < times; ++t) {
      for (size_t k = 0; k < unit; ++k) {
        EtNode& copy = nodes.next();  // before reading the original: next() may move the nodes
        copy = nodes[first + k];
      }
    }
  }
  nodes.finish();
  // Node p < P: no parents; node P: all of 0..P-1; every later node: the one before it.
  WorkloadGraph& g = *graph;
  size_t n = g.nodes.size();
  g.ids.resize(n);
  g.parents.resize(n);
  g.childStart.resize(n + 1);
  g.children.clear();
  g.duplicate = WorkloadGraph::kNone;
  g.sequentialFrom = std::min<size_t>(parallel, n);
  for (size_t i = 0; i < n; ++i) {
    g.nodes[i].id = i;
    g.ids[i] = i;
    g.parents[i] = i < parallel ? 0 : i == parallel ? static_cast<uint32_t>(parallel) : 1;
    g.childStart[i] = static_cast<uint32_t>(g.children.size());
    if (i < parallel && parallel < n) {
      g.children.push_back(static_cast<uint32_t>(parallel));
    } else if (i >= parallel && i + 1 < n) {
      g.children.push_back(static_cast<uint32_t>(i + 1));
    }
  }
  g.childStart[n] = static_cast<uint32_t>(g.children.size());
  return graph;
}

std::shared_ptr<WorkloadGraph> ChainReader::spare() {
  for (size_t tried = 0; tried < graphs_.size(); ++tried) {  // oldest first: the likeliest released
    std::shared_ptr<WorkloadGraph>& graph = graphs_[next_];
    next_ = (next_ + 1) % graphs_.size();
    if (graph.use_count() == 1) return graph;  // no workload holds it any more
  }
  graphs_.push_back(std::make_shared<WorkloadGraph>());
  next_ = 0;
  return graphs_.back();
}

SharedGraph parseChain(std::string_view text, const std::string& name) { return ChainReader().parse(text, name); }

}  // namespace engine
