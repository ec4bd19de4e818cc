// The nerfdream binary's contract with its user: --help, and one clear line + exit 2 on bad input.
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <array>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>

namespace fs = std::filesystem;

namespace {

struct CliResult {
  int code;
  std::string err;  // stderr
  std::string out;  // stdout
};

CliResult run_cli(const std::string& args) {
  const std::string err_file =
      (fs::temp_directory_path() / ("nd-cli-err-" + std::to_string(::getpid()))).string();
  const std::string cmd = std::string(NERFDREAM_BINARY) + " " + args + " 2>" + err_file;
  FILE* p = popen(cmd.c_str(), "r");
  std::string out;
  std::array<char, 4096> buf{};
  size_t n;
  while ((n = fread(buf.data(), 1, buf.size(), p)) > 0) out.append(buf.data(), n);
  const int status = pclose(p);
  std::ifstream in(err_file);
  std::string err((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  fs::remove(err_file);
  return {WIFEXITED(status) ? WEXITSTATUS(status) : -1, err, out};
}

int count_lines(const std::string& s) {
  int n = 0;
  for (char c : s) n += c == '\n';
  return n;
}

std::string temp_dir(const std::string& name) {
  auto p = fs::temp_directory_path() / ("nd-cli-" + name + "-" + std::to_string(::getpid()));
  fs::remove_all(p);
  return p.string();
}

TEST(Cli, HelpShowsDefaults) {
  auto r = run_cli("fit --help");
  EXPECT_EQ(r.code, 0);
  EXPECT_NE(r.out.find("--batch-rays"), std::string::npos);
  EXPECT_NE(r.out.find("4096"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("--threads"), std::string::npos);
}

TEST(Cli, UnknownOptionIsOneLineExit2) {
  auto r = run_cli("fit --synth 'a red cube' --no-such-option 3");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("no-such-option"), std::string::npos) << r.err;
}

TEST(Cli, UnknownCaptionWordIsNamed) {
  const std::string out = temp_dir("word");
  auto r = run_cli("fit --synth 'a red banana' --out " + out + " --no-progress");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("banana"), std::string::npos) << r.err;
  fs::remove_all(out);
}

TEST(Cli, InvalidOptionValue) {
  auto r = run_cli("fit --synth 'a red cube' --background purple --out " + temp_dir("bg"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("background"), std::string::npos) << r.err;
  r = run_cli("fit --synth 'a red cube' --batch-rays -5 --out " + temp_dir("br"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("batch_rays"), std::string::npos) << r.err;
  r = run_cli("fit 'some/dir' --synth 'a red cube'");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
}

TEST(Cli, MalformedTransformsNamesTheFile) {
  const std::string data = temp_dir("data");
  fs::create_directories(data);
  std::ofstream(data + "/transforms.json")
      << "{\"camera_angle_x\": 0.7, \"frames\": [ {\"file_path\": \"a.png\"} ]}";
  auto r = run_cli("fit " + data + " --out " + temp_dir("dataout") + " --no-progress");
  EXPECT_EQ(r.code, 2);
  EXPECT_EQ(count_lines(r.err), 1) << r.err;
  EXPECT_NE(r.err.find("transforms.json"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("transform_matrix"), std::string::npos) << r.err;
  fs::remove_all(data);
}

TEST(Cli, ConfigFileWithUnknownKey) {
  const std::string dir = temp_dir("cfg");
  fs::create_directories(dir);
  std::ofstream(dir + "/c.json") << "{\"data\": {\"synth\": \"a red cube\"}, \"optim\": {\"stepz\": 3}}";
  auto r = run_cli("fit --config " + dir + "/c.json --out " + dir + "/out");
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("optim.stepz"), std::string::npos) << r.err;
  fs::remove_all(dir);
}

TEST(Cli, ConfigFileWithoutDataTakesTheSynthFlag) {
  const std::string dir = temp_dir("cfgflags");
  fs::create_directories(dir);
  std::ofstream(dir + "/c.json") << "{\"optim\": {\"lr_final_ratio\": 0.05}}";
  auto r = run_cli("fit --config " + dir + "/c.json --synth \"a red cube\" --synth-res 16 --synth-views 2 " +
                   "--synth-test-views 1 --steps 2 --no-progress --out " + dir + "/out");
  EXPECT_EQ(r.code, 0) << r.err;
  std::ifstream in(dir + "/out/config.json");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("0.05"), std::string::npos);        // from the file
  EXPECT_NE(text.find("a red cube"), std::string::npos);  // from the flag
  fs::remove_all(dir);
}

TEST(Cli, ResumeFromMissingCheckpoint) {
  auto r = run_cli("fit --resume /nonexistent/run --out " + temp_dir("resume"));
  EXPECT_EQ(r.code, 2);
  EXPECT_NE(r.err.find("/nonexistent/run"), std::string::npos) << r.err;
}

}  // namespace
