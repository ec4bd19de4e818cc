#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/threads.h"
#include "io/image_io.h"
#include "test_support.h"

namespace nd {
namespace {

namespace fs = std::filesystem;

using nd::test::TempDir;

at::Tensor random_image(int h, int w, int c, uint64_t seed) {
  at::manual_seed(seed);
  return at::randint(0, 256, {h, w, c}, at::kByte);
}

// Runs fn, expects an InputError whose message contains every one of `parts`.
template <class F>
void expect_input_error(F fn, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "no InputError thrown";
  } catch (const InputError& e) {
    const std::string msg = e.what();
    for (const auto& p : parts) EXPECT_NE(msg.find(p), std::string::npos) << "'" << p << "' not in: " << msg;
    EXPECT_EQ(msg.find('\n'), std::string::npos) << msg;
  }
}

TEST(ImageIO, PngRoundTripRgbAndRgba) {
  set_threads(0);
  const TempDir tmp;
  const std::string& dir = tmp.path;
  for (int c : {3, 4}) {
    auto img = random_image(6, 8, c, 7 + c);
    const std::string path = dir + "/img" + std::to_string(c) + ".png";
    save_png(path, img);
    auto back = load_image(path);
    EXPECT_EQ(back.scalar_type(), at::kByte);
    EXPECT_EQ(back.sizes(), img.sizes());
    EXPECT_TRUE(back.equal(img));
    auto info = read_image_info(path);
    EXPECT_EQ(info.width, 8);
    EXPECT_EQ(info.height, 6);
    EXPECT_EQ(info.channels, c);
  }
}

TEST(ImageIO, GrayBecomesRgbAndGrayAlphaBecomesRgba) {
  const TempDir tmp;
  const std::string& dir = tmp.path;
  auto gray = random_image(5, 4, 1, 1);
  save_png(dir + "/g.png", gray);
  auto back = load_image(dir + "/g.png");
  ASSERT_EQ(back.sizes(), (std::vector<int64_t>{5, 4, 3}));
  for (int k = 0; k < 3; ++k) EXPECT_TRUE(back.select(2, k).equal(gray.select(2, 0)));

  auto ga = random_image(5, 4, 2, 2);
  save_png(dir + "/ga.png", ga);
  back = load_image(dir + "/ga.png");
  ASSERT_EQ(back.sizes(), (std::vector<int64_t>{5, 4, 4}));
  EXPECT_TRUE(back.select(2, 1).equal(ga.select(2, 0)));
  EXPECT_TRUE(back.select(2, 3).equal(ga.select(2, 1)));

  // A 2-D tensor is a gray image.
  save_png(dir + "/g2.png", gray.select(2, 0));
  EXPECT_TRUE(load_image(dir + "/g2.png").equal(load_image(dir + "/g.png")));
}

TEST(ImageIO, FloatImagesAreClampedAndRounded) {
  const TempDir tmp;
  const std::string& dir = tmp.path;
  auto img = at::tensor({-0.5f, 0.0f, 0.5f, 1.0f, 1.5f, 0.2f, std::nanf("")}).view({1, 7, 1});
  save_png(dir + "/f.png", img);
  auto back = load_image(dir + "/f.png");
  const std::vector<int> expected = {0, 0, 128, 255, 255, 51, 0};  // 0.5·255 = 127.5 rounds up
  for (int i = 0; i < 7; ++i) EXPECT_EQ(back[0][i][0].item<int>(), expected[i]) << i;
}

TEST(ImageIO, JpegRoundTripIsClose) {
  const TempDir tmp;
  const std::string& dir = tmp.path;
  // A smooth image (JPEG is lossy on noise).
  auto y = at::linspace(0, 1, 16).view({16, 1, 1}).expand({16, 24, 1});
  auto x = at::linspace(0, 1, 24).view({1, 24, 1}).expand({16, 24, 1});
  auto img = at::cat({x, y, (x + y) / 2}, 2);
  save_jpeg(dir + "/a.jpg", img, 100);
  auto back = load_image(dir + "/a.jpg");
  ASSERT_EQ(back.sizes(), (std::vector<int64_t>{16, 24, 3}));
  auto expected = at::floor(img * 255 + 0.5);
  EXPECT_LT((back.to(at::kFloat) - expected).abs().mean().item<float>(), 3.0f);
}

TEST(ImageIO, SaveIsAtomicAndOverwrites) {
  const TempDir tmp;
  const std::string& dir = tmp.path;
  save_png(dir + "/x.png", random_image(4, 4, 3, 1));
  auto second = random_image(3, 5, 4, 2);
  save_png(dir + "/x.png", second);
  EXPECT_TRUE(load_image(dir + "/x.png").equal(second));
  int files = 0;
  for (const auto& entry : fs::directory_iterator(dir)) {
    (void)entry;
    ++files;
  }
  EXPECT_EQ(files, 1);  // no temporary file left behind
  // A directory that does not exist: InputError naming the path, nothing written.
  expect_input_error([&] { save_png(dir + "/missing/y.png", second); }, {dir + "/missing/y.png"});
}

TEST(ImageIO, MissingFileNamesThePath) {
  const TempDir tmp;
  const std::string& dir = tmp.path;
  expect_input_error([&] { load_image(dir + "/nope.png"); }, {dir + "/nope.png", "cannot read image"});
  expect_input_error([&] { read_image_info(dir + "/nope.png"); }, {dir + "/nope.png"});
  expect_input_error([&] { load_image(dir); }, {dir, "directory"});
}

TEST(ImageIO, CorruptFileNamesThePathAndReason) {
  const TempDir tmp;
  const std::string& dir = tmp.path;
  write_file_atomically(dir + "/junk.png", "this is not an image at all");
  expect_input_error([&] { load_image(dir + "/junk.png"); }, {dir + "/junk.png", "cannot read image ("});
  // A PNG cut in half: the header is fine, the pixel data is not.
  save_png(dir + "/full.png", random_image(32, 32, 3, 3));
  const std::string bytes = read_file(dir + "/full.png");
  write_file_atomically(dir + "/cut.png", bytes.substr(0, bytes.size() / 2));
  expect_input_error([&] { load_image(dir + "/cut.png"); }, {dir + "/cut.png", "cannot read image ("});
  // An empty file.
  write_file_atomically(dir + "/empty.jpg", "");
  expect_input_error([&] { load_image(dir + "/empty.jpg"); }, {dir + "/empty.jpg"});
}

TEST(ImageIO, DownscaleKnownPattern) {
  // 4×6 RGB made of 2×2 blocks: block (by, bx) holds values that average to 10·(by·3 + bx) + k + 5.
  auto img = at::empty({4, 6, 3}, at::kByte);
  auto a = img.accessor<uint8_t, 3>();
  for (int y = 0; y < 4; ++y)
    for (int x = 0; x < 6; ++x)
      for (int k = 0; k < 3; ++k) {
        const int base = 10 * ((y / 2) * 3 + x / 2) + k + 5;
        a[y][x][k] = uint8_t(base + ((x + y) % 2 == 0 ? 2 : -2));  // ±2 checkerboard cancels in the mean
      }
  auto out = downscale_image(img, 2);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{2, 3, 3}));
  for (int by = 0; by < 2; ++by)
    for (int bx = 0; bx < 3; ++bx)
      for (int k = 0; k < 3; ++k) EXPECT_EQ(out[by][bx][k].item<int>(), 10 * (by * 3 + bx) + k + 5);

  // Rounding: mean of {0, 0, 0, 1} = 0.25 → 0, {1, 1, 0, 0} = 0.5 → 1 (half up).
  auto quarter = at::tensor({0, 0, 0, 1}, at::kByte).view({2, 2, 1});
  auto half = at::tensor({1, 1, 0, 0}, at::kByte).view({2, 2, 1});
  EXPECT_EQ(downscale_image(quarter, 2).item<int>(), 0);
  EXPECT_EQ(downscale_image(half, 2).item<int>(), 1);

  // Sizes not divisible by the factor drop the last rows/columns.
  auto odd = random_image(7, 5, 3, 4);
  auto od = downscale_image(odd, 2);
  ASSERT_EQ(od.sizes(), (std::vector<int64_t>{3, 2, 3}));
  auto expected =
      at::floor(odd.slice(0, 0, 6).slice(1, 0, 4).to(at::kDouble).view({3, 2, 2, 2, 3}).mean({1, 3}) + 0.5);
  EXPECT_TRUE(od.to(at::kDouble).equal(expected));

  EXPECT_TRUE(downscale_image(odd, 1).equal(odd));
  expect_input_error([&] { downscale_image(odd, 0); }, {"downscale factor 0"});
  expect_input_error([&] { downscale_image(odd, 6); }, {"downscale factor 6", "5x7"});
}

TEST(ImageIO, DownscaleIsAlphaAware) {
  // One 2×2 block: two opaque red pixels and two transparent blue ones.
  auto img = at::zeros({2, 2, 4}, at::kByte);
  auto a = img.accessor<uint8_t, 3>();
  a[0][0][0] = 255, a[0][0][3] = 255;
  a[1][1][0] = 255, a[1][1][3] = 255;
  a[0][1][2] = 255;
  a[1][0][2] = 255;
  auto out = downscale_image(img, 2);
  EXPECT_EQ(out[0][0][0].item<int>(), 255);  // red, no blue bleeding in
  EXPECT_EQ(out[0][0][1].item<int>(), 0);
  EXPECT_EQ(out[0][0][2].item<int>(), 0);
  EXPECT_EQ(out[0][0][3].item<int>(), 128);  // 510 / 4 = 127.5 → 128
  // A fully transparent block keeps its plain average colour.
  auto clear = at::zeros({2, 2, 4}, at::kByte);
  clear.select(2, 1).fill_(100);
  auto cd = downscale_image(clear, 2);
  EXPECT_EQ(cd[0][0][1].item<int>(), 100);
  EXPECT_EQ(cd[0][0][3].item<int>(), 0);
}

TEST(ImageIO, ImageGridTiles) {
  std::vector<at::Tensor> imgs;
  for (int i = 0; i < 3; ++i) imgs.push_back(at::full({2, 3, 1}, i + 1, at::kByte));
  auto grid = image_grid(imgs, 2);
  ASSERT_EQ(grid.sizes(), (std::vector<int64_t>{4, 6, 1}));
  EXPECT_EQ(grid[0][0][0].item<int>(), 1);
  EXPECT_EQ(grid[1][5][0].item<int>(), 2);
  EXPECT_EQ(grid[2][2][0].item<int>(), 3);
  EXPECT_EQ(grid[3][3][0].item<int>(), 0);  // empty cell
  auto row = image_grid(imgs, 10);          // columns clamped to the count
  ASSERT_EQ(row.sizes(), (std::vector<int64_t>{2, 9, 1}));
  EXPECT_EQ(row[1][8][0].item<int>(), 3);
  auto floats = image_grid({at::ones({2, 2, 3}), at::zeros({2, 2, 3})}, 1);
  EXPECT_EQ(floats.sizes(), (std::vector<int64_t>{4, 2, 3}));
  EXPECT_EQ(floats.sum().item<float>(), 12.0f);
}

}  // namespace
}  // namespace nd
