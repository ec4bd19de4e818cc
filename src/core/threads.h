// Thread count for LibTorch and our OpenMP kernels (Debian's LibTorch defaults to ONE thread).
#pragma once

namespace nd {

// Sets LibTorch's intra-op pool and OpenMP to `n` threads; n <= 0 means all cores.
void set_threads(int n);

// Number of threads our kernels run with.
int num_threads();

}  // namespace nd
