// Helpers shared by the test binaries (tests/ is on every test's include path).
#pragma once
#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"

namespace nd::test {

// ../shared/golden beside the repository (tests skip when it is absent).
inline const std::string kGolden = NERFDREAM_SOURCE_DIR "/../shared/golden";

// The InputError message f() throws, or "<no InputError>".
template <class F>
std::string input_error_of(F&& f) {
  try {
    f();
  } catch (const nd::InputError& e) {
    return e.what();
  }
  return "<no InputError>";
}

inline bool contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// Max |a − b| in float64; the shapes must agree.
inline double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

}  // namespace nd::test
