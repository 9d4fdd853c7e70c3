#include "cli.h"

#include <cmath>
#include <functional>
#include <map>

#include "common.h"

namespace engine {

namespace {

double parseNumber(const std::string& flag, const std::string& value) {
  return parseFiniteNumber(value, kExitUsage, "--" + flag);
}

bool parseBool(const std::string& flag, const std::string& value) {
  if (value == "true" || value == "1") return true;
  if (value == "false" || value == "0") return false;
  fail(kExitUsage, "--" + flag + ": expected true or false, got '" + value + "'");
}

}  // namespace

std::string usage() {
  return "usage: astra-analytical --system-configuration=FILE --network-configuration=FILE\n"
         "         [--workload-configuration=PREFIX] [--remote-memory-configuration=FILE]\n"
         "         [--comm-group-configuration=FILE] [--num-queues-per-dim=N] [--injection-scale=X]\n"
         "         [--comm-scale=X] [--compute-scale=X] [--logging-configuration=FILE]\n"
         "         [--batch | --protocol=compat|step] [--node-type-numbering=upstream|casys]\n"
         "         [--span-file=PATH]\n";
}

CommandLine parseCommandLine(int argc, char** argv) {
  CommandLine cli;
  bool batch = false;
  std::string protocol = "compat";
  using Setter = std::function<void(const std::string& flag, const std::string& value)>;
  auto ignored = [](const std::string&, const std::string&) {};
  const std::map<std::string, Setter> valued = {
      {"workload-configuration", [&](auto&, auto& v) { cli.workload = v; }},
      {"system-configuration", [&](auto&, auto& v) { cli.system = v; }},
      {"network-configuration", [&](auto&, auto& v) { cli.network = v; }},
      {"remote-memory-configuration", [&](auto&, auto& v) { cli.memory = v; }},
      {"comm-group-configuration", [&](auto&, auto& v) { cli.commGroups = v; }},
      {"span-file", [&](auto&, auto& v) { cli.spanFile = v; }},
      {"logging-configuration", ignored},
      {"logging-folder", ignored},
      {"num-queues-per-dim",
       [&](auto& f, auto& v) {
         double n = parseNumber(f, v);
         if (n < 1 || n != std::floor(n) || n > 1024) fail(kExitUsage, "--" + f + " must be an integer >= 1");
         cli.queuesPerDim = static_cast<int>(n);
       }},
      {"injection-scale",
       [&](auto& f, auto& v) {
         cli.injectionScale = parseNumber(f, v);
         if (cli.injectionScale < 0) fail(kExitUsage, "--" + f + " must be >= 0");
       }},
      {"comm-scale", [&](auto& f, auto& v) { parseNumber(f, v); }},     // accepted, unused (as upstream)
      {"compute-scale", [&](auto& f, auto& v) { parseNumber(f, v); }},  // accepted, unused (as upstream)
      {"rendezvous-protocol",
       [&](auto& f, auto& v) {
         if (parseBool(f, v)) fail(kExitUsage, "--rendezvous-protocol=true is not supported");
       }},
      {"batch", [&](auto& f, auto& v) { batch = parseBool(f, v); }},
      {"protocol", [&](auto&, auto& v) { protocol = v; }},
      {"node-type-numbering",
       [&](auto& f, auto& v) {
         if (v == "upstream") cli.numbering = NodeTypeNumbering::Upstream;
         else if (v == "casys") cli.numbering = NodeTypeNumbering::Casys;
         else fail(kExitUsage, "--" + f + " must be upstream or casys");
       }},
  };

  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg.rfind("--", 0) != 0) fail(kExitUsage, "unexpected argument '" + arg + "' (see --help)");
    std::string name = arg.substr(2);
    std::string value;
    bool hasValue = false;
    size_t eq = name.find('=');
    if (eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      hasValue = true;
    }
    auto it = valued.find(name);
    if (it == valued.end()) fail(kExitUsage, "unknown option --" + name + " (see --help)");
    if (!hasValue && name == "batch") {
      value = "true";
    } else if (!hasValue) {
      if (i + 1 >= argc) fail(kExitUsage, "--" + name + " needs a value");
      value = argv[++i];
    }
    it->second(name, value);
  }

  if (protocol == "step") cli.mode = Mode::Step;
  else if (protocol != "compat") fail(kExitUsage, "--protocol must be compat or step");
  if (batch) {
    if (cli.mode == Mode::Step) fail(kExitUsage, "--batch and --protocol=step exclude each other");
    cli.mode = Mode::Batch;
  }
  if (cli.system.empty()) fail(kExitUsage, "--system-configuration is required (see --help)");
  if (cli.network.empty()) fail(kExitUsage, "--network-configuration is required (see --help)");
  if (cli.workload.empty() && cli.mode != Mode::Step) fail(kExitUsage, "--workload-configuration is required (optional only with --protocol=step)");
  return cli;
}

}  // namespace engine
