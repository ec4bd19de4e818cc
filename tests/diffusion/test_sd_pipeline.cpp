// StableDiffusionPipeline: the golden 4-step DDIM txt2img (diffusers v0.25.1) reproduced from the diffusers
// folders of sd1-tiny/sd2-tiny, from the single-file original sd1-tiny checkpoint (configs from the folder
// beside it, or inferred from the weights), and from an SD 2 original-layout file written from sd2-tiny's
// weights; bad checkpoints; prompt truncation; ε from v; the sample job; `inspect`; the UNet cost model.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "core/threads.h"
#include "diffusion/checkpoint_inspect.h"
#include "diffusion/sd_pipeline.h"
#include "diffusion/unet_flops.h"
#include "io/image_io.h"
#include "io/safetensors.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using nd::StableDiffusionPipeline;
using nd::test::contains;
using nd::test::input_error_of;
using nd::test::kGolden;
using nd::test::max_abs_diff;
using nd::test::TempDir;

#define REQUIRE_GOLDEN()                                                   \
  if (!fs::exists(kGolden + "/sd1-tiny/golden/txt2img_ddim4.safetensors")) \
  GTEST_SKIP() << kGolden << " not found"

// |a − b| <= atol + rtol·|b| everywhere (the golden README's tolerance for the 4-step chain: 1e-3, 1e-3).
void expect_close(const at::Tensor& a, const at::Tensor& b, const std::string& what, double atol = 1e-3,
                  double rtol = 1e-3) {
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  const at::Tensor d = (a.to(at::kDouble) - b.to(at::kDouble)).abs();
  const double excess = (d - (atol + rtol * b.to(at::kDouble).abs())).max().item<double>();
  EXPECT_LE(excess, 0) << what << ": max abs diff " << d.max().item<double>();
}

struct GoldenRun {
  double max_latent_err = 0, max_image_err = 0;
};

// Runs the golden txt2img on `pipe` and compares every recorded tensor.
GoldenRun check_txt2img(StableDiffusionPipeline& pipe, const std::string& sd) {
  const std::string path = kGolden + "/" + sd + "/golden/txt2img_ddim4.safetensors";
  const auto file = nd::SafetensorsFile::open(path);
  auto g = [&](const std::string& n) { return file.load_as_stored(n); };
  const auto& meta = file.metadata();
  EXPECT_EQ(meta.at("prompt"), "a red mushroom on a wooden table");

  // Token ids exactly as the pipeline's tokenizer and pad id give them.
  const auto cond_ids = pipe.tokenizer().encode_padded(meta.at("prompt"), 77, pipe.pad_id()).ids;
  const auto uncond_ids = pipe.tokenizer().encode_padded(meta.at("negative_prompt"), 77, pipe.pad_id()).ids;
  EXPECT_TRUE(at::equal(at::tensor(cond_ids).view({1, 77}), g("cond_input_ids"))) << sd;
  EXPECT_TRUE(at::equal(at::tensor(uncond_ids).view({1, 77}), g("uncond_input_ids"))) << sd;

  nd::Txt2ImgOptions o;
  o.prompt = meta.at("prompt");
  o.negative_prompt = meta.at("negative_prompt");
  o.steps = std::stoi(meta.at("num_inference_steps"));
  o.cfg = std::stod(meta.at("guidance_scale"));
  o.scheduler = "ddim";
  o.height = o.width = 64;
  o.init_latents = g("init_latents");
  GoldenRun run;
  o.on_step = [&](int i, int64_t t, const nd::CfgPrediction& p, const at::Tensor& latents) {
    const std::string s = "step." + std::to_string(i) + ".";
    expect_close(p.uncond, g(s + "noise_pred_uncond"), sd + " " + s + "noise_pred_uncond", 1e-4, 1e-4);
    expect_close(p.cond, g(s + "noise_pred_text"), sd + " " + s + "noise_pred_text", 1e-4, 1e-4);
    expect_close(p.guided, g(s + "noise_pred_guided"), sd + " " + s + "noise_pred_guided");
    expect_close(latents, g(s + "latents_after"), sd + " " + s + "latents_after");
    run.max_latent_err = std::max(run.max_latent_err, max_abs_diff(latents, g(s + "latents_after")));
  };
  const nd::Txt2ImgResult r = pipe.txt2img(o);
  EXPECT_EQ(r.timesteps, (std::vector<int64_t>{751, 501, 251, 1}));
  EXPECT_TRUE(at::equal(at::tensor(r.timesteps), g("timesteps")));
  expect_close(r.prompt_embeds, g("prompt_embeds"), sd + " prompt_embeds", 1e-4, 1e-4);
  expect_close(r.latents, g("final_latents"), sd + " final_latents");
  expect_close(r.decoded, g("image_decoded"), sd + " image_decoded");
  expect_close(r.images, g("image_01"), sd + " image_01");
  run.max_image_err = max_abs_diff(r.images, g("image_01"));
  std::printf("[golden txt2img %s] prompt_embeds %.2e, final latents %.2e (|x| <= %.1f), image_01 %.2e\n",
              sd.c_str(), max_abs_diff(r.prompt_embeds, g("prompt_embeds")),
              max_abs_diff(r.latents, g("final_latents")), g("final_latents").abs().max().item<double>(),
              run.max_image_err);
  return run;
}

nd::SdLoadOptions quiet() {
  nd::SdLoadOptions o;
  o.verbose = false;
  return o;
}

// ---------------------------------------------------------------------------------------------- golden

TEST(GoldenSdPipeline, Txt2ImgFromDiffusersFolders) {
  REQUIRE_GOLDEN();
  nd::set_threads(0);
  for (const std::string sd : {"sd1-tiny", "sd2-tiny"}) {
    StableDiffusionPipeline pipe = StableDiffusionPipeline::load(kGolden + "/" + sd, quiet());
    EXPECT_EQ(pipe.version(), sd == "sd1-tiny" ? nd::SdVersion::kSD1 : nd::SdVersion::kSD2);
    EXPECT_EQ(pipe.pad_id(), sd == "sd1-tiny" ? 49407 : 0);
    EXPECT_EQ(pipe.prediction_type(),
              sd == "sd1-tiny" ? nd::PredictionType::kEpsilon : nd::PredictionType::kVPrediction);
    EXPECT_EQ(pipe.default_image_size(), 64);
    check_txt2img(pipe, sd);
  }
  // model_index.json itself names the folder too.
  EXPECT_EQ(StableDiffusionPipeline::load(kGolden + "/sd1-tiny/model_index.json", quiet()).version(),
            nd::SdVersion::kSD1);
}

TEST(GoldenSdPipeline, Txt2ImgFromSD1SingleFile) {
  REQUIRE_GOLDEN();
  nd::set_threads(0);
  // The folder beside the file supplies the tokenizer and the configs.
  StableDiffusionPipeline pipe =
      StableDiffusionPipeline::load(kGolden + "/sd1-tiny/original/sd1-tiny.safetensors", quiet());
  EXPECT_TRUE(pipe.single_file());
  EXPECT_EQ(pipe.version(), nd::SdVersion::kSD1);
  check_txt2img(pipe, "sd1-tiny");
  // The same weights as the folder, bit for bit.
  StableDiffusionPipeline folder = StableDiffusionPipeline::load(kGolden + "/sd1-tiny", quiet());
  for (const auto& p : folder.unet->named_parameters())
    EXPECT_TRUE(at::equal(p.value(), pipe.unet->named_parameters()[p.key()])) << p.key();
  for (const auto& p : folder.vae->named_parameters())
    EXPECT_TRUE(at::equal(p.value(), pipe.vae->named_parameters()[p.key()])) << p.key();
}

TEST(GoldenSdPipeline, Txt2ImgFromSD1SingleFileWithInferredConfigs) {
  REQUIRE_GOLDEN();
  nd::set_threads(0);
  // Only the text encoder's config (its 4 heads are not in the file); UNet, VAE and scheduler are inferred
  // from the weights, the tokenizer is found beside the file.
  TempDir tmp;
  fs::create_directories(tmp.path + "/text_encoder");
  fs::copy_file(kGolden + "/sd1-tiny/text_encoder/config.json", tmp.path + "/text_encoder/config.json");
  nd::SdLoadOptions o = quiet();
  o.config_dir = tmp.path;
  StableDiffusionPipeline pipe =
      StableDiffusionPipeline::load(kGolden + "/sd1-tiny/original/sd1-tiny.safetensors", o);
  EXPECT_EQ(pipe.scheduler_config().class_name, "PNDMScheduler");
  EXPECT_EQ(pipe.default_image_size(), 512);  // SD 1's sample_size: the file does not say
  check_txt2img(pipe, "sd1-tiny");
}

// sd2-tiny's diffusers weights written in the original SD 2 layout (OpenCLIP text tower with a fused in_proj
// and one more block than SD 2 uses, 1×1-conv VAE attention, extra EMA/schedule tensors), with the table in
// reverse.
std::string write_sd2_original(const std::string& dir) {
  std::map<std::string, at::Tensor> out;
  const auto unet_cfg = nd::UNet2DConditionConfig::from_file(kGolden + "/sd2-tiny/unet/config.json");
  nd::OriginalUNetLayout layout;
  for (size_t i = 0; i < unet_cfg.levels(); ++i)
    layout.levels.push_back({unet_cfg.block_out_channels[i], unet_cfg.layers_per_block[i],
                             unet_cfg.down_block_types[i] == "CrossAttnDownBlock2D" ? 1 : 0});
  layout.has_mid_block = layout.mid_attention = true;
  const nd::LdmNameTable unet_t = nd::LdmNameTable::unet(layout), vae_t = nd::LdmNameTable::vae(4, 3),
                         text_t = nd::LdmNameTable::open_clip_text(3);
  for (const auto& [name, t] :
       nd::load_safetensors(kGolden + "/sd2-tiny/unet/diffusion_pytorch_model.safetensors"))
    out[nd::kLdmUNetPrefix + unet_t.to_original(name)] = t;
  for (const auto& [name, t] :
       nd::load_safetensors(kGolden + "/sd2-tiny/vae/diffusion_pytorch_model.safetensors")) {
    const std::string o = vae_t.to_original(name);
    const bool conv = contains(o, "attn_1.") && !contains(o, ".norm.") && t.dim() == 2;
    out[nd::kLdmVAEPrefix + o] = conv ? t.view({t.size(0), t.size(1), 1, 1}) : t;
  }
  const auto text = nd::load_safetensors(kGolden + "/sd2-tiny/text_encoder/model.safetensors");
  for (const auto& [name, t] : text) {
    const std::string o = nd::kLdmTextPrefix + text_t.to_original(name);
    if (!contains(o, "in_proj_")) {
      out[o] = t;
    } else if (contains(name, "q_proj")) {  // fused q, k, v
      const std::string base = name.substr(0, name.find("q_proj"));
      const std::string what = name.substr(name.rfind('.') + 1);
      out[o] = at::cat({t, text.at(base + "k_proj." + what), text.at(base + "v_proj." + what)});
    }
  }
  // The last OpenCLIP block (unused by SD 2) and tensors a loader ignores.
  for (const auto& [name, t] : text)
    if (contains(name, "encoder.layers.1.")) {
      const std::string o = nd::kLdmTextPrefix + text_t.to_original(name);
      std::string last = o;
      last.replace(last.find("resblocks.1."), 12, "resblocks.2.");
      std::vector<int64_t> shape = t.sizes().vec();
      if (contains(o, "in_proj_")) shape[0] *= 3;
      out[last] = at::randn(shape);
    }
  out["cond_stage_model.model.text_projection"] = at::randn({32, 32});
  out["cond_stage_model.model.logit_scale"] = at::ones({});
  out["model_ema.decay"] = at::ones({});
  out["alphas_cumprod"] = at::ones({1000});
  const std::string path = dir + "/sd2-tiny-original.safetensors";
  nd::save_safetensors(path, out);
  return path;
}

TEST(GoldenSdPipeline, Txt2ImgFromSD2SingleFile) {
  REQUIRE_GOLDEN();
  nd::set_threads(0);
  TempDir tmp;
  const std::string path = write_sd2_original(tmp.path);
  // The heads of the tiny model are not SD 2's 64-channel heads: they come from the folder's configs; the VAE
  // and the scheduler (SD 2.1's DDIM, v-prediction) are inferred.
  fs::create_directories(tmp.path + "/cfg/unet");
  fs::create_directories(tmp.path + "/cfg/text_encoder");
  fs::copy_file(kGolden + "/sd2-tiny/unet/config.json", tmp.path + "/cfg/unet/config.json");
  fs::copy_file(kGolden + "/sd2-tiny/text_encoder/config.json", tmp.path + "/cfg/text_encoder/config.json");
  nd::SdLoadOptions o = quiet();
  o.config_dir = tmp.path + "/cfg";
  // No tokenizer beside the file or in the config folder: say so.
  const std::string err = input_error_of([&] { StableDiffusionPipeline::load(path, o); });
  EXPECT_TRUE(contains(err, "--tokenizer") && contains(err, "does not carry the CLIP tokenizer")) << err;
  o.tokenizer_dir = kGolden + "/clip-tokenizer";  // no special_tokens_map: the pad id comes from SD 2's rule
  StableDiffusionPipeline pipe = StableDiffusionPipeline::load(path, o);
  EXPECT_EQ(pipe.version(), nd::SdVersion::kSD2);
  EXPECT_EQ(pipe.pad_id(), 0);
  EXPECT_EQ(pipe.prediction_type(), nd::PredictionType::kVPrediction);
  EXPECT_EQ(pipe.scheduler_config().class_name, "DDIMScheduler");
  check_txt2img(pipe, "sd2-tiny");

  // The inferred configs agree with the folder's given the heads.
  const auto file = nd::SafetensorsFile::open(path);
  nd::OriginalLayoutHints hints;
  hints.text_heads = 4;
  hints.unet_heads = {2, 4};
  const nd::OriginalConfigs c =
      nd::infer_original_configs(nd::tensor_source(file), nd::SdVersion::kSD2, hints);
  const auto u = nd::UNet2DConditionConfig::from_json(c.unet, "inferred");
  EXPECT_TRUE(u.use_linear_projection);
  EXPECT_EQ(u.num_attention_heads, (std::vector<int>{2, 4}));
  EXPECT_EQ(c.text_encoder["num_hidden_layers"], 2);  // 3 OpenCLIP blocks, the penultimate is the output
  EXPECT_EQ(c.text_encoder["hidden_act"], "gelu");
  EXPECT_TRUE(contains(
      input_error_of([&] { nd::infer_original_configs(nd::tensor_source(file), nd::SdVersion::kSD2); }),
      "not a multiple of 64"));
}

TEST(GoldenSdPipeline, EncodeDecodeAndPredictNoise) {
  REQUIRE_GOLDEN();
  nd::set_threads(0);
  const auto vae = nd::load_safetensors(kGolden + "/sd1-tiny/golden/vae.safetensors");
  const auto unet = nd::load_safetensors(kGolden + "/sd2-tiny/golden/unet.safetensors");
  StableDiffusionPipeline sd2 = StableDiffusionPipeline::load(kGolden + "/sd2-tiny", quiet());
  const double enc = max_abs_diff(sd2.encode_image(vae.at("image")), vae.at("latents_scaled"));
  const double dec =
      max_abs_diff(sd2.decode_latents(vae.at("decode_input") * 0.18215), vae.at("decode_output"));
  EXPECT_LT(enc, 1e-4);
  EXPECT_LT(dec, 1e-4);
  // The image gets a gradient through the encoder (latent SDS); the weights never do.
  at::Tensor image = vae.at("image").clone().requires_grad_(true);
  sd2.encode_image(image).sum().backward();
  EXPECT_TRUE(image.grad().defined() && image.grad().abs().sum().item<double>() > 0);
  for (const auto& p : sd2.vae->parameters()) EXPECT_FALSE(p.requires_grad());

  // Without guidance the UNet alone (the golden per-item timesteps); ε from v with ᾱ_t per item.
  const at::Tensor x = unet.at("sample"), t = unet.at("timestep"), ctx = unet.at("encoder_hidden_states");
  const nd::CfgPrediction p = sd2.predict(x, t, ctx, 7.5);
  EXPECT_LT(max_abs_diff(p.guided, unet.at("out")), 1e-4);
  const at::Tensor a = sd2.noise_schedule().alphas_cumprod().index_select(0, t).view({2, 1, 1, 1});
  const at::Tensor eps = a.sqrt() * unet.at("out") + (1 - a).sqrt() * x;
  const double eps_err = max_abs_diff(sd2.predict_noise(x, t, ctx, 7.5), eps);
  EXPECT_LT(eps_err, 1e-4);
  // With guidance: uncond rows first, per-item timesteps repeated for both halves.
  const at::Tensor both = at::cat({ctx.flip(0), ctx});
  const nd::CfgPrediction g = sd2.predict(x, t, both, 3.0);
  EXPECT_LT(max_abs_diff(g.cond, unet.at("out")), 1e-4);
  EXPECT_LT(max_abs_diff(g.guided, g.uncond + 3.0 * (g.cond - g.uncond)), 1e-6);
  std::printf("[sd pipeline] VAE encode %.2e, decode %.2e, predict_noise(v→ε) %.2e\n", enc, dec, eps_err);
}

TEST(GoldenSdPipeline, LongPromptIsTruncatedWithOneWarning) {
  REQUIRE_GOLDEN();
  StableDiffusionPipeline pipe = StableDiffusionPipeline::load(kGolden + "/sd1-tiny", quiet());
  std::string long_prompt;
  for (int i = 0; i < 90; ++i) long_prompt += "red ";
  long_prompt += "mushroom";
  testing::internal::CaptureStderr();
  const at::Tensor e = pipe.encode_prompt({long_prompt, "a cat"});
  const std::string err = testing::internal::GetCapturedStderr();
  EXPECT_EQ(e.sizes(), (at::IntArrayRef{2, 77, 32}));
  EXPECT_TRUE(contains(err, "warning") && contains(err, "91 tokens") && contains(err, "truncated") &&
              contains(err, "mushroom"))
      << err;
  EXPECT_EQ(std::count(err.begin(), err.end(), '\n'), 1) << err;
  testing::internal::CaptureStderr();
  pipe.encode_prompt({"a cat"});
  EXPECT_EQ(testing::internal::GetCapturedStderr(), "");
}

TEST(GoldenSdPipeline, SampleJobWritesAGrid) {
  REQUIRE_GOLDEN();
  nd::set_threads(0);
  TempDir tmp;
  nd::SdSampleOptions o;
  o.model = kGolden + "/sd1-tiny";
  o.prompt = "a red mushroom";
  o.num_images = 3;
  o.steps = 3;
  o.seed = 7;
  o.scheduler = "euler";
  o.out = tmp.path + "/sub/grid.png";
  o.progress = false;
  EXPECT_EQ(nd::run_sd_sample(o), 0);
  const nd::ImageInfo info = nd::read_image_info(o.out);
  EXPECT_EQ(info.width, 128);  // 2 columns × 64
  EXPECT_EQ(info.height, 128);
  // Deterministic for a seed, different for another.
  const at::Tensor first = nd::load_image(o.out);
  EXPECT_EQ(nd::run_sd_sample(o), 0);
  EXPECT_TRUE(at::equal(first, nd::load_image(o.out)));
  o.seed = 8;
  EXPECT_EQ(nd::run_sd_sample(o), 0);
  EXPECT_FALSE(at::equal(first, nd::load_image(o.out)));
  for (const auto& f : fs::directory_iterator(tmp.path + "/sub")) EXPECT_EQ(f.path().filename(), "grid.png");
}

// ---------------------------------------------------------------------------------------------- bad input

TEST(SdPipeline, RefusesPicklesAndUnknownFiles) {
  TempDir tmp;
  const std::string ckpt = tmp.path + "/v1-5-pruned.ckpt";
  std::ofstream(ckpt) << "not even read";
  std::string err = input_error_of([&] { StableDiffusionPipeline::load(ckpt, quiet()); });
  EXPECT_TRUE(contains(err, "pickle") && contains(err, "safetensors") && contains(err, ckpt)) << err;
  // A torch.save zip under a .safetensors name is recognised too.
  const std::string zip = tmp.path + "/model.safetensors";
  std::ofstream(zip, std::ios::binary) << std::string("PK\x03\x04", 4) << std::string(100, 'x');
  err = input_error_of([&] { StableDiffusionPipeline::load(zip, quiet()); });
  EXPECT_TRUE(contains(err, "pickle")) << err;
  // A valid safetensors file in neither layout.
  const std::string other = tmp.path + "/other.safetensors";
  nd::save_safetensors(other, {{"encoder.layer.0.weight", at::zeros({2, 2})}});
  err = input_error_of([&] { StableDiffusionPipeline::load(other, quiet()); });
  EXPECT_TRUE(contains(err, "not a Stable Diffusion checkpoint") && contains(err, "model.diffusion_model"))
      << err;
  // One diffusers component instead of the pipeline folder.
  nd::save_safetensors(
      other, {{"conv_in.weight", at::zeros({2, 2})}, {"time_embedding.linear_1.weight", at::zeros({2})}});
  err = input_error_of([&] { StableDiffusionPipeline::load(other, quiet()); });
  EXPECT_TRUE(contains(err, "model_index.json")) << err;
  err = input_error_of([&] { StableDiffusionPipeline::load(tmp.path, quiet()); });
  EXPECT_TRUE(contains(err, "no model_index.json")) << err;
  err = input_error_of([&] { StableDiffusionPipeline::load(tmp.path + "/missing", quiet()); });
  EXPECT_TRUE(contains(err, "no such file")) << err;
}

TEST(SdPipeline, SampleOptionsAreCheckedBeforeLoading) {
  nd::SdSampleOptions o;
  o.model = "/nonexistent";
  o.out = "x.jpg";
  EXPECT_TRUE(contains(input_error_of([&] { nd::run_sd_sample(o); }), ".png"));
  o.out = "x.png";
  o.height = 60;
  EXPECT_TRUE(contains(input_error_of([&] { nd::run_sd_sample(o); }), "--height: 60"));
  o.height = 0;
  o.scheduler = "dpm";
  EXPECT_TRUE(contains(input_error_of([&] { nd::run_sd_sample(o); }), "--scheduler"));
  o.scheduler = "";
  o.num_images = 0;
  EXPECT_TRUE(contains(input_error_of([&] { nd::run_sd_sample(o); }), "-n"));
  o.num_images = 1;
  EXPECT_TRUE(contains(input_error_of([&] { nd::run_sd_sample(o); }), "no such file"));
}

TEST(GoldenSdPipeline, FolderErrorsNameTheComponent) {
  REQUIRE_GOLDEN();
  TempDir tmp;
  for (const char* c : {"tokenizer", "text_encoder", "unet", "scheduler"})
    fs::create_directory_symlink(kGolden + "/sd1-tiny/" + c, tmp.path + "/" + c);
  nlohmann::json index = nd::read_json_file(kGolden + "/sd1-tiny/model_index.json");
  index.erase("vae");
  std::ofstream(tmp.path + "/model_index.json") << index.dump();
  std::string err = input_error_of([&] { StableDiffusionPipeline::load(tmp.path, quiet()); });
  EXPECT_TRUE(contains(err, "model_index.json") && contains(err, "'vae' is missing")) << err;
  index["vae"] = {"diffusers", "AutoencoderKL"};
  std::ofstream(tmp.path + "/model_index.json") << index.dump();
  err = input_error_of([&] { StableDiffusionPipeline::load(tmp.path, quiet()); });
  EXPECT_TRUE(contains(err, "/vae: folder missing")) << err;
  index["vae"] = {"diffusers", "AsymmetricAutoencoderKL"};
  std::ofstream(tmp.path + "/model_index.json") << index.dump();
  err = input_error_of([&] { StableDiffusionPipeline::load(tmp.path, quiet()); });
  EXPECT_TRUE(contains(err, "AsymmetricAutoencoderKL")) << err;
}

TEST(GoldenSdPipeline, SingleFileErrorsNameTheTensor) {
  REQUIRE_GOLDEN();
  TempDir tmp;
  const auto original = nd::load_safetensors(kGolden + "/sd1-tiny/original/sd1-tiny.safetensors");
  nd::SdLoadOptions o = quiet();
  o.config_dir = kGolden + "/sd1-tiny";
  const std::string path = tmp.path + "/sd1.safetensors";
  auto error_with = [&](const std::function<void(std::map<std::string, at::Tensor>&)>& edit) {
    auto t = original;
    edit(t);
    nd::save_safetensors(path, t);
    return input_error_of([&] { StableDiffusionPipeline::load(path, o); });
  };
  const std::string key = "model.diffusion_model.output_blocks.3.0.out_layers.3.weight";
  std::string err = error_with([&](auto& t) { t[key] = at::zeros({32, 32, 1, 1}); });
  EXPECT_TRUE(contains(err, "'" + key + "' has shape [32, 32, 1, 1]") && contains(err, "[32, 32, 3, 3]"))
      << err;
  err = error_with([](auto& t) { t.erase("first_stage_model.decoder.mid.attn_1.q.bias"); });
  EXPECT_TRUE(contains(err, "missing tensor 'first_stage_model.decoder.mid.attn_1.q.bias'")) << err;
  err = error_with(
      [](auto& t) { t["model.diffusion_model.input_blocks.1.0.in_layers.1.weight"] = at::zeros({2}); });
  EXPECT_TRUE(contains(err, "'model.diffusion_model.input_blocks.1.0.in_layers.1.weight' is not part of"))
      << err;
  err = error_with([](auto& t) {
    t["cond_stage_model.transformer.text_model.embeddings.token_embedding.weight"] = at::zeros({49408, 16});
  });
  EXPECT_TRUE(contains(err, "token_embedding.weight' has shape [49408, 16]")) << err;
  err = error_with([](auto& t) {
    t["model.diffusion_model.input_blocks.1.0.in_layers.2.bias"] = at::zeros({32}, at::kLong);
  });
  EXPECT_TRUE(contains(err, "dtype I64")) << err;
}

// ------------------------------------------------------------------------------------------------ inspect

TEST(Inspect, NerfdreamCheckpointsPicklesAndUnknownFiles) {
  TempDir tmp;
  const std::string fit = tmp.path + "/checkpoint.safetensors";
  nd::save_safetensors(
      fit, {{"field.grid", at::zeros({10, 2})}, {"optim.m", at::zeros({20}, at::kHalf)}},
      {{"format", "nerfdream.nerf"}, {"format_version", "1"}, {"step", "42"}, {"config", "{}"}});
  nd::CheckpointInspection r = nd::inspect_checkpoint(fit);
  EXPECT_EQ(r.family, "nerfdream-fit-checkpoint");
  EXPECT_EQ(r.tensors, 2);
  EXPECT_EQ(r.params, 40);
  EXPECT_EQ(r.dtypes.at("F16"), 1);
  EXPECT_TRUE(contains(r.to_text(), "family: nerfdream-fit-checkpoint") && contains(r.to_text(), "step: 42"))
      << r.to_text();
  nd::save_safetensors(fit, {{"model.w", at::zeros({3})}}, {{"format", "nerfdream.prior"}});
  EXPECT_EQ(nd::inspect_checkpoint(fit).family, "tiny-prior");
  nd::save_safetensors(fit, {{"w", at::zeros({3})}});
  EXPECT_EQ(nd::inspect_checkpoint(fit).family, "unknown");
  EXPECT_EQ(nd::inspect_checkpoint(fit).to_json()["tensors"], 1);
  std::ofstream(tmp.path + "/m.ckpt") << "x";
  r = nd::inspect_checkpoint(tmp.path + "/m.ckpt");
  EXPECT_EQ(r.kind, "pickle");
  EXPECT_TRUE(contains(r.to_text(), "not opened")) << r.to_text();
  EXPECT_TRUE(contains(input_error_of([&] { nd::inspect_checkpoint(tmp.path + "/none"); }), "no such file"));
  EXPECT_TRUE(contains(input_error_of([&] { nd::inspect_checkpoint(tmp.path); }), "model_index.json"));
}

TEST(GoldenInspect, SingleFileAndFolders) {
  REQUIRE_GOLDEN();
  const nd::CheckpointInspection f =
      nd::inspect_checkpoint(kGolden + "/sd1-tiny/original/sd1-tiny.safetensors");
  EXPECT_EQ(f.kind, "safetensors");
  EXPECT_EQ(f.family, "SD1");
  EXPECT_EQ(f.tensors, 520);
  EXPECT_EQ(f.params, 1597162 + 1106212 + 1028935);  // the README's counts
  EXPECT_EQ(f.metadata.at("format"), "pt");
  const std::string text = f.to_text();
  EXPECT_TRUE(contains(text, "family: SD1") && contains(text, "block_out_channels [32, 64]") &&
              contains(text, "heads not stored"))
      << text;
  std::printf("%s", text.c_str());
  for (const std::string sd : {"sd1-tiny", "sd2-tiny"}) {
    const nd::CheckpointInspection d = nd::inspect_checkpoint(kGolden + "/" + sd);
    EXPECT_EQ(d.kind, "diffusers-folder");
    EXPECT_EQ(d.family, sd == "sd1-tiny" ? "SD1" : "SD2");
    EXPECT_EQ(d.params, 1597162 + 1106212 + 1028935);
    EXPECT_TRUE(
        contains(d.to_text(), sd == "sd1-tiny" ? "prediction_type -" : "prediction_type v_prediction"))
        << d.to_text();
  }
  EXPECT_EQ(nd::inspect_checkpoint(kGolden + "/sd1-tiny/unet/diffusion_pytorch_model.safetensors").family,
            "diffusers-unet");
  EXPECT_EQ(nd::inspect_checkpoint(kGolden + "/sd1-tiny/vae/diffusion_pytorch_model.safetensors").family,
            "diffusers-vae");
}

// ------------------------------------------------------------------------------------------------- cost

int64_t numel(torch::nn::Module& m) {
  int64_t n = 0;
  for (const auto& p : m.parameters()) n += p.numel();
  return n;
}

TEST(UNetCost, ParamsMatchTheModelAndSD15) {
  const nlohmann::json tiny = nlohmann::json::parse(R"({
    "in_channels": 4, "out_channels": 4, "block_out_channels": [32, 64], "layers_per_block": 2,
    "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"], "mid_block_type": "UNetMidBlock2DCrossAttn",
    "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"], "attention_head_dim": 8, "cross_attention_dim": 32})");
  for (bool linear : {false, true}) {
    nlohmann::json j = tiny;
    j["use_linear_projection"] = linear;
    const auto c = nd::UNet2DConditionConfig::from_json(j, "tiny");
    nd::UNet2DConditionModel m(c);
    EXPECT_EQ(nd::unet_cost(c, 2, 8, 8).params, numel(*m)) << linear;
    EXPECT_EQ(numel(*m), 1106212);  // the README's count for both tiny UNets
  }
  const auto sd15 = nd::sd15_unet_config();
  const nd::UNetCost cost = nd::unet_cost(sd15, 1, 64, 64);
  EXPECT_EQ(cost.params, 859520964);  // runwayml/stable-diffusion-v1-5's UNet
  // Published: 339 GMACs per 512² image for the conv and linear layers (BK-SDM, Kim et al. 2023, Table 1;
  // its counter leaves out the attention matmuls, which add ~16%).
  EXPECT_NEAR((cost.conv_flops + cost.linear_flops) / 2, 339e9, 0.01 * 339e9);
  EXPECT_GT(cost.attention_flops, 0.1 * cost.total_flops());
  // Batch and resolution scale the counted work as they should.
  EXPECT_NEAR(nd::unet_cost(sd15, 2, 64, 64).total_flops() / cost.total_flops(), 2.0, 1e-9);
  double blocks = 0;
  for (const auto& [name, f] : cost.block_flops) blocks += f;
  EXPECT_NEAR(blocks, cost.total_flops(), 1e-6 * blocks);
  std::printf(
      "[unet cost] SD 1.5 at 64x64 latents, batch 1: %.1f GFLOPs (conv %.1f, linear %.1f, attention %.1f)\n",
      cost.total_flops() / 1e9, cost.conv_flops / 1e9, cost.linear_flops / 1e9, cost.attention_flops / 1e9);
}

}  // namespace
