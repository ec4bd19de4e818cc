// Errors that reach the user: one clear line, then a non-zero exit (apps/main.cpp prints them).
#pragma once
#include <stdexcept>
#include <string>

namespace nd {

// Bad input from the user (file, option, prompt): the message is printed as-is, exit code 2.
class InputError : public std::runtime_error {
 public:
  explicit InputError(const std::string& what) : std::runtime_error(what) {}
};

// Throw an InputError when `cond` is false.
inline void require(bool cond, const std::string& message) {
  if (!cond) throw InputError(message);
}

}  // namespace nd
