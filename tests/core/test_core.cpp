#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "core/config_json.h"
#include "core/error.h"
#include "core/number_list.h"
#include "core/progress.h"

namespace fs = std::filesystem;

namespace nd {
namespace {

TEST(NumberList, ParsesAndRejectsMalformedLists) {
  EXPECT_EQ(parse_int_list("48,96,128", "--channels"), (std::vector<int>{48, 96, 128}));
  EXPECT_EQ(parse_number_list("0.2,1e-1,3", "--mix"), (std::vector<double>{0.2, 0.1, 3}));
  for (const char* bad : {"", "1,,2", "1,x", "4.5", "12abc", " "}) {
    try {
      parse_int_list(bad, "--channels");
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("--channels"), std::string::npos) << e.what();
    }
  }
  EXPECT_THROW(parse_number_list("0.5,abc", "--mix"), InputError);
}

TEST(AtomicFile, FailedWriteKeepsTheOldFile) {
  const auto path = (fs::temp_directory_path() / ("nd-atomic-" + std::to_string(::getpid()))).string();
  write_file_atomically(path, "old");
  EXPECT_THROW(write_atomically(path,
                                [](const std::string& tmp) {
                                  std::ofstream(tmp) << "half";
                                  throw InputError("disk full");
                                }),
               InputError);
  EXPECT_EQ(read_file(path), "old");
  // No temporary file is left behind.
  int leftovers = 0;
  for (const auto& e : fs::directory_iterator(fs::temp_directory_path()))
    leftovers += e.path().string().rfind(path + ".tmp-", 0) == 0;
  EXPECT_EQ(leftovers, 0);
  write_file_atomically(path, "new");
  EXPECT_EQ(read_file(path), "new");
  fs::remove(path);
  EXPECT_THROW(read_file(path), InputError);
}

TEST(ConfigReader, ReadsKnownKeysAndNamesUnknownOnes) {
  auto j = nlohmann::json::parse(R"({"a": 3, "sec": {"b": 0.5, "typo": 1}})");
  ConfigReader r(j, "");
  int a = 0;
  double b = 0;
  r.get("a", a);
  auto s = r.section("sec");
  s.get("b", b);
  EXPECT_EQ(a, 3);
  EXPECT_EQ(b, 0.5);
  try {
    s.finish();
    FAIL();
  } catch (const InputError& e) {
    EXPECT_STREQ(e.what(), "sec.typo: unknown key");
  }
  auto wrong = nlohmann::json::parse(R"({"a": "x"})");
  ConfigReader w(wrong, "top");
  try {
    w.get("a", a);
    FAIL();
  } catch (const InputError& e) {
    EXPECT_EQ(std::string(e.what()), "top.a: expected an integer, got \"x\"");
  }
}

TEST(Progress, FormatsDurations) {
  EXPECT_EQ(format_duration(5.25), "5.2s");
  EXPECT_EQ(format_duration(65), "1m05s");
  EXPECT_EQ(format_duration(3725), "1h02m");
}

}  // namespace
}  // namespace nd
