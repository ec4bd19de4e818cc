#include "io/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <set>

#include "core/atomic_file.h"
#include "core/error.h"

// The data buffer is little-endian; we copy it byte for byte into tensors.
static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__, "safetensors I/O assumes a little-endian host");

namespace nd {
namespace {

struct DtypeEntry {
  const char* name;
  size_t size;
  at::ScalarType type;  // Undefined: listed by the format, not loadable here
};

// Every dtype of the format (so that files holding others still open and list), and the LibTorch type we
// load each into.
constexpr DtypeEntry kDtypes[] = {
    {"BOOL", 1, at::kBool},
    {"U8", 1, at::kByte},
    {"I8", 1, at::kChar},
    {"F8_E5M2", 1, at::ScalarType::Undefined},
    {"F8_E4M3", 1, at::ScalarType::Undefined},
    {"I16", 2, at::kShort},
    {"U16", 2, at::ScalarType::Undefined},
    {"F16", 2, at::kHalf},
    {"BF16", 2, at::kBFloat16},
    {"I32", 4, at::kInt},
    {"U32", 4, at::ScalarType::Undefined},
    {"F32", 4, at::kFloat},
    {"F64", 8, at::kDouble},
    {"I64", 8, at::kLong},
    {"U64", 8, at::ScalarType::Undefined},
    {"F8_E8M0", 1, at::ScalarType::Undefined},
    {"C64", 8, at::ScalarType::Undefined},
};
// Not listed: the sub-byte F4/F6_E2M3/F6_E3M2 of recent versions; files holding them are rejected as having
// an unknown dtype.

const DtypeEntry* find_dtype(const std::string& name) {
  for (const DtypeEntry& d : kDtypes)
    if (name == d.name) return &d;
  return nullptr;
}

const char* dtype_name_or_null(at::ScalarType type) {
  if (type == at::ScalarType::Undefined) return nullptr;
  for (const DtypeEntry& d : kDtypes)
    if (d.type == type) return d.name;
  return nullptr;
}

// A JSON-quoted, ASCII-only, length-capped rendering of a name for one-line messages (names may hold
// newlines or be megabytes long in a hostile file).
std::string quote(const std::string& s) {
  std::string q =
      nlohmann::json(s).dump(-1, ' ', /*ensure_ascii=*/true, nlohmann::json::error_handler_t::replace);
  if (q.size() > 100) q = q.substr(0, 96) + "...\"";
  return q;
}

uint64_t read_le64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

// Streams the header JSON (nlohmann's SAX parser checks syntax and UTF-8) straight into a
// SafetensorsHeader, validating the schema as it goes: no DOM, so a hostile header costs no more memory
// than the entries it really describes.
class HeaderParser : public nlohmann::json::json_sax_t {
 public:
  HeaderParser(std::string where, SafetensorsHeader& out) : where_(std::move(where)), out_(out) {}

  bool null() override { return primitive("null"); }
  bool boolean(bool) override { return primitive("a boolean"); }
  bool number_integer(number_integer_t v) override {
    return v >= 0 ? integer(static_cast<uint64_t>(v)) : primitive("a negative number");
  }
  bool number_unsigned(number_unsigned_t v) override { return integer(v); }
  bool number_float(number_float_t, const string_t&) override { return primitive("a non-integer number"); }
  bool binary(binary_t&) override { return primitive("binary data"); }
  bool string(string_t& s) override {
    if (state_ == State::kEntry && field_ == "dtype") {
      info_.dtype = s;
      return true;
    }
    if (state_ == State::kMetadata) {
      out_.metadata[field_] = s;
      return true;
    }
    return primitive("a string");
  }

  bool start_object(std::size_t) override {
    switch (state_) {
      case State::kStart:
        state_ = State::kTop;
        return true;
      case State::kTop:
        if (name_ == "__metadata__") {
          state_ = State::kMetadata;
        } else {
          state_ = State::kEntry;
          info_ = TensorInfo();
          fields_.clear();
          offsets_.clear();
        }
        return true;
      case State::kSkip:
        ++skip_depth_;
        return true;
      default:
        if (state_ == State::kEntry && !known_field()) return start_skip();
        return primitive("an object");
    }
  }
  bool start_array(std::size_t) override {
    switch (state_) {
      case State::kEntry:
        if (field_ == "shape") {
          state_ = State::kShape;
          return true;
        }
        if (field_ == "data_offsets") {
          state_ = State::kOffsets;
          return true;
        }
        if (!known_field()) return start_skip();
        return primitive("a list");
      case State::kSkip:
        ++skip_depth_;
        return true;
      default:
        return primitive("a list");
    }
  }
  bool end_array() override {
    switch (state_) {
      case State::kShape:
        state_ = State::kEntry;
        return true;
      case State::kOffsets:
        if (offsets_.size() != 2) fail_entry("data_offsets must be two integers [begin, end]");
        state_ = State::kEntry;
        return true;
      default:  // kSkip
        return end_skip();
    }
  }
  bool end_object() override {
    switch (state_) {
      case State::kTop:
        state_ = State::kDone;
        return true;
      case State::kEntry:
        finish_entry();
        state_ = State::kTop;
        return true;
      case State::kMetadata:
        state_ = State::kTop;
        return true;
      default:  // kSkip
        return end_skip();
    }
  }
  bool key(string_t& k) override {
    switch (state_) {
      case State::kTop:
        if (out_.tensors.count(k) || (k == "__metadata__" && seen_metadata_))
          fail("duplicate key " + quote(k) + " in the header");
        if (k == "__metadata__") {
          seen_metadata_ = true;
        } else {
          if (++entries_ > kSafetensorsMaxEntries)
            fail("more than " + std::to_string(kSafetensorsMaxEntries) + " tensors in the header");
          // Claims the name now, so that a duplicate is caught even before this entry is complete.
          current_ = out_.tensors.emplace(k, TensorInfo()).first;
        }
        name_ = k;
        return true;
      case State::kEntry:
        if (!fields_.insert(k).second) fail_entry("duplicate key " + quote(k));
        field_ = k;
        return true;
      case State::kMetadata:
        if (out_.metadata.count(k)) fail("__metadata__: duplicate key " + quote(k));
        field_ = k;
        return true;
      default:  // kSkip: keys inside a value we ignore
        return true;
    }
  }
  bool parse_error(std::size_t, const std::string&, const nlohmann::detail::exception& e) override {
    std::string what = e.what();
    const size_t bracket = what.find("] ");
    if (bracket != std::string::npos) what = what.substr(bracket + 2);
    if (what.size() > 200) what = what.substr(0, 200) + "...";
    fail("header is not valid JSON: " + what);
    return false;
  }

  // Checks that the entries tile the data buffer exactly (as the reference implementation does).
  void check_layout() const {
    std::vector<std::pair<const std::string*, const TensorInfo*>> order;
    order.reserve(out_.tensors.size());
    for (const auto& [name, info] : out_.tensors) order.emplace_back(&name, &info);
    std::sort(order.begin(), order.end(), [](const auto& a, const auto& b) {
      return std::make_pair(a.second->begin, a.second->end) < std::make_pair(b.second->begin, b.second->end);
    });
    uint64_t pos = 0;
    const std::string* previous = nullptr;
    for (const auto& [name, info] : order) {
      if (info->begin < pos)
        fail("tensors " + quote(*previous) + " and " + quote(*name) + " overlap in the data buffer");
      if (info->begin > pos)
        fail("bytes [" + std::to_string(pos) + ", " + std::to_string(info->begin) +
             ") of the data buffer belong to no tensor (a hole before " + quote(*name) + ")");
      pos = info->end;
      previous = name;
    }
    if (pos != out_.data_bytes)
      fail("the last " + std::to_string(out_.data_bytes - pos) + " bytes of the data buffer (" +
           std::to_string(out_.data_bytes) + " bytes) belong to no tensor");
  }

  bool done() const { return state_ == State::kDone; }

 private:
  enum class State { kStart, kTop, kEntry, kMetadata, kShape, kOffsets, kSkip, kDone };

  [[noreturn]] void fail(const std::string& what) const { throw InputError(where_ + what); }
  [[noreturn]] void fail_entry(const std::string& what) const {
    fail("tensor " + quote(name_) + ": " + what);
  }
  bool known_field() const { return field_ == "dtype" || field_ == "shape" || field_ == "data_offsets"; }

  // Other keys of an entry are ignored, as the reference implementation does.
  bool start_skip() {
    state_ = State::kSkip;
    skip_depth_ = 1;
    return true;
  }
  bool end_skip() {
    if (--skip_depth_ == 0) state_ = State::kEntry;
    return true;
  }

  bool integer(uint64_t v) {
    if (state_ == State::kShape) {
      if (v > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
        fail_entry("shape dimension " + std::to_string(v) + " is too large");
      if (info_.shape.size() >= kSafetensorsMaxDims)
        fail_entry("shape has more than " + std::to_string(kSafetensorsMaxDims) + " dimensions");
      info_.shape.push_back(static_cast<int64_t>(v));
      return true;
    }
    if (state_ == State::kOffsets) {
      if (offsets_.size() >= 2) fail_entry("data_offsets must be two integers [begin, end]");
      offsets_.push_back(v);
      return true;
    }
    return primitive("an integer");
  }

  // A value that is wrong wherever it appears, except as the value of an ignored key.
  bool primitive(const char* kind) {
    switch (state_) {
      case State::kSkip:
        return true;
      case State::kTop:
        if (name_ == "__metadata__")
          fail(std::string("__metadata__ must be an object of strings, not ") + kind);
        fail("entry " + quote(name_) + " must be an object, not " + kind);
      case State::kEntry:
        if (field_ == "dtype") fail_entry(std::string("dtype must be a string, not ") + kind);
        if (field_ == "shape")
          fail_entry(std::string("shape must be a list of non-negative integers, not ") + kind);
        if (field_ == "data_offsets")
          fail_entry(std::string("data_offsets must be two integers, not ") + kind);
        return true;
      case State::kMetadata:
        fail("__metadata__: value of " + quote(field_) + " must be a string, not " + kind);
      case State::kShape:
        fail_entry(std::string("shape must be a list of non-negative integers; it holds ") + kind);
      case State::kOffsets:
        fail_entry(std::string("data_offsets must be two non-negative integers; it holds ") + kind);
      default:
        fail(std::string("the header must be a JSON object, not ") + kind);
    }
  }

  void finish_entry() {
    for (const char* f : {"dtype", "shape", "data_offsets"})
      if (!fields_.count(f)) fail_entry(std::string("missing \"") + f + "\"");
    const DtypeEntry* dtype = find_dtype(info_.dtype);
    if (!dtype) fail_entry("unknown dtype " + quote(info_.dtype));
    // The product of the non-zero dimensions must fit int64, so that LibTorch's strides cannot overflow.
    int64_t numel = 1, span = 1;
    for (int64_t d : info_.shape) {
      if (__builtin_mul_overflow(span, std::max<int64_t>(d, 1), &span)) fail_entry("shape product overflows");
      numel *= d;  // |numel| <= span
    }
    uint64_t nbytes = 0;
    if (__builtin_mul_overflow(static_cast<uint64_t>(numel), static_cast<uint64_t>(dtype->size), &nbytes))
      fail_entry("shape product overflows");
    info_.begin = offsets_[0];
    info_.end = offsets_[1];
    if (info_.begin > info_.end)
      fail_entry("data_offsets [" + std::to_string(info_.begin) + ", " + std::to_string(info_.end) +
                 "]: begin is after end");
    if (info_.end > out_.data_bytes)
      fail_entry("data_offsets end " + std::to_string(info_.end) + " is beyond the data buffer (" +
                 std::to_string(out_.data_bytes) + " bytes)");
    if (info_.end - info_.begin != nbytes)
      fail_entry("data_offsets span " + std::to_string(info_.end - info_.begin) + " bytes but " +
                 std::to_string(numel) + " " + info_.dtype + " elements need " + std::to_string(nbytes));
    current_->second = std::move(info_);
  }

  std::string where_;  // "<path>: "
  SafetensorsHeader& out_;
  State state_ = State::kStart;
  std::string name_;                                     // current top-level key
  std::string field_;                                    // current key inside an entry or __metadata__
  TensorInfo info_;                                      // the entry being read
  std::map<std::string, TensorInfo>::iterator current_;  // its place in out_.tensors
  std::set<std::string> fields_;
  std::vector<uint64_t> offsets_;
  int64_t skip_depth_ = 0;
  size_t entries_ = 0;
  bool seen_metadata_ = false;
};

}  // namespace

int64_t TensorInfo::numel() const {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

size_t safetensors_dtype_size(const std::string& dtype) {
  const DtypeEntry* d = find_dtype(dtype);
  return d ? d->size : 0;
}

std::string safetensors_dtype_name(at::ScalarType type) {
  const char* name = dtype_name_or_null(type);
  if (!name) throw InputError(std::string("safetensors: cannot store dtype ") + c10::toString(type));
  return name;
}

// ---------------------------------------------------------------------------------------------------------
// Reader

struct SafetensorsFile::Buffer {
  const uint8_t* data = nullptr;
  uint64_t size = 0;
  void* map = nullptr;
  size_t map_size = 0;
  std::string owned;

  Buffer() = default;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  ~Buffer() {
    if (map) ::munmap(map, map_size);
  }
};

SafetensorsFile::SafetensorsFile(std::string path, std::shared_ptr<const Buffer> buffer)
    : path_(std::move(path)), buffer_(std::move(buffer)) {
  header_ = parse_header(buffer_->data, buffer_->size, buffer_->size, path_);
}

SafetensorsHeader SafetensorsFile::parse_header(const uint8_t* bytes, size_t size, uint64_t file_size,
                                                const std::string& name) {
  const std::string where = name + ": ";
  if (file_size < 8)
    throw InputError(where + "file is " + std::to_string(file_size) +
                     " bytes, shorter than the 8-byte header length (not a safetensors file)");
  if (size < 8) throw InputError(where + "only " + std::to_string(size) + " bytes of the file are available");
  SafetensorsHeader out;
  const uint64_t n = read_le64(bytes);
  if (n > kSafetensorsMaxHeaderBytes)
    throw InputError(where + "header length " + std::to_string(n) + " exceeds the format's limit of " +
                     std::to_string(kSafetensorsMaxHeaderBytes) + " bytes (not a safetensors file?)");
  if (n > file_size - 8)
    throw InputError(where + "header length " + std::to_string(n) + " exceeds the file size minus 8 (" +
                     std::to_string(file_size - 8) + " bytes): truncated or not a safetensors file");
  if (size - 8 < n)
    throw InputError(where + "only " + std::to_string(size) + " of the " + std::to_string(8 + n) +
                     " header bytes are available");
  out.header_bytes = n;
  out.data_bytes = file_size - 8 - n;
  const uint8_t* json = bytes + 8;
  // JSON whitespace may precede the object (the reference accepts it); a byte-order mark may not (nlohmann
  // would skip one, serde_json does not).
  size_t first = 0;
  while (first < n &&
         (json[first] == ' ' || json[first] == '\t' || json[first] == '\n' || json[first] == '\r'))
    ++first;
  if (first == n || json[first] != '{')
    throw InputError(where + "header does not start with '{' (not a safetensors file?)");

  HeaderParser parser(where, out);
  nlohmann::json::sax_parse(json, json + n, &parser, nlohmann::json::input_format_t::json, /*strict=*/true);
  if (!parser.done()) throw InputError(where + "header is not a complete JSON object");
  parser.check_layout();
  return out;
}

SafetensorsFile SafetensorsFile::open(const std::string& path) {
  // O_NONBLOCK: opening a FIFO must not hang; it is rejected below as not a regular file.
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) throw InputError(path + ": cannot open: " + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw InputError(path + ": not a regular file");
  }
  auto buffer = std::make_shared<Buffer>();
  buffer->size = static_cast<uint64_t>(st.st_size);
  if (buffer->size >= 8) {
    void* map = ::mmap(nullptr, buffer->size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED) {
      const int err = errno;
      ::close(fd);
      throw InputError(path + ": cannot map the file: " + std::strerror(err));
    }
    buffer->map = map;
    buffer->map_size = buffer->size;
    buffer->data = static_cast<const uint8_t*>(map);
  } else {
    // Too short to be valid: read the few bytes so that parse_header gives its usual message.
    buffer->owned.resize(buffer->size);
    const ssize_t got = buffer->size ? ::read(fd, buffer->owned.data(), buffer->size) : 0;
    buffer->owned.resize(got > 0 ? static_cast<size_t>(got) : 0);
    buffer->size = buffer->owned.size();
    buffer->data = reinterpret_cast<const uint8_t*>(buffer->owned.data());
  }
  ::close(fd);  // the mapping stays valid
  return SafetensorsFile(path, std::move(buffer));
}

SafetensorsFile SafetensorsFile::from_buffer(std::string bytes, const std::string& name) {
  auto buffer = std::make_shared<Buffer>();
  buffer->owned = std::move(bytes);
  buffer->data = reinterpret_cast<const uint8_t*>(buffer->owned.data());
  buffer->size = buffer->owned.size();
  return SafetensorsFile(name, std::move(buffer));
}

std::vector<std::string> SafetensorsFile::names() const {
  std::vector<std::string> out;
  out.reserve(header_.tensors.size());
  for (const auto& entry : header_.tensors) out.push_back(entry.first);
  return out;
}

bool SafetensorsFile::contains(const std::string& name) const { return header_.tensors.count(name) > 0; }

const TensorInfo& SafetensorsFile::info(const std::string& name) const {
  auto it = header_.tensors.find(name);
  if (it == header_.tensors.end()) throw InputError(path_ + ": no tensor named " + quote(name));
  return it->second;
}

at::Tensor SafetensorsFile::load_as_stored(const std::string& name) const {
  const TensorInfo& ti = info(name);
  const DtypeEntry* dtype = find_dtype(ti.dtype);  // non-null: validated when opened
  if (dtype->type == at::ScalarType::Undefined)
    throw InputError(path_ + ": tensor " + quote(name) + " has dtype " + ti.dtype +
                     ", which nerfdream cannot load");
  const uint8_t* src = buffer_->data + 8 + header_.header_bytes + ti.begin;
  if (dtype->type == at::kBool) {
    // Any byte other than 0/1 in a bool tensor is undefined behaviour in LibTorch's kernels.
    const uint8_t* bad = std::find_if(src, src + ti.nbytes(), [](uint8_t b) { return b > 1; });
    if (bad != src + ti.nbytes())
      throw InputError(path_ + ": tensor " + quote(name) + ": BOOL element " + std::to_string(bad - src) +
                       " is " + std::to_string(*bad) + ", not 0 or 1");
  }
  at::Tensor t = at::empty(ti.shape, at::TensorOptions().dtype(dtype->type));
  if (ti.nbytes() > 0) std::memcpy(t.data_ptr(), src, ti.nbytes());
  return t;
}

at::Tensor SafetensorsFile::load(const std::string& name, at::ScalarType to) const {
  return load_as_stored(name).to(to);
}

std::map<std::string, at::Tensor> load_safetensors(const std::string& path) {
  const SafetensorsFile file = SafetensorsFile::open(path);
  std::map<std::string, at::Tensor> out;
  for (const auto& entry : file.header().tensors) out.emplace(entry.first, file.load_as_stored(entry.first));
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Writer

void save_safetensors(const std::string& path, const std::map<std::string, at::Tensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  const std::string where = path + ": ";
  if (tensors.size() > kSafetensorsMaxEntries)
    throw InputError(where + "more than " + std::to_string(kSafetensorsMaxEntries) + " tensors");
  auto json_string = [&](const std::string& s) {
    try {
      return nlohmann::json(s).dump();
    } catch (const nlohmann::json::exception&) {
      throw InputError(where + "name or metadata " + quote(s) + " is not valid UTF-8");
    }
  };

  // serde_json's compact form, as the reference writer emits it; std::map gives byte-wise name order.
  std::string header = "{";
  if (!metadata.empty()) {
    header += "\"__metadata__\":{";
    bool first = true;
    for (const auto& [k, v] : metadata) {
      if (!first) header += ",";
      first = false;
      header += json_string(k) + ":" + json_string(v);
    }
    header += "}";
  }
  std::vector<at::Tensor> contiguous;
  contiguous.reserve(tensors.size());
  uint64_t offset = 0;
  for (const auto& [name, tensor] : tensors) {
    if (name == "__metadata__") throw InputError(where + "a tensor cannot be named \"__metadata__\"");
    if (!tensor.defined()) throw InputError(where + "tensor " + quote(name) + " is undefined");
    if (tensor.layout() != at::kStrided) throw InputError(where + "tensor " + quote(name) + " is not dense");
    const char* dtype = dtype_name_or_null(tensor.scalar_type());
    if (!dtype)
      throw InputError(where + "tensor " + quote(name) + ": safetensors cannot store dtype " +
                       c10::toString(tensor.scalar_type()));
    at::Tensor c = tensor.detach().to(at::kCPU).contiguous();
    const uint64_t nbytes = static_cast<uint64_t>(c.numel()) * c.element_size();
    if (header.size() > 1) header += ",";
    header += json_string(name) + ":{\"dtype\":\"" + dtype + "\",\"shape\":[";
    for (int64_t i = 0; i < c.dim(); ++i) header += (i ? "," : "") + std::to_string(c.size(i));
    header += "],\"data_offsets\":[" + std::to_string(offset) + "," + std::to_string(offset + nbytes) + "]}";
    offset += nbytes;
    contiguous.push_back(std::move(c));
  }
  header += "}";
  // Pad so that the data buffer starts 8-byte aligned (8 + N is a multiple of 8).
  header.append((8 - header.size() % 8) % 8, ' ');
  if (header.size() > kSafetensorsMaxHeaderBytes)
    throw InputError(where + "header of " + std::to_string(header.size()) +
                     " bytes exceeds the format's limit");

  write_atomically(path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    if (!out) throw InputError("cannot write " + path);
    uint8_t length[8];
    for (int i = 0; i < 8; ++i)
      length[i] = static_cast<uint8_t>(static_cast<uint64_t>(header.size()) >> (8 * i));
    out.write(reinterpret_cast<const char*>(length), 8);
    out.write(header.data(), static_cast<std::streamsize>(header.size()));
    for (const at::Tensor& c : contiguous) {
      const size_t nbytes = static_cast<size_t>(c.numel()) * c.element_size();
      if (nbytes > 0) out.write(static_cast<const char*>(c.data_ptr()), static_cast<std::streamsize>(nbytes));
    }
    out.close();
    if (!out) throw InputError("cannot write " + path);
  });
}

}  // namespace nd
