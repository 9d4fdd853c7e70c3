#include "cli.h"

#include <cxxopts.hpp>

#include <cmath>

#include "common.h"

namespace engine {

namespace {

cxxopts::Options makeOptions() {
  cxxopts::Options options("astra-analytical", "ASTRA-sim-compatible analytical system simulator");
  auto text = [] { return cxxopts::value<std::string>(); };
  options.add_options()
      ("workload-configuration", "ET prefix: NPU i reads PREFIX.i.et (optional with --protocol=step)", text(), "PREFIX")
      ("system-configuration", "system.json (required)", text(), "FILE")
      ("network-configuration", "network.yml (required)", text(), "FILE")
      ("remote-memory-configuration", "remote memory JSON", text(), "FILE")
      ("comm-group-configuration", "communicator groups JSON", text(), "FILE")
      ("num-queues-per-dim", "queues per network dimension", text()->default_value("1"), "N")
      ("injection-scale", "multiplies endpoint-delay", text()->default_value("1"), "X")
      ("comm-scale", "accepted, unused (as upstream)", text()->default_value("1"), "X")
      ("compute-scale", "accepted, unused (as upstream)", text()->default_value("1"), "X")
      ("logging-configuration", "accepted, ignored", text(), "FILE")
      ("logging-folder", "accepted, ignored", text(), "DIR")
      ("rendezvous-protocol", "only false is supported", text()->default_value("false"), "BOOL")
      ("batch", "run all workloads from tick 0 to the end", text()->default_value("false")->implicit_value("true"), "BOOL")
      ("protocol", "stdin protocol: compat or step", text()->default_value("compat"), "NAME")
      ("node-type-numbering", "NodeType numbers of the ETs: upstream or casys", text()->default_value("upstream"), "NAME")
      ("span-file", "append one line per completed node to PATH", text(), "PATH")
      ("spin-us", "step protocol: poll stdin US microseconds before a read that sleeps", text()->default_value("0"), "US")
      ("no-collapse", "step protocol: run every node of a chain as its own event (README, Collapsed runs)")
      ("h,help", "print this help");
  options.set_width(110).allow_unrecognised_options();  // rejectUnmatched reports them
  return options;
}

void rejectUnmatched(const std::vector<std::string>& unmatched) {
  if (unmatched.empty()) return;
  const std::string& arg = unmatched.front();
  if (arg.rfind("--", 0) != 0) fail(kExitUsage, "unexpected argument '" + arg + "' (see --help)");
  fail(kExitUsage, "unknown option " + arg.substr(0, arg.find('=')) + " (see --help)");
}

std::string text(const cxxopts::ParseResult& args, const std::string& flag) {
  const cxxopts::OptionValue& value = args[flag];
  return value.count() || value.has_default() ? value.as<std::string>() : "";
}

double number(const cxxopts::ParseResult& args, const std::string& flag) {
  return parseFiniteNumber(text(args, flag), kExitUsage, "--" + flag);
}

bool boolean(const cxxopts::ParseResult& args, const std::string& flag) {
  std::string value = text(args, flag);
  if (value == "true" || value == "1") return true;
  if (value == "false" || value == "0") return false;
  fail(kExitUsage, "--" + flag + ": expected true or false, got '" + value + "'");
}

int queuesPerDim(const cxxopts::ParseResult& args) {
  double n = number(args, "num-queues-per-dim");
  if (n < 1 || n != std::floor(n) || n > 1024) fail(kExitUsage, "--num-queues-per-dim must be an integer >= 1");
  return static_cast<int>(n);
}

double injectionScale(const cxxopts::ParseResult& args) {
  double scale = number(args, "injection-scale");
  if (scale < 0) fail(kExitUsage, "--injection-scale must be >= 0");
  return scale;
}

int spinMicros(const cxxopts::ParseResult& args) {
  double us = number(args, "spin-us");
  if (us < 0 || us != std::floor(us) || us > 1e6) fail(kExitUsage, "--spin-us must be an integer from 0 to 1000000");
  return static_cast<int>(us);
}

NodeTypeNumbering numbering(const cxxopts::ParseResult& args) {
  std::string value = text(args, "node-type-numbering");
  if (value == "upstream") return NodeTypeNumbering::Upstream;
  if (value == "casys") return NodeTypeNumbering::Casys;
  fail(kExitUsage, "--node-type-numbering must be upstream or casys");
}

Mode mode(const cxxopts::ParseResult& args) {
  std::string protocol = text(args, "protocol");
  if (protocol != "compat" && protocol != "step") fail(kExitUsage, "--protocol must be compat or step");
  if (!boolean(args, "batch")) return protocol == "step" ? Mode::Step : Mode::Interactive;
  if (protocol == "step") fail(kExitUsage, "--batch and --protocol=step exclude each other");
  return Mode::Batch;
}

}  // namespace

std::string usage() { return makeOptions().help(); }

CommandLine parseCommandLine(int argc, char** argv) {
  cxxopts::ParseResult args;
  try {
    args = makeOptions().parse(argc, argv);
  } catch (const cxxopts::exceptions::exception& e) {
    fail(kExitUsage, std::string(e.what()) + " (see --help)");
  }
  rejectUnmatched(args.unmatched());
  number(args, "comm-scale");     // accepted, unused (as upstream)
  number(args, "compute-scale");  // accepted, unused (as upstream)
  if (boolean(args, "rendezvous-protocol")) fail(kExitUsage, "--rendezvous-protocol=true is not supported");

  CommandLine cli;
  cli.workload = text(args, "workload-configuration");
  cli.system = text(args, "system-configuration");
  cli.network = text(args, "network-configuration");
  cli.memory = text(args, "remote-memory-configuration");
  cli.commGroups = text(args, "comm-group-configuration");
  cli.spanFile = text(args, "span-file");
  cli.queuesPerDim = queuesPerDim(args);
  cli.injectionScale = injectionScale(args);
  cli.spinMicros = spinMicros(args);
  cli.collapse = args.count("no-collapse") == 0;
  cli.mode = mode(args);
  cli.numbering = numbering(args);
  if (cli.system.empty()) fail(kExitUsage, "--system-configuration is required (see --help)");
  if (cli.network.empty()) fail(kExitUsage, "--network-configuration is required (see --help)");
  if (cli.workload.empty() && cli.mode != Mode::Step) fail(kExitUsage, "--workload-configuration is required (optional only with --protocol=step)");
  return cli;
}

}  // namespace engine
