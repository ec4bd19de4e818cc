// Latent score distillation on the tiny golden Stable Diffusion pipeline (../shared/golden/sd1-tiny): the
// guide's pieces equal the pipeline's, the SDS gradient reaches the rendered image through the VAE encoder,
// and the guide's sampling paths run. Tests are named "Golden" (CTest label golden) and skip without it.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "guidance/sd_latent_guide.h"
#include "guidance/sds.h"
#include "test_support.h"

namespace fs = std::filesystem;

namespace nd {
namespace {

const std::string kTinySd = test::kGolden + "/sd1-tiny";

#define REQUIRE_GOLDEN() \
  if (!fs::exists(kTinySd + "/model_index.json")) GTEST_SKIP() << kTinySd << " not found"

StableDiffusionPipeline& tiny_sd() {
  static StableDiffusionPipeline pipe = [] {
    SdLoadOptions o;
    o.verbose = false;
    return StableDiffusionPipeline::load(kTinySd, o);
  }();
  return pipe;
}

TEST(SdLatentGuideGolden, PiecesMatchThePipeline) {
  REQUIRE_GOLDEN();
  auto& pipe = tiny_sd();
  SdLatentGuide guide(pipe, 32);
  EXPECT_FALSE(guide.camera_conditioned());
  EXPECT_EQ(guide.render_resolution(), 32);
  // Conditioning: [uncond × B; cond] as encode_prompt_cfg gives it.
  const at::Tensor cond = guide.condition({"a red cube", "a blue cone"});
  EXPECT_LT(test::max_abs_diff(cond, pipe.encode_prompt_cfg({"a red cube", "a blue cone"})), 1e-6);
  // Encoding: upsampled to the native size, then the VAE's scaled posterior mean.
  at::manual_seed(0);
  const at::Tensor images = at::rand({2, 3, 32, 32});
  const int s = pipe.default_image_size();
  const at::Tensor expected =
      pipe.encode_image(at::upsample_bilinear2d(images, {s, s}, /*align_corners=*/false) * 2 - 1);
  const at::Tensor latents = guide.encode(images);
  EXPECT_EQ(latents.sizes(), (std::vector<int64_t>{2, 4, s / 8, s / 8}));
  EXPECT_LT(test::max_abs_diff(latents, expected), 1e-6);
  // Guided ε is the pipeline's.
  const at::Tensor t = at::tensor({100L, 700L});
  const at::Tensor x_t = at::randn(latents.sizes());
  const at::Tensor feats = at::zeros({2, kViewFeatures});
  EXPECT_LT(test::max_abs_diff(guide.guided_epsilon(x_t, t, cond, feats, 7.5),
                               pipe.predict_noise(x_t, t, cond, 7.5)),
            1e-6);
  EXPECT_NE(test::input_error_of([&] { guide.check_prompt("  "); }), "<no InputError>");
}

TEST(SdLatentGuideGolden, SdsGradientReachesTheImageThroughTheVae) {
  REQUIRE_GOLDEN();
  auto& pipe = tiny_sd();
  SdLatentGuide guide(pipe, 16);
  SDSConfig config;
  config.guidance_scale = 100;  // stable-dreamfusion's
  SDSGuidance sds(guide, config);
  EXPECT_FALSE(sds.config().camera_conditioning);  // SD takes no camera
  at::Tensor image = at::rand({1, 3, 16, 16}).requires_grad_(true);
  at::Generator gen = at::detail::createCPUGenerator(3);
  const SDSResult r = sds.step(image, guide.condition({"a red cube, front view"}), at::zeros({1, 4}), 0, gen);
  EXPECT_EQ(r.gradient.sizes(), guide.encode(image.detach()).sizes());  // on the latents
  EXPECT_TRUE(at::isfinite(r.gradient).all().item<bool>());
  r.loss.backward();
  ASSERT_TRUE(image.grad().defined());
  EXPECT_GT(image.grad().abs().sum().item<double>(), 0);
  EXPECT_TRUE(at::isfinite(image.grad()).all().item<bool>());
  // The same draw again gives the same gradient (deterministic for a seed).
  at::Generator gen2 = at::detail::createCPUGenerator(3);
  const SDSResult r2 =
      sds.step(image, guide.condition({"a red cube, front view"}), at::zeros({1, 4}), 0, gen2);
  EXPECT_EQ(test::max_abs_diff(r.gradient, r2.gradient), 0);
}

TEST(SdLatentGuideGolden, SamplesAndSdEditsAtTheRenderSize) {
  REQUIRE_GOLDEN();
  SdLatentGuide guide(tiny_sd(), 16);
  GuideSampleOptions o;
  o.steps = 3;
  const at::Tensor a = guide.sample("a red cube", View{}, 16, o);
  EXPECT_EQ(a.sizes(), (std::vector<int64_t>{1, 3, 16, 16}));
  const at::Tensor b = guide.img2img(at::full({1, 3, 16, 16}, 0.5), "a red cube", View{}, 0.5, o);
  EXPECT_EQ(b.sizes(), (std::vector<int64_t>{1, 3, 16, 16}));
  EXPECT_GE(b.min().item<float>(), 0);
  EXPECT_LE(b.max().item<float>(), 1);
  EXPECT_NE(test::input_error_of([&] { guide.img2img(a, "x", View{}, 1.5, o); }), "<no InputError>");
}

}  // namespace
}  // namespace nd
