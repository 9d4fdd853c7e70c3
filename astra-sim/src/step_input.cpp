#include "step_input.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <iostream>

#include <poll.h>
#include <sched.h>
#include <unistd.h>

namespace engine {

namespace {
constexpr size_t kReadSize = 1 << 16;
}

void StepInput::spin() const {
  if (spinMicros_ <= 0) return;
  const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(spinMicros_);
  pollfd input{fd_, POLLIN, 0};
  while (::poll(&input, 1, 0) == 0 && std::chrono::steady_clock::now() < until) sched_yield();
}

bool StepInput::fill() {
  if (eof_) return false;
  if (begin_ > 0) {  // keep the unconsumed bytes at the front
    std::memmove(buffer_.data(), buffer_.data() + begin_, end_ - begin_);
    end_ -= begin_;
    begin_ = 0;
  }
  if (buffer_.size() < end_ + kReadSize) buffer_.resize(std::max(end_ + kReadSize, 2 * buffer_.size()));
  std::cout.flush();  // every reply out before waiting for input
  spin();
  for (;;) {
    ssize_t got = ::read(fd_, buffer_.data() + end_, buffer_.size() - end_);
    if (got > 0) {
      end_ += static_cast<size_t>(got);
      return true;
    }
    if (got < 0 && errno == EINTR) continue;
    eof_ = true;  // end of input (or an unreadable stdin, which ends the session the same way)
    return false;
  }
}

bool StepInput::line(std::string_view& out) {
  size_t searched = begin_;
  for (;;) {
    const void* newline = end_ > searched ? std::memchr(buffer_.data() + searched, '\n', end_ - searched) : nullptr;
    if (newline) {
      size_t at = static_cast<const char*>(newline) - buffer_.data();
      out = std::string_view(buffer_.data() + begin_, at - begin_);
      begin_ = at + 1;
      return true;
    }
    searched = end_ - begin_;  // offset from the start once fill() has moved the bytes to the front
    if (!fill()) break;
  }
  if (begin_ == end_) return false;
  out = std::string_view(buffer_.data() + begin_, end_ - begin_);  // the last line, without '\n'
  begin_ = end_;
  return true;
}

bool StepInput::bytes(size_t count, std::string_view& out) {
  while (end_ - begin_ < count) {
    if (!fill()) return false;
  }
  out = std::string_view(buffer_.data() + begin_, count);
  begin_ += count;
  return true;
}

}  // namespace engine
