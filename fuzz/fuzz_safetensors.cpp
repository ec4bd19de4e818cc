// libFuzzer target for the safetensors reader: any bytes must either be rejected with nd::InputError or
// open and load completely. Crashes, sanitizer reports, other exceptions and broken invariants are bugs.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cstdint>
#include <cstdlib>
#include <string>

#include "core/error.h"
#include "io/safetensors.h"

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  at::set_num_threads(1);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // The header alone, from a prefix of the bytes (a file is read this way when only its start is mapped).
  try {
    nd::SafetensorsFile::parse_header(data, size, size, "fuzz");
  } catch (const nd::InputError&) {
  }
  // The whole file in memory: open, then load every tensor both as stored and converted to float.
  try {
    const auto file =
        nd::SafetensorsFile::from_buffer(std::string(reinterpret_cast<const char*>(data), size), "fuzz");
    uint64_t covered = 0;
    for (const std::string& name : file.names()) {
      const nd::TensorInfo& info = file.info(name);
      covered += info.nbytes();
      try {
        const at::Tensor stored = file.load_as_stored(name);
        if (static_cast<uint64_t>(stored.numel() * stored.element_size()) != info.nbytes()) abort();
        const at::Tensor f = file.load(name);
        if (f.scalar_type() != at::kFloat || f.sizes().vec() != info.shape) abort();
      } catch (const nd::InputError&) {
        // Expected only for dtypes LibTorch cannot hold and for BOOL bytes other than 0/1.
      }
    }
    // The entries tile the data buffer exactly.
    if (covered != file.header().data_bytes) abort();
    if (8 + file.header().header_bytes + file.header().data_bytes != size) abort();
  } catch (const nd::InputError&) {
  }
  return 0;
}
