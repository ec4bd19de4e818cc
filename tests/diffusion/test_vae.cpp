// AutoencoderKL: diffusers' parameter names, shapes, the deprecated attention names, the posterior, config
// and strict loading errors, and the golden outputs of ../shared/golden/sd{1,2}-tiny/golden/vae.safetensors
// (diffusers v0.25.1, atol 1e-4).
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <filesystem>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/threads.h"
#include "diffusion/autoencoder_kl.h"
#include "io/safetensors.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using nlohmann::json;

using nd::test::contains;
using nd::test::input_error_of;
using nd::test::kGolden;
using nd::test::max_abs_diff;

#define REQUIRE_GOLDEN() \
  if (!fs::exists(kGolden + "/sd1-tiny/golden/vae.safetensors")) GTEST_SKIP() << kGolden << " not found"

// Three levels (×4), 8/8/16 channels.
json tiny_json() {
  return json::parse(R"({
    "_class_name": "AutoencoderKL", "act_fn": "silu", "in_channels": 3, "out_channels": 3, "latent_channels": 4,
    "block_out_channels": [8, 8, 16], "layers_per_block": 1, "norm_num_groups": 4, "sample_size": 16,
    "scaling_factor": 0.18215, "force_upcast": true,
    "down_block_types": ["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D"],
    "up_block_types": ["UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"]})");
}

nd::AutoencoderKLConfig tiny_config() { return nd::AutoencoderKLConfig::from_json(tiny_json(), "vae.json"); }

nd::AutoencoderKL tiny_vae(uint64_t seed) {
  nd::AutoencoderKL m(tiny_config());
  m->eval();
  at::manual_seed(seed);
  at::NoGradGuard no_grad;
  for (auto& p : m->named_parameters())
    if (contains(p.key(), "norm"))
      p.value().copy_((contains(p.key(), "weight") ? 1.0 : 0.0) + 0.1 * at::randn(p.value().sizes()));
  return m;
}

TEST(VAE, ParameterNamesAndShapes) {
  nd::AutoencoderKL m = tiny_vae(1);
  const auto params = m->named_parameters();
  for (const char* key :
       {"encoder.conv_in.weight", "encoder.down_blocks.0.resnets.0.norm1.weight",
        "encoder.down_blocks.0.downsamplers.0.conv.weight",
        "encoder.down_blocks.2.resnets.0.conv_shortcut.weight", "encoder.mid_block.attentions.0.to_q.bias",
        "encoder.mid_block.attentions.0.to_out.0.weight", "encoder.mid_block.attentions.0.group_norm.weight",
        "encoder.mid_block.resnets.1.conv2.bias", "encoder.conv_norm_out.weight", "encoder.conv_out.weight",
        "quant_conv.weight", "post_quant_conv.bias", "decoder.conv_in.weight",
        "decoder.mid_block.attentions.0.to_k.weight", "decoder.up_blocks.0.resnets.1.conv1.weight",
        "decoder.up_blocks.1.upsamplers.0.conv.weight", "decoder.up_blocks.1.resnets.0.conv_shortcut.weight",
        "decoder.conv_out.bias"})
    EXPECT_TRUE(params.contains(key)) << key;
  for (const char* key :
       {"encoder.down_blocks.2.downsamplers.0.conv.weight", "decoder.up_blocks.2.upsamplers.0.conv.weight",
        "encoder.down_blocks.0.resnets.0.time_emb_proj.weight"})
    EXPECT_FALSE(params.contains(key)) << key;
  EXPECT_EQ(params["encoder.conv_out.weight"].sizes(), at::IntArrayRef({8, 16, 3, 3}));  // double_z
  EXPECT_EQ(params["quant_conv.weight"].sizes(), at::IntArrayRef({8, 8, 1, 1}));

  at::NoGradGuard no_grad;
  const at::Tensor x = at::rand({2, 3, 16, 12}) * 2 - 1;
  const nd::DiagonalGaussian post = m->encode(x);
  ASSERT_EQ(post.mean.sizes(), at::IntArrayRef({2, 4, 4, 3}));
  ASSERT_EQ(post.logvar.sizes(), at::IntArrayRef({2, 4, 4, 3}));
  EXPECT_EQ(m->decode(post.mean).sizes(), at::IntArrayRef({2, 3, 16, 12}));
  // One by one equals the batch (GroupNorm is per sample).
  EXPECT_LE(max_abs_diff(m->encode(x.slice(0, 1, 2)).mean, post.mean.slice(0, 1, 2)), 1e-5);
  EXPECT_DOUBLE_EQ(m->scaling_factor(), 0.18215);

  // The posterior: std = exp(logvar / 2); a sample is mean + std · ε with ε from the generator.
  EXPECT_LE(max_abs_diff(post.std(), at::exp(0.5 * post.logvar)), 0);
  at::Generator g1 = at::detail::createCPUGenerator(7), g2 = at::detail::createCPUGenerator(7);
  const at::Tensor s = post.sample(g1);
  EXPECT_LE(max_abs_diff(s, post.mean + post.std() * at::randn(post.mean.sizes(), g2, post.mean.options())),
            1e-6);
  EXPECT_GT(max_abs_diff(s, post.mean), 1e-3);
  // logvar is clamped to [-30, 20].
  {
    auto p = m->named_parameters();
    p["quant_conv.bias"].add_(at::tensor({0, 0, 0, 0, 100, -100, 0, 0}, at::kFloat));
  }
  const nd::DiagonalGaussian clamped = m->encode(x);
  EXPECT_EQ(clamped.logvar.select(1, 0).max().item<float>(), 20.0f);
  EXPECT_EQ(clamped.logvar.select(1, 1).min().item<float>(), -30.0f);
}

TEST(VAE, DeprecatedAttentionNamesAreAccepted) {
  EXPECT_EQ(nd::vae_current_tensor_name("encoder.mid_block.attentions.0.query.weight"),
            "encoder.mid_block.attentions.0.to_q.weight");
  EXPECT_EQ(nd::vae_current_tensor_name("decoder.mid_block.attentions.0.key.bias"),
            "decoder.mid_block.attentions.0.to_k.bias");
  EXPECT_EQ(nd::vae_current_tensor_name("decoder.mid_block.attentions.0.value.weight"),
            "decoder.mid_block.attentions.0.to_v.weight");
  EXPECT_EQ(nd::vae_current_tensor_name("encoder.mid_block.attentions.0.proj_attn.bias"),
            "encoder.mid_block.attentions.0.to_out.0.bias");
  for (const char* unchanged :
       {"encoder.mid_block.attentions.0.group_norm.weight", "encoder.mid_block.attentions.0.to_q.weight",
        "decoder.up_blocks.0.resnets.0.conv1.weight", "query.weight"})
    EXPECT_EQ(nd::vae_current_tensor_name(unchanged), unchanged);

  nd::AutoencoderKL m = tiny_vae(2);
  const std::map<std::string, std::string> old_names = {
      {"to_q", "query"}, {"to_k", "key"}, {"to_v", "value"}, {"to_out.0", "proj_attn"}};
  std::map<std::string, at::Tensor> legacy;
  for (const auto& p : m->named_parameters()) {
    std::string key = p.key();
    at::Tensor t = p.value().detach().clone();
    for (const auto& [now, old] : old_names) {
      const std::string part = "attentions.0." + now + ".";
      if (const size_t pos = key.find(part); pos != std::string::npos) {
        key = key.substr(0, pos) + "attentions.0." + old + "." + key.substr(pos + part.size());
        if (t.dim() == 2) t = t.reshape({t.size(0), t.size(1), 1, 1});  // as 1×1 conv weights
      }
    }
    legacy["vae." + key] = t;
  }
  ASSERT_TRUE(legacy.count("vae.decoder.mid_block.attentions.0.proj_attn.weight"));
  ASSERT_EQ(legacy["vae.encoder.mid_block.attentions.0.query.weight"].dim(), 4);
  nd::AutoencoderKL loaded = nd::load_vae_from(legacy, "vae.", tiny_config(), "old.safetensors");
  for (const auto& p : m->named_parameters())
    EXPECT_TRUE(at::equal(p.value(), loaded->named_parameters()[p.key()])) << p.key();
  at::NoGradGuard no_grad;
  const at::Tensor z = at::randn({1, 4, 2, 2});
  EXPECT_LE(max_abs_diff(loaded->decode(z), m->decode(z)), 0);

  // Old and new name for the same parameter: ambiguous.
  auto both = legacy;
  both["vae.encoder.mid_block.attentions.0.to_q.weight"] =
      legacy["vae.encoder.mid_block.attentions.0.query.weight"];
  EXPECT_EQ(input_error_of([&] { nd::load_vae_from(both, "vae.", tiny_config(), "old.safetensors"); }),
            "old.safetensors: tensors 'vae.encoder.mid_block.attentions.0.query.weight' and "
            "'vae.encoder.mid_block.attentions.0.to_q.weight' both hold AutoencoderKL parameter "
            "'encoder.mid_block.attentions.0.to_q.weight'");
}

TEST(VAE, StrictLoadingNamesFileAndTensor) {
  nd::AutoencoderKL m = tiny_vae(3);
  std::map<std::string, at::Tensor> good;
  for (const auto& p : m->named_parameters())
    good["first_stage_model." + p.key()] = p.value().detach().clone();
  good["model.diffusion_model.conv_in.weight"] = at::zeros({1});  // outside the prefix: ignored
  EXPECT_NO_THROW(nd::load_vae_from(good, "first_stage_model.", tiny_config(), "ckpt"));
  auto missing = good;
  missing.erase("first_stage_model.decoder.up_blocks.1.resnets.1.norm2.bias");
  EXPECT_EQ(
      input_error_of([&] { nd::load_vae_from(missing, "first_stage_model.", tiny_config(), "ckpt"); }),
      "ckpt: missing tensor 'first_stage_model.decoder.up_blocks.1.resnets.1.norm2.bias' (AutoencoderKL)");
  auto reshaped = good;
  reshaped["first_stage_model.post_quant_conv.weight"] = at::zeros({4, 4, 3, 3});
  EXPECT_EQ(
      input_error_of([&] { nd::load_vae_from(reshaped, "first_stage_model.", tiny_config(), "ckpt"); }),
      "ckpt: tensor 'first_stage_model.post_quant_conv.weight' has shape [4, 4, 3, 3], the config needs "
      "[4, 4, 1, 1]");
  // Only the attention projections may carry extra size-1 dims.
  auto squeezed = good;
  squeezed["first_stage_model.encoder.mid_block.attentions.0.group_norm.weight"] = at::ones({16, 1, 1});
  EXPECT_TRUE(contains(
      input_error_of([&] { nd::load_vae_from(squeezed, "first_stage_model.", tiny_config(), "ckpt"); }),
      "has shape [16, 1, 1], the config needs [16]"));
  auto extra = good;
  extra["first_stage_model.encoder.down_blocks.3.resnets.0.conv1.weight"] = at::zeros({16, 16, 3, 3});
  EXPECT_EQ(input_error_of([&] { nd::load_vae_from(extra, "first_stage_model.", tiny_config(), "ckpt"); }),
            "ckpt: unexpected tensor 'first_stage_model.encoder.down_blocks.3.resnets.0.conv1.weight' (not a "
            "AutoencoderKL parameter)");
}

TEST(VAEConfig, ErrorsNameFileKeyAndValue) {
  auto error_with = [](const std::function<void(json&)>& edit) {
    json j = tiny_json();
    edit(j);
    return input_error_of([&] { nd::AutoencoderKLConfig::from_json(j, "vae/config.json"); });
  };
  EXPECT_EQ(error_with([](json& j) { j["down_block_types"][2] = "AttnDownEncoderBlock2D"; }),
            "vae/config.json: down_block_types[2]: unknown block type 'AttnDownEncoderBlock2D' (supported: "
            "DownEncoderBlock2D)");
  EXPECT_TRUE(contains(error_with([](json& j) { j["up_block_types"][0] = "UpBlock2D"; }),
                       "up_block_types[0]: unknown block type 'UpBlock2D'"));
  EXPECT_EQ(error_with([](json& j) { j.erase("latent_channels"); }),
            "vae/config.json: missing key 'latent_channels'");
  EXPECT_TRUE(contains(error_with([](json& j) {
                         j["block_out_channels"] = json::array({8, 16});
                       }),
                       "need one entry per block_out_channels (2)"));
  EXPECT_TRUE(contains(error_with([](json& j) { j["act_fn"] = "gelu"; }), "act_fn: 'gelu' is not supported"));
  EXPECT_TRUE(contains(error_with([](json& j) { j["scaling_factor"] = "big"; }),
                       "scaling_factor: expected a number"));
  // Absent optional keys take diffusers' defaults.
  json j = tiny_json();
  j.erase("scaling_factor");
  j["shift_factor"] = nullptr;
  const nd::AutoencoderKLConfig c = nd::AutoencoderKLConfig::from_json(j, "vae.json");
  EXPECT_DOUBLE_EQ(c.scaling_factor, 0.18215);
  EXPECT_DOUBLE_EQ(c.shift_factor, 0.0);
}

// ------------------------------------------------------------------------------------------------- golden

TEST(GoldenVAE, SD1AndSD2Folders) {
  REQUIRE_GOLDEN();
  nd::set_threads(0);
  for (const std::string sd : {"sd1-tiny", "sd2-tiny"}) {
    SCOPED_TRACE(sd);
    nd::AutoencoderKL m = nd::load_vae(kGolden + "/" + sd + "/vae");
    int64_t n = 0;
    for (const auto& p : m->parameters()) n += p.numel();
    EXPECT_EQ(n, 1028935);  // the README's parameter count
    const nd::SafetensorsFile g = nd::SafetensorsFile::open(kGolden + "/" + sd + "/golden/vae.safetensors");
    at::NoGradGuard no_grad;
    const at::Tensor image = g.load("image");
    const at::Tensor enc = m->encoder(image);
    const nd::DiagonalGaussian post = m->encode(image);
    std::map<std::string, double> err;
    err["encoder_out"] = max_abs_diff(enc, g.load("encoder_out"));
    err["moments"] = max_abs_diff(m->quant_conv(enc), g.load("moments"));
    err["mean"] = max_abs_diff(post.mean, g.load("mean"));
    err["logvar"] = max_abs_diff(post.logvar, g.load("logvar"));
    err["std"] = max_abs_diff(post.std(), g.load("std"));
    err["latents_scaled"] = max_abs_diff(post.mean * m->scaling_factor(), g.load("latents_scaled"));
    err["decode_output"] = max_abs_diff(m->decode(g.load("decode_input")), g.load("decode_output"));
    std::cout << "  " << sd << " VAE max abs error:";
    for (const auto& [name, e] : err) {
      EXPECT_LE(e, 1e-4) << name;
      std::cout << " " << name << " " << e;
    }
    std::cout << "\n";
  }
}

}  // namespace
