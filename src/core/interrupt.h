// Ctrl-C for long runs: the first SIGINT sets a flag that training loops poll (they checkpoint and stop
// cleanly); a second one kills the process at once.
#pragma once
#include <atomic>

namespace nd {

// Installs the SIGINT handler (idempotent) and returns the flag it sets.
const std::atomic<bool>* interrupt_on_sigint();

}  // namespace nd
