#include "core/interrupt.h"

#include <csignal>

namespace nd {
namespace {

std::atomic<bool> g_interrupted{false};

extern "C" void on_sigint(int) {
  g_interrupted.store(true);
  std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C kills at once
}

}  // namespace

const std::atomic<bool>* interrupt_on_sigint() {
  std::signal(SIGINT, on_sigint);
  return &g_interrupted;
}

}  // namespace nd
