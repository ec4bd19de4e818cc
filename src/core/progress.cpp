#include "core/progress.h"

#include <unistd.h>

#include <cmath>
#include <cstdio>

namespace nd {

std::string format_duration(double s) {
  if (!std::isfinite(s) || s < 0) return "?";
  char buf[32];
  const int64_t t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600)
    std::snprintf(buf, sizeof buf, "%ldh%02ldm", long(t / 3600), long(t / 60 % 60));
  else if (t >= 60)
    std::snprintf(buf, sizeof buf, "%ldm%02lds", long(t / 60), long(t % 60));
  else
    std::snprintf(buf, sizeof buf, "%.1fs", s);
  return buf;
}

ProgressBar::ProgressBar(int64_t total, std::string label, bool enabled)
    : total_(total), label_(std::move(label)), enabled_(enabled), is_tty_(::isatty(STDERR_FILENO) != 0) {
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

double ProgressBar::elapsed_seconds() const {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
}

void ProgressBar::update(int64_t step, const std::vector<std::pair<std::string, double>>& values) {
  step_ = step;
  if (!values.empty()) values_ = values;
  const auto now = std::chrono::steady_clock::now();
  // Redraw at most 10×/s on a terminal, every 5 s into a log file.
  const double min_gap = is_tty_ ? 0.1 : 5.0;
  if (std::chrono::duration<double>(now - last_draw_).count() < min_gap) return;
  last_draw_ = now;
  draw(false);
}

void ProgressBar::finish() { draw(true); }

void ProgressBar::draw(bool final_line) {
  if (!enabled_) return;
  const double elapsed = elapsed_seconds();
  const double rate = elapsed > 0 ? step_ / elapsed : 0;
  std::string line = label_ + " ";
  char buf[128];
  if (total_ > 0) {
    const int width = 24;
    const double frac = std::min(1.0, double(step_) / total_);
    const int filled = static_cast<int>(frac * width);
    line += "[" + std::string(filled, '#') + std::string(width - filled, '.') + "] ";
    std::snprintf(buf, sizeof buf, "%ld/%ld", long(step_), long(total_));
    line += buf;
  } else {
    std::snprintf(buf, sizeof buf, "%ld", long(step_));
    line += buf;
  }
  for (const auto& [name, value] : values_) {
    std::snprintf(buf, sizeof buf, " %s %.4g", name.c_str(), value);
    line += buf;
  }
  std::snprintf(buf, sizeof buf, " | %.2f it/s", rate);
  line += buf;
  if (final_line)
    line += " | " + format_duration(elapsed);
  else if (total_ > 0 && rate > 0)
    line += " | ETA " + format_duration((total_ - step_) / rate);
  if (is_tty_)
    std::fprintf(stderr, "\r\033[K%s%s", line.c_str(), final_line ? "\n" : "");
  else
    std::fprintf(stderr, "%s\n", line.c_str());
  std::fflush(stderr);
}

}  // namespace nd
