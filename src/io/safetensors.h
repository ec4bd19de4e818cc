// Safetensors checkpoints (https://github.com/huggingface/safetensors): nerfdream's own checkpoint format and
// the format of the Stable Diffusion weights users bring.
//
// File layout: u64 little-endian N, then N bytes of UTF-8 JSON
//   {"<name>": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...,
//    "__metadata__": {"key": "value", ...}}          (optional; strings only)
// then the data buffer: every tensor's bytes, little-endian, C order, at [begin, end) relative to the
// buffer's start. The reader validates everything up front like the reference implementation (the entries
// must tile the buffer exactly, sizes must match shapes), so a bad file gives one InputError line, never a
// crash or a huge allocation; tensor data is then read lazily from a read-only memory map (a file truncated
// by another process while it is open can still end the process with SIGBUS, as with any mmap reader).
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace nd {

// Limits of the format (the reference implementation's) and of ours.
constexpr uint64_t kSafetensorsMaxHeaderBytes = 100'000'000;
constexpr size_t kSafetensorsMaxEntries = 1'000'000;  // a bloated header is a known denial of service
constexpr size_t kSafetensorsMaxDims = 64;            // stricter than the format; no real tensor comes close

// One tensor's entry in the header.
struct TensorInfo {
  std::string dtype;           // "F32", "F16", "BF16", "F64", "I64", "I32", "I16", "I8", "U8", "BOOL",
                               // or one nerfdream can list but not load ("U16", "U32", "U64", "F8_E4M3", ...)
  std::vector<int64_t> shape;  // [] for a 0-d tensor
  uint64_t begin = 0;          // byte range [begin, end) in the data buffer
  uint64_t end = 0;
  int64_t numel() const;
  uint64_t nbytes() const { return end - begin; }
};

// A parsed and validated header.
struct SafetensorsHeader {
  std::map<std::string, TensorInfo> tensors;
  std::map<std::string, std::string> metadata;
  uint64_t header_bytes = 0;  // N: the data buffer starts at byte 8 + N of the file
  uint64_t data_bytes = 0;    // size of the data buffer = file size - 8 - N
};

// Bytes per element of a safetensors dtype string; 0 when the string is not a safetensors dtype.
size_t safetensors_dtype_size(const std::string& dtype);
// The dtype string for a LibTorch scalar type; throws InputError for types safetensors cannot hold here.
std::string safetensors_dtype_name(at::ScalarType type);

class SafetensorsFile {
 public:
  // Maps the file and validates its header; throws InputError "<path>: <what is wrong>".
  static SafetensorsFile open(const std::string& path);
  // The same on bytes already in memory (tests, fuzzing); `name` stands for the path in messages.
  static SafetensorsFile from_buffer(std::string bytes, const std::string& name = "<memory>");
  // Parses and validates the header alone. bytes: the first `size` bytes of a file of `file_size` bytes
  // (size >= 8 + N is needed; more is ignored). Throws InputError "<name>: <what is wrong>".
  static SafetensorsHeader parse_header(const uint8_t* bytes, size_t size, uint64_t file_size,
                                        const std::string& name = "<memory>");

  const std::string& path() const { return path_; }
  std::vector<std::string> names() const;  // sorted
  bool contains(const std::string& name) const;
  const TensorInfo& info(const std::string& name) const;  // InputError naming file and tensor when missing
  const std::map<std::string, std::string>& metadata() const { return header_.metadata; }
  const SafetensorsHeader& header() const { return header_; }

  // A fresh contiguous CPU tensor with the stored shape, converted to `to`. Loads F32/F16/BF16/F64/I64/I32/
  // I16/I8/U8/BOOL; InputError for a missing name, another dtype, or a BOOL byte that is not 0 or 1.
  at::Tensor load(const std::string& name, at::ScalarType to = at::kFloat) const;
  // The same, keeping the stored dtype.
  at::Tensor load_as_stored(const std::string& name) const;

 private:
  struct Buffer;
  SafetensorsFile(std::string path, std::shared_ptr<const Buffer> buffer);
  std::string path_;
  std::shared_ptr<const Buffer> buffer_;  // the whole file (memory map or owned bytes), shared by copies
  SafetensorsHeader header_;
};

// Every tensor of a (small) file, each in its stored dtype.
std::map<std::string, at::Tensor> load_safetensors(const std::string& path);

// Writes contiguous CPU copies of `tensors` (any device, any strides; dtypes F32/F16/BF16/F64/I64/I32/I16/I8/
// U8/BOOL, kept as they are) and the string `metadata`, atomically, as the reference writer lays them out:
// entries sorted by name, header padded with spaces to a multiple of 8, no "__metadata__" key when `metadata`
// is empty. InputError on an unsupported dtype, an undefined tensor, the name "__metadata__", or a name or
// metadata string that is not valid UTF-8.
void save_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata = {});

}  // namespace nd
