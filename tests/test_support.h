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

// A fresh, empty directory for the running test (named after it), removed when the test ends.
struct TempDir {
  std::string path;
  TempDir() {
    const auto* info = testing::UnitTest::GetInstance()->current_test_info();
    auto dir = std::filesystem::path(testing::TempDir()) /
               ("nd_" + std::to_string(::getpid()) + "_" + info->test_suite_name() + "_" + info->name());
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    path = dir.string();
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

}  // namespace nd::test
