// The turntable (ffmpeg → mp4 + gif, PNG frames without ffmpeg) and the self-contained index.html.
#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>

#include "core/atomic_file.h"
#include "io/image_io.h"
#include "mesh/mesh_export.h"
#include "pipeline/generate.h"
#include "pipeline/turntable.h"
#include "pipeline/viewer_page.h"
#include "prior/tiny_prior.h"
#include "test_support.h"
#include "tiny_prior_fixture.h"

namespace fs = std::filesystem;

namespace nd {
namespace {

// A moving colored square: frames that differ, as a turntable's do.
std::vector<at::Tensor> test_frames(int n, int res) {
  std::vector<at::Tensor> frames;
  for (int i = 0; i < n; ++i) {
    at::Tensor f = at::ones({res, res, 3}, at::kFloat);
    const int x = i % (res - 4);
    f.slice(0, 2, 6).slice(1, x, x + 4).copy_(at::tensor({0.8f, 0.1f, 0.1f}));
    frames.push_back(f);
  }
  return frames;
}

// stdout of a shell command ("" when it fails).
std::string shell_output(const std::string& cmd) {
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[256];
    while (fgets(buf, sizeof buf, p)) out += buf;
    pclose(p);
  }
  return out;
}

std::vector<std::string> entries(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(Turntable, LightIsAtTheCamerasUpperRight) {
  // Camera on +Z looking at −Z: right is +X, up is +Y.
  ShadingParams s = turntable_light(View{0, 0, 3, 45}, 0.3f);
  EXPECT_EQ(s.mode, Shading::Lambertian);
  EXPECT_FLOAT_EQ(s.ambient, 0.3f);
  EXPECT_GT(s.light_dir[0], 0.3f);
  EXPECT_GT(s.light_dir[1], 0.3f);
  EXPECT_GT(s.light_dir[2], 0.5f);
  // Camera on +X: right is −Z. The light turns with the camera.
  s = turntable_light(View{0, 90, 3, 45}, 0.3f);
  EXPECT_GT(s.light_dir[0], 0.5f);
  EXPECT_LT(s.light_dir[2], -0.3f);
  const double n = std::hypot(s.light_dir[0], s.light_dir[1], s.light_dir[2]);
  EXPECT_NEAR(n, 1.0, 1e-6);
}

TEST(Turntable, EncodesMp4AndGif) {
  if (!ffmpeg_available()) GTEST_SKIP() << "ffmpeg is not installed";
  test::TempDir dir;
  // Odd size: the mp4 must come out even (yuv420p halves the chroma planes).
  const TurntableOutput r = write_turntable(dir.path, test_frames(12, 15));
  ASSERT_TRUE(r.encoded);
  EXPECT_EQ(entries(dir.path),
            (std::vector<std::string>{"turntable.gif", "turntable.mp4"}));  // temp dir gone
  EXPECT_EQ(read_file(dir.path + "/turntable.gif").substr(0, 6), "GIF89a");
  EXPECT_EQ(read_file(dir.path + "/turntable.mp4").substr(4, 4), "ftyp");
  if (std::system("ffprobe -version >/dev/null 2>&1") == 0) {
    EXPECT_EQ(shell_output("ffprobe -v error -select_streams v:0 -count_frames -show_entries "
                           "stream=codec_name,pix_fmt,width,height,nb_read_frames -of csv=p=0 '" +
                           dir.path + "/turntable.mp4'"),
              "h264,14,14,yuv420p,12\n");
  }
}

TEST(Turntable, WithoutFfmpegWritesPngFramesAndOneWarning) {
  test::TempDir dir;
  TurntableOptions o;
  o.ffmpeg = dir.path + "/no-such-ffmpeg";
  testing::internal::CaptureStderr();
  const TurntableOutput r = write_turntable(dir.path, test_frames(5, 16), o);
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_FALSE(r.encoded);
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  EXPECT_TRUE(test::contains(err, "ffmpeg")) << err;
  EXPECT_EQ(entries(dir.path), std::vector<std::string>{"turntable"});
  ASSERT_EQ(r.files.size(), 5u);
  EXPECT_EQ(entries(dir.path + "/turntable").front(), "frame_000.png");
  EXPECT_EQ(load_image(dir.path + "/turntable/frame_004.png").sizes(), (std::vector<int64_t>{16, 16, 3}));
}

TEST(ViewerPage, Base64AndEscaping) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode(std::string("\xff\x00\x80", 3)), "/wCA");
  EXPECT_EQ(html_escape("a <b> & \"c\" 'd'"), "a &lt;b&gt; &amp; &quot;c&quot; &#39;d&#39;");
}

TEST(ViewerPage, EmbedsEverythingAndNeedsNoNetwork) {
  test::TempDir dir;
  TriangleMesh tet;
  tet.positions = {{0, 0, 0}, {1, 0, 0}, {0, 1, 0}, {0, 0, 1}};
  tet.colors = {{1, 0, 0}, {0, 1, 0}, {0, 0, 1}, {1, 1, 1}};
  tet.triangles = {{0, 2, 1}, {0, 1, 3}, {0, 3, 2}, {1, 2, 3}};
  write_glb(dir.path + "/mesh.glb", tet);
  save_png(dir.path + "/views.png", at::full({8, 16, 3}, 0.5f));
  write_file_atomically(dir.path + "/metrics.json", R"({"iou": 0.8125, "mesh": {"triangles": 4}})");
  write_viewer_page(dir.path, "a red <cube>");
  const std::string html = read_file(dir.path + "/index.html");
  EXPECT_TRUE(test::contains(html, "<h1>a red &lt;cube&gt;</h1>"));
  EXPECT_TRUE(test::contains(html, base64_encode(read_file(dir.path + "/mesh.glb"))));
  EXPECT_TRUE(
      test::contains(html, "data:image/png;base64," + base64_encode(read_file(dir.path + "/views.png"))));
  EXPECT_TRUE(test::contains(html, "<td>mesh.triangles</td>"));
  EXPECT_TRUE(test::contains(html, "0.8125"));
  EXPECT_TRUE(test::contains(html, "<canvas id=\"viewer\""));
  // No network: nothing is loaded from anywhere.
  EXPECT_FALSE(test::contains(html, "http://"));
  EXPECT_FALSE(test::contains(html, "https://"));
  EXPECT_FALSE(test::contains(html, "<script src"));

  // The viewer's JS parses (node, when installed).
  if (std::system("node --version >/dev/null 2>&1") == 0) {
    const size_t a = html.find("<script>") + 8, b = html.find("</script>");
    write_file_atomically(dir.path + "/viewer.js", html.substr(a, b - a));
    EXPECT_EQ(std::system(("node --check '" + dir.path + "/viewer.js'").c_str()), 0);
  }
}

TEST(ViewerPage, GenerateWritesTurntableAndPage) {
  test::TempDir dir;
  GenerateOptions o;
  o.prior_path = test::write_tiny_prior(dir.path);
  o.progress = false;
  o.view_resolution = 16;
  o.checkpoint_every = 0;
  o.out_dir = dir.path + "/out";
  GenerateConfig c;
  c.prompt = "a red cube";
  c.method = "sds";
  c.optim.steps = 3;
  c.mesh.resolution = 16;
  c.mesh.density_threshold = 5;
  run_generate(c, o);
  if (ffmpeg_available()) {
    EXPECT_TRUE(fs::exists(o.out_dir + "/turntable.mp4"));
    EXPECT_TRUE(fs::exists(o.out_dir + "/turntable.gif"));
  } else {
    EXPECT_TRUE(fs::exists(o.out_dir + "/turntable/frame_035.png"));
  }
  const std::string html = read_file(o.out_dir + "/index.html");
  EXPECT_TRUE(test::contains(html, "a red cube"));
  EXPECT_TRUE(test::contains(html, "<td>iou</td>"));
  EXPECT_TRUE(
      test::contains(html, "MESH_GLB_BASE64 = \"" + base64_encode(read_file(o.out_dir + "/mesh.glb"))));
  for (const auto& name : entries(o.out_dir)) EXPECT_EQ(name.find(".tmp"), std::string::npos) << name;
}

}  // namespace
}  // namespace nd
