#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>
#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/threads.h"
#include "io/safetensors.h"

namespace {

namespace fs = std::filesystem;

// A fresh directory under the system temp dir, removed at the end of the test.
class TempDir {
 public:
  TempDir() {
    path_ = fs::temp_directory_path() / ("nd_safetensors_" + std::to_string(::getpid()) + "_" +
                                         ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path_);
    fs::create_directories(path_);
  }
  ~TempDir() { fs::remove_all(path_); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

// 8-byte little-endian length + header + data: the whole file.
std::string make_file(const std::string& header, const std::string& data = "",
                      uint64_t length_field = UINT64_MAX) {
  const uint64_t n = length_field == UINT64_MAX ? header.size() : length_field;
  std::string out(8, '\0');
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>((n >> (8 * i)) & 0xff);
  return out + header + data;
}

// One F32 [2] entry named `name` at `offsets`.
std::string f32_entry(const std::string& name, int begin, int end) {
  return "\"" + name + "\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[" + std::to_string(begin) +
         "," + std::to_string(end) + "]}";
}

// Expects from_buffer(bytes) to throw an InputError that starts with "bad.st: " and contains `needle`.
void expect_rejected(const std::string& bytes, const std::string& needle) {
  try {
    nd::SafetensorsFile::from_buffer(bytes, "bad.st");
    ADD_FAILURE() << "accepted a file that should fail with '" << needle << "'";
  } catch (const nd::InputError& e) {
    const std::string what = e.what();
    EXPECT_EQ(what.rfind("bad.st: ", 0), 0u) << what;
    EXPECT_NE(what.find(needle), std::string::npos) << "message: " << what << "\nexpected: " << needle;
    EXPECT_EQ(what.find('\n'), std::string::npos) << what;
  }
}

std::string bytes_of(const std::string& path) { return nd::read_file(path); }

TEST(Safetensors, RoundTripDtypesAndShapes) {
  nd::set_threads(0);
  TempDir dir;
  at::manual_seed(0);
  std::map<std::string, at::Tensor> tensors = {
      {"f32", at::randn({2, 3})},
      {"f16", at::randn({4}).to(at::kHalf)},
      {"bf16", at::randn({3, 1}).to(at::kBFloat16)},
      {"f64_scalar", at::scalar_tensor(3.25, at::kDouble)},
      {"i64", at::arange(-2, 3, at::kLong)},
      {"i32", at::tensor({7, -8, 9, 10}, at::kInt).reshape({2, 2})},
      {"i16", at::tensor({-300, 300}, at::kShort)},
      {"i8", at::tensor({-128, 127}, at::kChar)},
      {"u8_empty", at::empty({0, 3}, at::kByte)},
      {"bool", at::tensor({1, 0, 1}).to(at::kBool)},
      {"a.nested/name with spaces", at::ones({1, 1, 2})},
  };
  const std::string path = dir.file("round.safetensors");
  nd::save_safetensors(path, tensors, {{"format", "pt"}, {"nerfdream", "0.1"}});

  const std::string raw = bytes_of(path);
  uint64_t n = 0;
  std::memcpy(&n, raw.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(raw.compare(8, 16, "{\"__metadata__\":"), 0);

  const auto file = nd::SafetensorsFile::open(path);
  std::vector<std::string> expected_names;
  for (const auto& [name, t] : tensors) expected_names.push_back(name);
  EXPECT_EQ(file.names(), expected_names);
  EXPECT_EQ(file.metadata().at("format"), "pt");
  EXPECT_EQ(file.metadata().at("nerfdream"), "0.1");
  EXPECT_EQ(file.header().data_bytes, raw.size() - 8 - n);
  for (const auto& [name, t] : tensors) {
    ASSERT_TRUE(file.contains(name)) << name;
    const nd::TensorInfo& info = file.info(name);
    EXPECT_EQ(info.dtype, nd::safetensors_dtype_name(t.scalar_type())) << name;
    EXPECT_EQ(info.shape, t.sizes().vec()) << name;
    EXPECT_EQ(info.nbytes(), static_cast<uint64_t>(t.numel() * t.element_size())) << name;
    const at::Tensor stored = file.load_as_stored(name);
    EXPECT_EQ(stored.scalar_type(), t.scalar_type()) << name;
    EXPECT_TRUE(stored.is_contiguous());
    EXPECT_TRUE(at::equal(stored, t)) << name;
    const at::Tensor f = file.load(name);
    EXPECT_EQ(f.scalar_type(), at::kFloat);
    EXPECT_TRUE(at::equal(f, t.to(at::kFloat))) << name;
  }
  EXPECT_EQ(file.load("f64_scalar").dim(), 0);
  EXPECT_EQ(file.load("f64_scalar").item<float>(), 3.25f);
  EXPECT_EQ(file.load("i64", at::kLong).scalar_type(), at::kLong);

  const auto all = nd::load_safetensors(path);
  ASSERT_EQ(all.size(), tensors.size());
  for (const auto& [name, t] : tensors) EXPECT_TRUE(at::equal(all.at(name), t)) << name;
}

TEST(Safetensors, WritesContiguousCopiesAndExactReferenceLayout) {
  TempDir dir;
  const std::string path = dir.file("layout.safetensors");
  const at::Tensor base = at::arange(6, at::kFloat).reshape({2, 3});
  at::Tensor grad = at::ones({2}, at::kFloat).requires_grad_();
  nd::save_safetensors(path, {{"t", base.t()}, {"g", grad * 2}, {"s", base.slice(1, 1, 2)}}, {{"k", "v"}});
  const auto file = nd::SafetensorsFile::open(path);
  EXPECT_TRUE(at::equal(file.load("t"), base.t().contiguous()));
  EXPECT_TRUE(at::equal(file.load("g"), at::full({2}, 2.f)));
  EXPECT_TRUE(at::equal(file.load("s"), base.slice(1, 1, 2).contiguous()));

  // The reference (serde_json) compact header, sorted by name, space-padded so 8 + N is a multiple of 8.
  nd::save_safetensors(path, {{"b", at::zeros({2}, at::kFloat)}, {"a", at::zeros({1}, at::kHalf)}},
                       {{"k", "v"}});
  const std::string header =
      "{\"__metadata__\":{\"k\":\"v\"},\"a\":{\"dtype\":\"F16\",\"shape\":[1],\"data_offsets\":[0,2]},"
      "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[2,10]}}";
  const std::string padded = header + std::string((8 - header.size() % 8) % 8, ' ');
  EXPECT_EQ(bytes_of(path), make_file(padded, std::string(10, '\0')));

  // No metadata: no "__metadata__" key; no tensors at all is a valid file too.
  nd::save_safetensors(path, {});
  EXPECT_EQ(bytes_of(path), make_file("{}      "));
  const auto empty = nd::SafetensorsFile::open(path);
  EXPECT_TRUE(empty.names().empty());
  EXPECT_TRUE(empty.metadata().empty());
}

TEST(Safetensors, HalfAndBFloat16ConvertToExactFloats) {
  // F16: 1, -2, 65504 (max), 2^-24 (smallest subnormal), +inf; BF16: 1, -3, 3.140625, -0.
  const uint16_t f16[] = {0x3C00, 0xC000, 0x7BFF, 0x0001, 0x7C00};
  const uint16_t bf16[] = {0x3F80, 0xC040, 0x4049, 0x8000};
  std::string data(reinterpret_cast<const char*>(f16), sizeof(f16));
  data.append(reinterpret_cast<const char*>(bf16), sizeof(bf16));
  const std::string header =
      "{\"h\":{\"dtype\":\"F16\",\"shape\":[5],\"data_offsets\":[0,10]},"
      "\"b\":{\"dtype\":\"BF16\",\"shape\":[2,2],\"data_offsets\":[10,18]}}";
  const auto file = nd::SafetensorsFile::from_buffer(make_file(header, data));
  const at::Tensor h = file.load("h");
  ASSERT_EQ(h.scalar_type(), at::kFloat);
  const float* hp = h.data_ptr<float>();
  EXPECT_EQ(hp[0], 1.f);
  EXPECT_EQ(hp[1], -2.f);
  EXPECT_EQ(hp[2], 65504.f);
  EXPECT_EQ(hp[3], std::ldexp(1.f, -24));
  EXPECT_TRUE(std::isinf(hp[4]) && hp[4] > 0);
  const at::Tensor b = file.load("b");
  EXPECT_EQ(b.sizes().vec(), (std::vector<int64_t>{2, 2}));
  const float* bp = b.data_ptr<float>();
  EXPECT_EQ(bp[0], 1.f);
  EXPECT_EQ(bp[1], -3.f);
  EXPECT_EQ(bp[2], 3.140625f);
  EXPECT_TRUE(bp[3] == 0.f && std::signbit(bp[3]));
  EXPECT_EQ(file.load("b", at::kDouble).scalar_type(), at::kDouble);
}

TEST(Safetensors, MetadataRoundTripsAnyStrings) {
  TempDir dir;
  const std::string path = dir.file("meta.safetensors");
  const std::map<std::string, std::string> metadata = {
      {"config", "{\"field\": {\"levels\": 16}}\nline two\t\"quoted\""},
      {"unicode ключ", "température ☃"},
      {"empty", ""},
  };
  nd::save_safetensors(path, {{"x", at::zeros({1})}}, metadata);
  EXPECT_EQ(nd::SafetensorsFile::open(path).metadata(), metadata);
  // Invalid UTF-8 cannot go into the JSON header.
  EXPECT_THROW(nd::save_safetensors(path, {{"x", at::zeros({1})}}, {{"k", "\xff"}}), nd::InputError);
}

TEST(Safetensors, RejectsMalformedFiles) {
  const std::string ok_data(8, '\0');
  // Too short, bad header lengths.
  expect_rejected("", "shorter than the 8-byte header length");
  expect_rejected("\x01\x02\x03", "shorter than the 8-byte header length");
  expect_rejected(make_file("{}", "", 200'000'000), "exceeds the format's limit of 100000000");
  expect_rejected(make_file("{}", "", 3), "exceeds the file size minus 8");
  expect_rejected(make_file("{}      ", "", UINT64_MAX - 1), "exceeds the format's limit");
  // Not a JSON object, not UTF-8, trailing garbage.
  expect_rejected(make_file(""), "does not start with '{'");
  expect_rejected(make_file("[1, 2]"), "does not start with '{'");
  expect_rejected(make_file("\xEF\xBB\xBF{}"), "does not start with '{'");
  expect_rejected(make_file("   "), "does not start with '{'");
  expect_rejected(make_file(" \"a\""), "does not start with '{'");
  expect_rejected(make_file("{\"a\": "), "not valid JSON");
  expect_rejected(make_file("{} x"), "not valid JSON");
  expect_rejected(make_file("{\"\xff\": 1}"), "UTF-8");
  expect_rejected(make_file("{\"a\xC0\xAF\": 1}"), "UTF-8");  // overlong encoding
  // Entries.
  expect_rejected(make_file("{\"a\": 5}"), "entry \"a\" must be an object, not an integer");
  expect_rejected(make_file("{\"a\": [1]}"), "entry \"a\" must be an object, not a list");
  expect_rejected(make_file("{\"a\": {\"shape\":[0],\"data_offsets\":[0,0]}}"), "missing \"dtype\"");
  expect_rejected(make_file("{\"a\": {\"dtype\":\"F32\",\"data_offsets\":[0,0]}}"), "missing \"shape\"");
  expect_rejected(make_file("{\"a\": {\"dtype\":\"F32\",\"shape\":[0]}}"), "missing \"data_offsets\"");
  expect_rejected(make_file("{\"a\":{\"dtype\":\"F128\",\"shape\":[0],\"data_offsets\":[0,0]}}"),
                  "tensor \"a\": unknown dtype \"F128\"");
  expect_rejected(make_file("{\"a\":{\"dtype\":32,\"shape\":[0],\"data_offsets\":[0,0]}}"),
                  "dtype must be a string");
  // Shapes.
  const auto with_shape = [](const std::string& shape) {
    return make_file("{\"a\":{\"dtype\":\"U8\",\"shape\":" + shape + ",\"data_offsets\":[0,0]}}");
  };
  expect_rejected(with_shape("3"), "shape must be a list of non-negative integers");
  expect_rejected(with_shape("[-1]"), "shape must be a list of non-negative integers");
  expect_rejected(with_shape("[1.5]"), "shape must be a list of non-negative integers");
  expect_rejected(with_shape("[\"2\"]"), "shape must be a list of non-negative integers");
  expect_rejected(with_shape("[[2]]"), "shape must be a list of non-negative integers");
  expect_rejected(with_shape("[18446744073709551616]"), "shape must be a list of non-negative integers");
  expect_rejected(with_shape("[9223372036854775808]"), "too large");
  expect_rejected(with_shape("[4294967296, 4294967296]"), "shape product overflows");
  expect_rejected(with_shape("[0, 4294967296, 4294967296]"), "shape product overflows");
  expect_rejected(
      make_file("{\"a\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,0]}}"),
      "shape product overflows");
  // Offsets.
  const auto with_offsets = [&](const std::string& offsets, const std::string& data) {
    return make_file("{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":" + offsets + "}}", data);
  };
  expect_rejected(with_offsets("[0]", ok_data), "data_offsets must be two integers");
  expect_rejected(with_offsets("[0,8,8]", ok_data), "data_offsets must be two integers");
  expect_rejected(with_offsets("{\"b\":0}", ok_data), "data_offsets must be two integers");
  expect_rejected(with_offsets("[\"0\",8]", ok_data), "data_offsets must be two non-negative integers");
  expect_rejected(with_offsets("[-8,0]", ok_data), "data_offsets must be two non-negative integers");
  expect_rejected(with_offsets("[8,0]", ok_data), "begin is after end");
  expect_rejected(with_offsets("[0,16]", ok_data), "end 16 is beyond the data buffer (8 bytes)");
  expect_rejected(with_offsets("[0,4]", ok_data), "span 4 bytes but 2 F32 elements need 8");
  // Layout: overlaps, holes, uncovered trailing bytes.
  expect_rejected(
      make_file("{" + f32_entry("a", 0, 8) + "," + f32_entry("b", 4, 12) + "}", std::string(12, 0)),
      "tensors \"a\" and \"b\" overlap");
  expect_rejected(make_file("{" + f32_entry("a", 0, 8) + "," + f32_entry("b", 0, 8) + "}", ok_data),
                  "overlap");
  expect_rejected(
      make_file("{" + f32_entry("a", 0, 8) + "," + f32_entry("b", 12, 20) + "}", std::string(20, 0)),
      "bytes [8, 12) of the data buffer belong to no tensor");
  expect_rejected(make_file("{" + f32_entry("a", 4, 12) + "}", std::string(12, 0)), "bytes [0, 4)");
  expect_rejected(make_file("{" + f32_entry("a", 0, 8) + "}", std::string(9, 0)), "the last 1 bytes");
  expect_rejected(make_file("{}", "x"), "the last 1 bytes");
  // __metadata__.
  expect_rejected(make_file("{\"__metadata__\": {\"a\": 1}}"),
                  "__metadata__: value of \"a\" must be a string");
  expect_rejected(make_file("{\"__metadata__\": {\"a\": {}}}"), "must be a string");
  expect_rejected(make_file("{\"__metadata__\": [\"a\"]}"), "__metadata__ must be an object of strings");
  expect_rejected(make_file("{\"__metadata__\": null}"), "__metadata__ must be an object of strings");
  // Duplicate keys at every level.
  expect_rejected(make_file("{" + f32_entry("a", 0, 8) + "," + f32_entry("a", 0, 8) + "}", ok_data),
                  "duplicate key \"a\"");
  expect_rejected(make_file("{\"__metadata__\":{},\"__metadata__\":{}}"), "duplicate key \"__metadata__\"");
  expect_rejected(make_file("{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}"),
                  "__metadata__: duplicate key \"k\"");
  expect_rejected(with_offsets("[0,8],\"dtype\":\"F32\"", ok_data), "tensor \"a\": duplicate key \"dtype\"");
  // A hostile name is quoted on one short line.
  expect_rejected(make_file("{\"" + std::string(1000, 'x') + "\\n\": 1}"), "xxx...\" must be an object");
}

TEST(Safetensors, AcceptsWhatTheReferenceAccepts) {
  // Unknown per-tensor keys are ignored (the reference does), whatever their value; empty tensors may sit at
  // any offset that keeps the buffer tiled; whitespace and padding are fine.
  const std::string header =
      "{ \"a\" : {\"dtype\":\"F32\", \"extra\": {\"x\": [1, {\"y\": null}]}, "
      "\"shape\":[2],\"data_offsets\":[0,8]},\n"
      "  \"e\": {\"data_offsets\":[8,8], \"shape\":[0, 5], \"dtype\":\"I64\"},\n"
      "  \"u\": {\"dtype\":\"U32\",\"shape\":[],\"data_offsets\":[8,12]} }   ";
  EXPECT_NO_THROW(nd::SafetensorsFile::from_buffer(make_file(" \n\t\r{}")));
  const auto file = nd::SafetensorsFile::from_buffer(make_file(header, std::string(12, 0)), "ok.st");
  EXPECT_EQ(file.names(), (std::vector<std::string>{"a", "e", "u"}));
  EXPECT_EQ(file.load("e").sizes().vec(), (std::vector<int64_t>{0, 5}));
  EXPECT_TRUE(file.metadata().empty());
  // A dtype of the format that LibTorch cannot hold is listed, but loading it says why not.
  EXPECT_EQ(file.info("u").dtype, "U32");
  try {
    file.load("u");
    ADD_FAILURE();
  } catch (const nd::InputError& e) {
    EXPECT_STREQ(e.what(), "ok.st: tensor \"u\" has dtype U32, which nerfdream cannot load");
  }
}

TEST(Safetensors, LoadErrorsNameFileAndTensor) {
  const std::string header = "{\"flags\":{\"dtype\":\"BOOL\",\"shape\":[3],\"data_offsets\":[0,3]}}";
  const auto file =
      nd::SafetensorsFile::from_buffer(make_file(header, std::string("\x01\x00\x02", 3)), "m.st");
  try {
    file.load("missing.weight");
    ADD_FAILURE();
  } catch (const nd::InputError& e) {
    EXPECT_STREQ(e.what(), "m.st: no tensor named \"missing.weight\"");
  }
  EXPECT_THROW(file.info("missing.weight"), nd::InputError);
  EXPECT_FALSE(file.contains("missing.weight"));
  try {
    file.load_as_stored("flags");
    ADD_FAILURE();
  } catch (const nd::InputError& e) {
    EXPECT_STREQ(e.what(), "m.st: tensor \"flags\": BOOL element 2 is 2, not 0 or 1");
  }
}

TEST(Safetensors, OpenRejectsMissingShortAndOddFiles) {
  TempDir dir;
  EXPECT_THROW(nd::SafetensorsFile::open(dir.file("nope.safetensors")), nd::InputError);
  try {
    nd::SafetensorsFile::open(dir.file("nope.safetensors"));
  } catch (const nd::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("nope.safetensors: cannot open"), std::string::npos) << e.what();
  }
  try {
    nd::SafetensorsFile::open(dir.file(""));
    ADD_FAILURE();
  } catch (const nd::InputError& e) {
    EXPECT_NE(std::string(e.what()).find("not a regular file"), std::string::npos) << e.what();
  }
  const std::string short_path = dir.file("short.safetensors");
  nd::write_file_atomically(short_path, "abc");
  try {
    nd::SafetensorsFile::open(short_path);
    ADD_FAILURE();
  } catch (const nd::InputError& e) {
    EXPECT_EQ(std::string(e.what()), short_path +
                                         ": file is 3 bytes, shorter than the 8-byte header length (not "
                                         "a safetensors file)");
  }
  const std::string empty_path = dir.file("empty.safetensors");
  nd::write_file_atomically(empty_path, "");
  EXPECT_THROW(nd::SafetensorsFile::open(empty_path), nd::InputError);
  const std::string truncated = dir.file("truncated.safetensors");
  nd::write_file_atomically(truncated, make_file("{" + f32_entry("a", 0, 8) + "}", std::string(4, 0)));
  EXPECT_THROW(nd::SafetensorsFile::open(truncated), nd::InputError);
}

TEST(Safetensors, WriterRejectsWhatItCannotStore) {
  TempDir dir;
  const std::string path = dir.file("w.safetensors");
  EXPECT_THROW(nd::save_safetensors(path, {{"__metadata__", at::zeros({1})}}), nd::InputError);
  EXPECT_THROW(nd::save_safetensors(path, {{"u", at::Tensor()}}), nd::InputError);
  EXPECT_THROW(nd::save_safetensors(path, {{"c", at::zeros({2}, at::kComplexFloat)}}), nd::InputError);
  EXPECT_THROW(nd::save_safetensors(path, {{"\xff", at::zeros({1})}}), nd::InputError);
  EXPECT_THROW(nd::save_safetensors(dir.file("no/such/dir/w.safetensors"), {{"x", at::zeros({1})}}),
               nd::InputError);
  EXPECT_FALSE(fs::exists(path));  // nothing half-written
}

TEST(Safetensors, ParseHeaderNeedsOnlyTheHeaderBytes) {
  const std::string bytes = make_file("{" + f32_entry("a", 0, 8) + "}", std::string(8, 0));
  const size_t header_end = bytes.size() - 8;
  const auto* p = reinterpret_cast<const uint8_t*>(bytes.data());
  const nd::SafetensorsHeader h = nd::SafetensorsFile::parse_header(p, header_end, bytes.size(), "x");
  EXPECT_EQ(h.data_bytes, 8u);
  EXPECT_EQ(h.tensors.at("a").end, 8u);
  EXPECT_THROW(nd::SafetensorsFile::parse_header(p, header_end - 1, bytes.size(), "x"), nd::InputError);
}

// Every single-byte corruption and every truncation of a valid file is either accepted or rejected with an
// InputError, and whatever is accepted loads.
TEST(Safetensors, CorruptedBytesNeverCrash) {
  TempDir dir;
  const std::string path = dir.file("c.safetensors");
  nd::save_safetensors(path,
                       {{"a", at::arange(3, at::kFloat)},
                        {"b", at::tensor({1, 0}).to(at::kBool)},
                        {"h", at::ones({2}, at::kHalf)}},
                       {{"k", "v"}});
  const std::string good = bytes_of(path);
  int accepted = 0;
  auto try_bytes = [&](const std::string& bytes) {
    try {
      const auto file = nd::SafetensorsFile::from_buffer(bytes);
      for (const std::string& name : file.names()) file.load(name);
      ++accepted;
    } catch (const nd::InputError&) {
    }
  };
  for (size_t i = 0; i < good.size(); ++i) {
    for (uint8_t v : {0x00, 0x01, 0x22, 0x30, 0x7b, 0x80, 0xff}) {
      std::string bad = good;
      bad[i] = static_cast<char>(v);
      try_bytes(bad);
    }
    try_bytes(good.substr(0, i));
  }
  EXPECT_GT(accepted, 0);
}

// More than a million entries is refused before they are all read.
TEST(Safetensors, RejectsMoreThanAMillionEntries) {
  std::string header = "{";
  header.reserve(60'000'000);
  for (size_t i = 0; i <= nd::kSafetensorsMaxEntries; ++i) {
    if (i) header += ',';
    header += "\"" + std::to_string(i) + "\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}";
  }
  header += "}";
  expect_rejected(make_file(header), "more than 1000000 tensors in the header");
}

TEST(Safetensors, ReadsGoldenStableDiffusionUNet) {
  const std::string path = "/work/shared/golden/sd1-tiny/unet/diffusion_pytorch_model.safetensors";
  if (!fs::exists(path)) GTEST_SKIP() << "golden file absent: " << path;
  const auto file = nd::SafetensorsFile::open(path);
  const auto names = file.names();
  EXPECT_EQ(names.size(), 304u);
  EXPECT_TRUE(std::is_sorted(names.begin(), names.end()));
  EXPECT_EQ(file.metadata().at("format"), "pt");
  ASSERT_TRUE(file.contains("conv_in.weight"));
  EXPECT_EQ(file.info("conv_in.weight").dtype, "F32");
  const at::Tensor w = file.load("conv_in.weight");
  EXPECT_EQ(w.sizes().vec(), (std::vector<int64_t>{32, 4, 3, 3}));
  // Values from Python's struct module on the same bytes.
  EXPECT_FLOAT_EQ(w[0][0][0][0].item<float>(), -0.15966592729091644f);
  EXPECT_FLOAT_EQ(w[0][0][0][1].item<float>(), 0.1526375114917755f);
  EXPECT_NEAR(w.to(at::kDouble).sum().item<double>(), 3.1934677238505174, 1e-9);
  EXPECT_EQ(file.load("conv_in.bias").sizes().vec(), (std::vector<int64_t>{32}));
}

}  // namespace
