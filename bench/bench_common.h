// Shared by the benchmark binaries: timing with alternation, and the JSON line format of
// shared/spec/bench.md (one line per figure on stdout; everything else on stderr).
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace nd::bench {

inline double now_seconds() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

inline double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// Times `a` and `b` alternately (a, b, a, b, ...) after one warm-up call each, for `rounds` rounds.
// Returns the median seconds per call of each.
inline std::pair<double, double> time_alternating(const std::function<void()>& a,
                                                  const std::function<void()>& b, int rounds) {
  a();
  b();
  std::vector<double> ta, tb;
  for (int i = 0; i < rounds; ++i) {
    double t0 = now_seconds();
    a();
    double t1 = now_seconds();
    b();
    double t2 = now_seconds();
    ta.push_back(t1 - t0);
    tb.push_back(t2 - t1);
  }
  return {median(ta), median(tb)};
}

// Median seconds per call of f over `rounds` calls after one warm-up.
inline double time_median(const std::function<void()>& f, int rounds) {
  f();
  std::vector<double> t;
  for (int i = 0; i < rounds; ++i) {
    double t0 = now_seconds();
    f();
    t.push_back(now_seconds() - t0);
  }
  return median(t);
}

// Prints one figure. baseline <= 0 means none; ratio = value / baseline (rates: higher is better).
inline void print_figure(const std::string& name, double value, const std::string& unit,
                         const nlohmann::json& config, double baseline = 0) {
  nlohmann::json j = {{"name", name}, {"value", value}, {"unit", unit}};
  if (baseline > 0) {
    j["baseline"] = baseline;
    j["ratio"] = value / baseline;
  }
  j["config"] = config;
  std::printf("%s\n", j.dump().c_str());
  std::fflush(stdout);
}

inline bool has_flag(int argc, char** argv, const char* flag) {
  for (int i = 1; i < argc; ++i)
    if (std::string(argv[i]) == flag) return true;
  return false;
}

}  // namespace nd::bench
