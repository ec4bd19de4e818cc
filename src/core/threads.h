// Thread count for LibTorch and our OpenMP kernels (Debian's LibTorch defaults to ONE thread).
#pragma once

namespace nd {

// Sets LibTorch's intra-op pool and OpenMP to `n` threads; n <= 0 means all cores.
void set_threads(int n);

// Number of threads our kernels run with.
int num_threads();

}  // namespace nd

namespace nd {

// Keeps freed large blocks in the heap instead of returning them to the kernel: every training step
// allocates tensors of tens of MB, and re-faulting fresh pages costs ~0.5 ms per MB on these VMs.
void keep_freed_memory();

}  // namespace nd
