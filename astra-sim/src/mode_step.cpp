#include <algorithm>
#include <fstream>
#include <iostream>
#include <limits>

#include "chain_reader.h"
#include "modes.h"
#include "step_input.h"

namespace engine {

namespace {

bool isSpace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'; }

[[noreturn]] void protocolError(const std::string& command, const std::string& what) {
  fail(kExitUsage, "step protocol: '" + command + "': " + what);
}

Tick parseTick(const std::string& command, const std::string& text) {
  if (text.empty() || text.find_first_not_of("0123456789") != std::string::npos || text.size() > 19) {
    protocolError(command, "'" + text + "' is not a tick (non-negative integer)");
  }
  return std::stoull(text);
}

std::vector<int> parseNpuList(const std::string& command, const std::string& text, int npus) {
  std::vector<int> ids;
  if (text == "all") {
    for (int i = 0; i < npus; ++i) ids.push_back(i);
    return ids;
  }
  std::string item;
  for (size_t at = 0; at < text.size();) {  // comma-separated; empty items are skipped
    size_t comma = std::min(text.find(',', at), text.size());
    item.assign(text, at, comma - at);
    at = comma + 1;
    if (item.empty()) continue;
    int id = 0;  // 9 digits at most: fits
    bool digits = item.size() <= 9;
    for (char c : item) {
      digits = digits && c >= '0' && c <= '9';
      if (digits) id = id * 10 + (c - '0');
    }
    if (!digits || id >= npus) {
      protocolError(command, "'" + item + "' is not an NPU id (0.." + std::to_string(npus - 1) + ")");
    }
    if (std::find(ids.begin(), ids.end(), id) != ids.end()) protocolError(command, "NPU " + item + " listed twice");
    ids.push_back(id);
  }
  if (ids.empty()) protocolError(command, "no NPU listed");
  return ids;
}

// A group's chain as one member runs it: the first NPU's, its sends' and receives' peers shifted by the
// member's offset from that NPU (the same graph where nothing shifts).
SharedGraph shiftedPeers(const SharedGraph& graph, int offset) {
  auto p2p = [](const EtNode& node) { return node.kind == NodeKind::Send || node.kind == NodeKind::Recv; };
  if (offset == 0 || std::none_of(graph->nodes.begin(), graph->nodes.end(), p2p)) return graph;
  auto shifted = std::make_shared<WorkloadGraph>(*graph);
  for (EtNode& node : shifted->nodes) {
    if (node.kind == NodeKind::Send) node.commDst += offset;
    if (node.kind == NodeKind::Recv) node.commSrc += offset;
  }
  return shifted;
}

class StepSession {
 public:
  StepSession(Simulator& sim, StepInput& input) : sim_(sim), input_(input) {}

  void load(const std::string& command, const std::string& prefix, const std::string& npuList) {
    std::vector<int> ids = idleNpus(command, npuList);
    for (int id : ids) sim_.load(id, prefix);
    for (int id : ids) sim_.start(id);
    collectFinished();
    reply("ok");
  }

  // `chain <npus> <bytes> [fold [after]]` and its payload: one chain for every listed NPU; `offered` (fold,
  // fold after): the first NPU's, the others' peers shifted (shiftedPeers), run by the first for all of them
  // where folding is exact (fold.h) and `mayFold` (fold after: only when the chain command just before was
  // folded, a pipeline stage whose senders are that chain's group).
  void chain(const std::string& command, const std::string& npuList, const std::string& size, bool offered, bool mayFold) {
    std::vector<int> ids = idleNpus(command, npuList);
    std::string_view text;
    if (!input_.bytes(parseTick(command, size), text)) {
      protocolError(command, "stdin ended inside the chain's " + size + " bytes");
    }
    std::string name = "chain#" + std::to_string(++chains_);
    SharedGraph nodes = chainReader_.parse(text, name);  // shared by the listed NPUs
    sim_.load(ids.front(), name, nodes);
    bool folded = mayFold && sim_.fold(ids);
    for (size_t i = 1; i < ids.size() && !folded; ++i) {
      sim_.load(ids[i], name, offered ? shiftedPeers(nodes, ids[i] - ids.front()) : nodes);
    }
    for (size_t i = 0; i < (folded ? 1 : ids.size()); ++i) sim_.start(ids[i]);
    collectFinished();
    lastFolded_ = folded;
    reply(folded ? "ok folded" : "ok");
  }

  bool lastFolded() const { return lastFolded_; }

  // Runs whole timestamps until a workload completes; with a limit, stops before events past it. No
  // command comes meanwhile.
  void step(bool limited, Tick limit) {
    sim_.quietUntil(limited ? limit : std::numeric_limits<Tick>::max());
    runTimestamps(limited, limit);
    sim_.quietUntil(0);
  }

  void advance(const std::string& command, Tick t) {
    if (sim_.hasEvents()) protocolError(command, "events are pending (next at tick " + std::to_string(sim_.nextEventTime()) + ")");
    if (t < sim_.now()) protocolError(command, "tick " + std::to_string(t) + " is before now (" + std::to_string(sim_.now()) + ")");
    sim_.advanceTo(t);
    reply("time " + std::to_string(t));
  }

  // Flushed before the engine next waits for input (StepInput) or exits.
  void reply(const std::string& text) { std::cout << text << '\n'; }

  void replyTimeAt(Tick limit) {
    sim_.advanceTo(std::max(sim_.now(), limit));
    reply("time " + std::to_string(sim_.now()));
  }

 private:
  void runTimestamps(bool limited, Tick limit) {
    for (;;) {
      collectFinished();
      if (!finished_.empty()) return replyDone();
      if (!sim_.hasEvents()) {
        if (sim_.anyActive()) failDeadlock(sim_);
        if (!limited) return reply("idle " + std::to_string(sim_.now()));
        return replyTimeAt(limit);
      }
      if (limited && sim_.nextEventTime() > limit) return replyTimeAt(limit);
      sim_.runTimestamp();
    }
  }

  std::vector<int> idleNpus(const std::string& command, const std::string& npuList) {
    std::vector<int> ids = parseNpuList(command, npuList, sim_.npuCount());
    for (int id : ids) {
      if (sim_.busy(id)) {
        protocolError(command, "NPU " + std::to_string(id) + " is still running " + sim_.npu(sim_.runner(id)).workload().path());
      }
    }
    return ids;
  }

  void collectFinished() {
    for (int npu : sim_.takeFinished()) finished_.push_back(npu);
  }

  void replyDone() {
    std::sort(finished_.begin(), finished_.end());
    std::string text = "done " + std::to_string(sim_.now());
    for (int npu : finished_) text += " " + std::to_string(npu) + ":" + std::to_string(sim_.exposed(npu));
    finished_.clear();
    reply(text);
  }

  Simulator& sim_;
  StepInput& input_;
  ChainReader chainReader_;
  std::vector<int> finished_;  // completed since the last `done` reply
  int chains_ = 0;             // chains received
  bool lastFolded_ = false;    // whether the last chain was folded
};

}  // namespace

int runStepProtocol(Simulator& sim, const std::string& workloadPrefix, int spinMicros) {
  StepInput input(0, spinMicros);
  StepSession session(sim, input);
  if (!workloadPrefix.empty()) {
    for (int i = 0; i < sim.npuCount(); ++i) {
      if (std::ifstream(workloadPath(workloadPrefix, i)).good()) sim.load(i, workloadPrefix);
    }
    for (int i = 0; i < sim.npuCount(); ++i) {
      if (sim.npu(i).workload().active()) sim.start(i);
    }
  }
  session.reply("ready " + std::to_string(sim.npuCount()));
  std::string_view text;
  std::string line;
  std::vector<std::string> words;
  while (input.line(text)) {
    line.assign(text);
    words.clear();
    for (size_t at = 0;;) {  // words separated by whitespace, as `>>` reads them
      while (at < text.size() && isSpace(text[at])) ++at;
      if (at == text.size()) break;
      size_t end = at;
      while (end < text.size() && !isSpace(text[end])) ++end;
      words.emplace_back(text.substr(at, end - at));
      at = end;
    }
    if (words.empty()) continue;
    const std::string& command = words[0];
    if (command == "load" && words.size() == 3) {
      session.load(line, words[1], words[2]);
    } else if (command == "chain" && (words.size() == 3 || (words.size() >= 4 && words.size() <= 5 && words[3] == "fold" &&
                                                            (words.size() == 4 || words[4] == "after")))) {
      session.chain(line, words[1], words[2], words.size() > 3, words.size() == 4 || (words.size() == 5 && session.lastFolded()));
    } else if (command == "step" && words.size() <= 2) {
      session.step(words.size() == 2, words.size() == 2 ? parseTick(line, words[1]) : 0);
    } else if (command == "advance" && words.size() == 2) {
      session.advance(line, parseTick(line, words[1]));
    } else if (command == "exit" && words.size() == 1) {
      session.reply("bye " + std::to_string(sim.now()));
      std::cout.flush();
      return 0;
    } else {
      protocolError(line, "unknown command or wrong number of arguments (load <prefix> <npus>, chain <npus> <bytes> [fold [after]], step [limit], advance <T>, exit)");
    }
  }
  fail(kExitUsage, "step protocol: stdin closed without 'exit'");
}

}  // namespace engine
