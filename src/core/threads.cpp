#include "core/threads.h"

#include <ATen/Parallel.h>
#include <omp.h>

#include <thread>

namespace nd {

void set_threads(int n) {
  if (n <= 0) n = static_cast<int>(std::thread::hardware_concurrency());
  if (n <= 0) n = 1;
  at::set_num_threads(n);
  omp_set_num_threads(n);
}

int num_threads() { return at::get_num_threads(); }

}  // namespace nd

#include <malloc.h>

namespace nd {

void keep_freed_memory() {
  mallopt(M_MMAP_THRESHOLD, 1 << 30);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

}  // namespace nd
