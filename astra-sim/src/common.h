// Shared basic types and the error type every failure is reported with.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>

namespace engine {

using Tick = uint64_t;  // simulated nanoseconds

// Exit codes of the executable.
enum ExitCode : int {
  kExitInput = 1,     // missing/unreadable/invalid input file or value
  kExitUsage = 2,     // bad command line or protocol misuse
  kExitDeadlock = 3,  // a workload can no longer progress
};

// Thrown for every user-visible failure; main() prints `error: <message>` and exits with `code`.
class SimError : public std::runtime_error {
 public:
  SimError(int code, const std::string& message) : std::runtime_error(message), code_(code) {}
  int code() const { return code_; }

 private:
  int code_;
};

[[noreturn]] inline void fail(int code, const std::string& message) { throw SimError(code, message); }

// The whole of `text` as a finite number, or fail(code, "<where>: '<text>' is not a number").
double parseFiniteNumber(const std::string& text, int code, const std::string& where);

// The bytes of a whole file, or fail(kExitInput, "cannot read <what> '<path>'").
std::string readTextFile(const std::string& path, const std::string& what);

}  // namespace engine
