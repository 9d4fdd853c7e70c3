// The step protocol's stdin: command lines and chain payloads read straight from file descriptor 0
// into one growing buffer, handed out as views (no per-command stream or string).
//
// Replies are written to std::cout without flushing; the reader flushes std::cout before every read
// that may block, so every reply reaches the client before the engine waits for more input (what a
// client that waits for a reply needs) and pipelined commands cost one write for all their replies.
//
// Before such a read the reader may poll stdin for a while (`spin`, microseconds), yielding the CPU
// between polls: a command that arrives meanwhile is read without the engine having slept, which on
// a virtual machine saves the wake-up (tens to hundreds of microseconds) that would otherwise be
// paid on every round trip. Polling changes what is read in no way, only when.
#pragma once

#include <cstddef>
#include <string_view>
#include <vector>

namespace engine {

class StepInput {
 public:
  StepInput(int fd, int spinMicros) : fd_(fd), spinMicros_(spinMicros) {}

  // The next line without its '\n' (the last line may lack it); false at the end of the input. The view
  // stays valid until the next call.
  bool line(std::string_view& out);
  // The next `count` bytes; false when the input ends first. The view stays valid until the next call.
  bool bytes(size_t count, std::string_view& out);

 private:
  // Reads more input after the buffered bytes (flushing std::cout first); false at the end of the input.
  bool fill();
  // Polls the input until it is readable or `spinMicros_` have passed.
  void spin() const;

  int fd_;
  int spinMicros_;
  std::vector<char> buffer_;
  size_t begin_ = 0;  // first unconsumed byte
  size_t end_ = 0;    // end of the buffered bytes
  bool eof_ = false;
};

}  // namespace engine
