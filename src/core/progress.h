// A one-line terminal progress bar: step/total, named values (loss, PSNR…), it/s and ETA, on stderr.
#pragma once
#include <chrono>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace nd {

class ProgressBar {
 public:
  // total: number of steps (0 = unknown); label: printed before the bar.
  ProgressBar(int64_t total, std::string label, bool enabled = true);
  // Reports that `step` steps are done, with values shown as "name value".
  void update(int64_t step, const std::vector<std::pair<std::string, double>>& values = {});
  // Prints the final state and a newline.
  void finish();
  double elapsed_seconds() const;

 private:
  void draw(bool final_line);
  int64_t total_;
  int64_t step_ = 0;
  std::string label_;
  bool enabled_;
  bool is_tty_;
  std::vector<std::pair<std::string, double>> values_;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

// "1m05s"-style duration.
std::string format_duration(double seconds);

}  // namespace nd
