// UNet2DConditionModel: diffusers' parameter names, invariances (scalar vs per-item timesteps, batched vs
// one by one, sizes that are not multiples of 2^levels), the building blocks against plain formulas, config
// parsing and strict loading errors, and the golden outputs of ../shared/golden/sd{1,2}-tiny (diffusers
// v0.25.1, atol 1e-4).
#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/threads.h"
#include "diffusion/unet2d_condition.h"
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
  if (!fs::exists(kGolden + "/sd1-tiny/golden/unet.safetensors")) GTEST_SKIP() << kGolden << " not found"

// Two levels, 8 and 16 channels, cross attention at level 0 and in the mid block.
json tiny_json() {
  return json::parse(R"({
    "_class_name": "UNet2DConditionModel", "in_channels": 4, "out_channels": 4, "block_out_channels": [8, 16],
    "layers_per_block": 1, "down_block_types": ["CrossAttnDownBlock2D", "DownBlock2D"],
    "mid_block_type": "UNetMidBlock2DCrossAttn", "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D"],
    "attention_head_dim": [2, 4], "cross_attention_dim": 6, "norm_num_groups": 4, "norm_eps": 1e-5,
    "flip_sin_to_cos": true, "freq_shift": 0, "use_linear_projection": false, "class_embed_type": null})");
}

nd::UNet2DConditionConfig tiny_config() {
  return nd::UNet2DConditionConfig::from_json(tiny_json(), "tiny.json");
}

// Norm affine parameters away from 1/0 so that swapped or ignored ones show.
void randomize_norms(torch::nn::Module& m, uint64_t seed) {
  at::manual_seed(seed);
  at::NoGradGuard no_grad;
  for (auto& p : m.named_parameters()) {
    if (!contains(p.key(), "norm")) continue;
    const bool weight = contains(p.key(), "weight");
    p.value().copy_((weight ? 1.0 : 0.0) + 0.1 * at::randn(p.value().sizes()));
  }
}

// ---------------------------------------------------------------------------------------------- structure

TEST(UNet, ParameterNamesAreDiffusersKeys) {
  nd::UNet2DConditionModel m(tiny_config());
  const auto params = m->named_parameters();
  for (const char* key : {
           "conv_in.weight",
           "time_embedding.linear_1.weight",
           "time_embedding.linear_2.bias",
           "down_blocks.0.resnets.0.norm1.weight",
           "down_blocks.0.resnets.0.time_emb_proj.weight",
           "down_blocks.0.attentions.0.norm.weight",
           "down_blocks.0.attentions.0.proj_in.weight",
           "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight",
           "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight",
           "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_out.0.bias",
           "down_blocks.0.attentions.0.transformer_blocks.0.ff.net.0.proj.weight",
           "down_blocks.0.attentions.0.transformer_blocks.0.ff.net.2.weight",
           "down_blocks.0.attentions.0.transformer_blocks.0.norm3.bias",
           "down_blocks.0.downsamplers.0.conv.weight",
           "down_blocks.1.resnets.0.conv_shortcut.weight",
           "mid_block.resnets.1.conv2.bias",
           "mid_block.attentions.0.proj_out.weight",
           "up_blocks.0.resnets.1.conv_shortcut.weight",
           "up_blocks.0.upsamplers.0.conv.weight",
           "up_blocks.1.attentions.1.transformer_blocks.0.attn1.to_v.weight",
           "conv_norm_out.weight",
           "conv_out.bias",
       })
    EXPECT_TRUE(params.contains(key)) << key;
  for (const char* key :
       {"down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.bias",
        "down_blocks.1.downsamplers.0.conv.weight", "up_blocks.1.upsamplers.0.conv.weight",
        "down_blocks.1.attentions.0.norm.weight", "down_blocks.0.resnets.0.conv_shortcut.weight"})
    EXPECT_FALSE(params.contains(key)) << key;
  // Shapes of the layers whose sizes come from the config: heads do not change shapes, GEGLU doubles.
  EXPECT_EQ(params["down_blocks.0.attentions.0.transformer_blocks.0.ff.net.0.proj.weight"].sizes(),
            at::IntArrayRef({64, 8}));
  EXPECT_EQ(params["mid_block.attentions.0.transformer_blocks.0.attn2.to_k.weight"].sizes(),
            at::IntArrayRef({16, 6}));
  EXPECT_EQ(params["up_blocks.0.resnets.0.norm1.weight"].sizes(), at::IntArrayRef({32}));  // 16 + 16 skip
  EXPECT_EQ(params["up_blocks.1.resnets.0.conv1.weight"].sizes(), at::IntArrayRef({8, 24, 3, 3}));
  EXPECT_EQ(params["up_blocks.1.resnets.1.conv1.weight"].sizes(), at::IntArrayRef({8, 16, 3, 3}));
  EXPECT_EQ(params["time_embedding.linear_1.weight"].sizes(), at::IntArrayRef({32, 8}));
}

TEST(UNet, ForwardInvariances) {
  nd::set_threads(0);
  nd::UNet2DConditionModel m(tiny_config());
  randomize_norms(*m, 1);
  m->eval();
  at::NoGradGuard no_grad;
  const at::Tensor x = at::randn({3, 4, 8, 8});
  const at::Tensor ctx = at::randn({3, 5, 6});
  const at::Tensor t = at::tensor({999, 500, 1}, at::kLong);
  const at::Tensor out = m->forward(x, t, ctx);
  ASSERT_EQ(out.sizes(), at::IntArrayRef({3, 4, 8, 8}));
  EXPECT_TRUE(at::isfinite(out).all().item<bool>());
  // One by one gives the same as the batch.
  for (int64_t b = 0; b < 3; ++b)
    EXPECT_LE(max_abs_diff(m->forward(x.slice(0, b, b + 1), t.slice(0, b, b + 1), ctx.slice(0, b, b + 1)),
                           out.slice(0, b, b + 1)),
              1e-5);
  // A scalar timestep is broadcast to the batch; float timesteps are accepted.
  const at::Tensor scalar = m->forward(x, at::scalar_tensor(500, at::kLong), ctx);
  EXPECT_LE(max_abs_diff(scalar, m->forward(x, at::full({3}, 500, at::kLong), ctx)), 0);
  EXPECT_LE(max_abs_diff(scalar, m->forward(x, at::full({3}, 500.0, at::kDouble), ctx)), 0);
  // The timestep and the text matter.
  EXPECT_GT(max_abs_diff(scalar, out), 1e-3);
  EXPECT_GT(max_abs_diff(m->forward(x, t, ctx + 1), out), 1e-3);
  // Sizes that are not multiples of 2 (the up path matches the skip connections' sizes).
  EXPECT_EQ(m->forward(at::randn({1, 4, 5, 7}), at::scalar_tensor(3, at::kLong), ctx.slice(0, 0, 1)).sizes(),
            at::IntArrayRef({1, 4, 5, 7}));
  EXPECT_THROW(m->forward(x, at::zeros({2}, at::kLong), ctx), c10::Error);
}

TEST(UNet, TimestepEmbeddingFormula) {
  const at::Tensor t = at::tensor({0, 1, 10, 999}, at::kLong);
  for (int dim : {8, 9}) {
    for (bool flip : {false, true}) {
      for (double shift : {0.0, 1.0}) {
        const at::Tensor e = nd::timestep_embedding(t, dim, flip, shift);
        ASSERT_EQ(e.sizes(), at::IntArrayRef({4, dim}));
        const int half = dim / 2;
        for (int64_t b = 0; b < 4; ++b) {
          for (int i = 0; i < half; ++i) {
            const double f = std::exp(-std::log(10000.0) * i / (half - shift));
            const double arg = t[b].item<double>() * f;
            const double first = flip ? std::cos(arg) : std::sin(arg),
                         second = flip ? std::sin(arg) : std::cos(arg);
            EXPECT_NEAR(e[b][i].item<double>(), first, 5e-4);  // float32 arguments up to 999
            EXPECT_NEAR(e[b][half + i].item<double>(), second, 5e-4);
          }
          if (dim % 2) {
            EXPECT_EQ(e[b][dim - 1].item<double>(), 0.0);
          }
        }
      }
    }
  }
}

TEST(UNet, SlicedAttentionAndProjectionsAgree) {
  at::manual_seed(2);
  const at::Tensor q = at::randn({2, 12, 8}), k = at::randn({2, 5, 8}), v = at::randn({2, 5, 8});
  const at::Tensor full = nd::multi_head_attention(q, k, v, 2);
  EXPECT_LE(max_abs_diff(full, nd::multi_head_attention(q, k, v, 2, /*max_score_elements=*/60)), 1e-6);
  // Head 0 by hand: softmax(q k^T / sqrt(4)) v on channels 0..3.
  const at::Tensor q0 = q.slice(2, 0, 4), k0 = k.slice(2, 0, 4), v0 = v.slice(2, 0, 4);
  const at::Tensor ref = at::softmax(at::matmul(q0, k0.transpose(1, 2)) / 2.0, -1).matmul(v0);
  EXPECT_LE(max_abs_diff(full.slice(2, 0, 4), ref), 1e-6);

  // Half-precision inputs: float32 scores, result close to the float32 one.
  const at::Tensor half =
      nd::multi_head_attention(q.to(at::kBFloat16), k.to(at::kBFloat16), v.to(at::kBFloat16), 2);
  EXPECT_EQ(half.scalar_type(), at::kBFloat16);
  EXPECT_LE(max_abs_diff(half, full), 0.05);

  // A Transformer2DModel with 1×1-conv projections equals one with Linear projections holding the same
  // weights.
  nd::Transformer2DOptions o;
  o.in_channels = 8;
  o.heads = 2;
  o.dim_head = 4;
  o.cross_attention_dim = 6;
  o.groups = 4;
  nd::Transformer2DModel conv(o);
  o.use_linear_projection = true;
  nd::Transformer2DModel lin(o);
  randomize_norms(*conv, 3);
  {
    at::NoGradGuard no_grad;
    auto lp = lin->named_parameters();
    for (const auto& p : conv->named_parameters()) lp[p.key()].copy_(p.value().reshape(lp[p.key()].sizes()));
  }
  const at::Tensor x = at::randn({2, 8, 3, 5}), ctx = at::randn({2, 7, 6});
  EXPECT_LE(max_abs_diff(conv(x, ctx), lin(x, ctx)), 1e-5);
}

// ------------------------------------------------------------------------------------------------ config

TEST(UNetConfig, ParsesDiffusersConventions) {
  const nd::UNet2DConditionConfig c = tiny_config();
  EXPECT_EQ(c.num_attention_heads, (std::vector<int>{2, 4}));  // attention_head_dim = number of heads
  EXPECT_EQ(c.cross_attention_dim, (std::vector<int>{6, 6}));
  EXPECT_EQ(c.layers_per_block, (std::vector<int>{1, 1}));
  EXPECT_EQ(c.time_embed_dim(), 32);
  json j = tiny_json();
  j["attention_head_dim"] = 2;
  j["num_attention_heads"] = nullptr;
  j["down_block_types"][1] = "UNetResDownBlock2D";  // diffusers strips the "UNetRes" prefix
  j["mid_block_type"] = nullptr;
  j["some_future_key"] = 3;  // unknown keys are ignored
  nd::UNet2DConditionConfig c2 = nd::UNet2DConditionConfig::from_json(j, "x.json");
  EXPECT_EQ(c2.num_attention_heads, (std::vector<int>{2, 2}));
  EXPECT_EQ(c2.down_block_types[1], "DownBlock2D");
  EXPECT_EQ(c2.mid_block_type, "");
  nd::UNet2DConditionModel no_mid(c2);
  EXPECT_FALSE(no_mid->named_parameters().contains("mid_block.resnets.0.conv1.weight"));
  j["num_attention_heads"] = json::array({1, 2});  // wins over attention_head_dim when set
  EXPECT_EQ(nd::UNet2DConditionConfig::from_json(j, "x.json").num_attention_heads, (std::vector<int>{1, 2}));
}

TEST(UNetConfig, ErrorsNameFileKeyAndValue) {
  auto error_with = [](const std::function<void(json&)>& edit) {
    json j = tiny_json();
    edit(j);
    return input_error_of([&] { nd::UNet2DConditionConfig::from_json(j, "unet/config.json"); });
  };
  EXPECT_EQ(error_with([](json& j) { j["down_block_types"][1] = "FooBlock2D"; }),
            "unet/config.json: down_block_types[1]: unknown block type 'FooBlock2D' (supported: "
            "CrossAttnDownBlock2D, DownBlock2D)");
  EXPECT_TRUE(contains(error_with([](json& j) { j["up_block_types"][0] = "AttnUpBlock2D"; }),
                       "unet/config.json: up_block_types[0]: unknown block type 'AttnUpBlock2D'"));
  EXPECT_TRUE(
      contains(error_with([](json& j) { j["mid_block_type"] = "UNetMidBlock2DSimpleCrossAttn"; }),
               "unet/config.json: mid_block_type: unknown block type 'UNetMidBlock2DSimpleCrossAttn'"));
  EXPECT_EQ(error_with([](json& j) { j.erase("block_out_channels"); }),
            "unet/config.json: missing key 'block_out_channels'");
  EXPECT_EQ(error_with([](json& j) { j.erase("cross_attention_dim"); }),
            "unet/config.json: missing key 'cross_attention_dim'");
  EXPECT_TRUE(contains(error_with([](json& j) { j.erase("attention_head_dim"); }),
                       "missing key 'attention_head_dim'"));
  EXPECT_TRUE(contains(error_with([](json& j) {
                         j["attention_head_dim"] = json::array({2, 4, 8});
                       }),
                       "attention_head_dim: has 3 entries, expected one per block (2)"));
  EXPECT_TRUE(contains(error_with([](json& j) {
                         j["attention_head_dim"] = json::array({3, 4});
                       }),
                       "attention_head_dim[0] = 3 heads do not divide 8 channels"));
  EXPECT_TRUE(contains(error_with([](json& j) { j["layers_per_block"] = "two"; }),
                       "layers_per_block: expected an integer, got \"two\""));
  EXPECT_TRUE(
      contains(error_with([](json& j) { j["norm_num_groups"] = 3; }), "norm_num_groups 3 does not divide"));
  EXPECT_EQ(error_with([](json& j) { j["class_embed_type"] = "timestep"; }),
            "unet/config.json: class_embed_type: \"timestep\" is not supported (only null)");
  EXPECT_TRUE(
      contains(error_with([](json& j) { j["addition_embed_type"] = "text_time"; }), "addition_embed_type"));
  EXPECT_TRUE(contains(error_with([](json& j) { j["up_block_types"] = json::array({"UpBlock2D"}); }),
                       "up_block_types: has 1 entries"));
  EXPECT_EQ(input_error_of([] { nd::UNet2DConditionConfig::from_file("/nonexistent/config.json"); }),
            "/nonexistent/config.json: cannot open file");
}

// ------------------------------------------------------------------------------------------------ loading

TEST(UNet, StrictLoadingNamesFileAndTensor) {
  nd::UNet2DConditionModel m(tiny_config());
  randomize_norms(*m, 4);
  const std::string prefix = "model.diffusion_model.";
  std::map<std::string, at::Tensor> good;
  for (const auto& p : m->named_parameters()) good[prefix + p.key()] = p.value().detach().clone();
  good["first_stage_model.decoder.conv_in.weight"] = at::zeros({3});  // outside the prefix: ignored
  nd::UNet2DConditionModel loaded = nd::load_unet_from(good, prefix, tiny_config(), "ckpt.safetensors");
  for (const auto& p : m->named_parameters())
    EXPECT_TRUE(at::equal(p.value(), loaded->named_parameters()[p.key()])) << p.key();
  EXPECT_FALSE(loaded->is_training());

  auto missing = good;
  missing.erase(prefix + "mid_block.attentions.0.transformer_blocks.0.attn2.to_v.weight");
  EXPECT_EQ(input_error_of([&] { nd::load_unet_from(missing, prefix, tiny_config(), "ckpt.safetensors"); }),
            "ckpt.safetensors: missing tensor "
            "'model.diffusion_model.mid_block.attentions.0.transformer_blocks.0.attn2.to_v.weight' "
            "(UNet2DConditionModel)");
  auto reshaped = good;
  reshaped[prefix + "down_blocks.0.resnets.0.conv1.weight"] = at::zeros({8, 8, 1, 1});
  EXPECT_EQ(input_error_of([&] { nd::load_unet_from(reshaped, prefix, tiny_config(), "ckpt.safetensors"); }),
            "ckpt.safetensors: tensor 'model.diffusion_model.down_blocks.0.resnets.0.conv1.weight' has shape "
            "[8, 8, 1, 1], the config needs [8, 8, 3, 3]");
  auto extra = good;
  extra[prefix + "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.bias"] = at::zeros({8});
  EXPECT_EQ(input_error_of([&] { nd::load_unet_from(extra, prefix, tiny_config(), "ckpt.safetensors"); }),
            "ckpt.safetensors: unexpected tensor "
            "'model.diffusion_model.down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.bias' (not a "
            "UNet2DConditionModel parameter)");
  auto ints = good;
  ints[prefix + "conv_out.bias"] = at::zeros({4}, at::kLong);
  EXPECT_TRUE(
      contains(input_error_of([&] { nd::load_unet_from(ints, prefix, tiny_config(), "ckpt.safetensors"); }),
               "expected a float type"));
}

TEST(UNet, LoadsFolderWithFp16Fallback) {
  nd::UNet2DConditionModel m(tiny_config());
  randomize_norms(*m, 5);
  const fs::path dir = fs::temp_directory_path() / ("nd_test_unet_" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::map<std::string, at::Tensor> half;
  for (const auto& p : m->named_parameters()) half[p.key()] = p.value().detach().to(at::kHalf);
  std::ofstream(dir / "config.json") << tiny_json().dump(2);
  EXPECT_TRUE(contains(input_error_of([&] { nd::load_unet(dir.string()); }),
                       "diffusion_pytorch_model.safetensors: cannot open file"));
  nd::save_safetensors((dir / "diffusion_pytorch_model.fp16.safetensors").string(), half);
  nd::UNet2DConditionModel loaded = nd::load_unet(dir.string());
  for (const auto& p : loaded->named_parameters()) {
    EXPECT_EQ(p.value().scalar_type(), at::kFloat);
    EXPECT_TRUE(at::equal(p.value(), half[p.key()].to(at::kFloat))) << p.key();
  }
  fs::remove_all(dir);
}

// ------------------------------------------------------------------------------------------------- golden

TEST(GoldenUNet, SD1AndSD2Folders) {
  REQUIRE_GOLDEN();
  nd::set_threads(0);
  for (const std::string sd : {"sd1-tiny", "sd2-tiny"}) {
    SCOPED_TRACE(sd);
    nd::UNet2DConditionModel m = nd::load_unet(kGolden + "/" + sd + "/unet");
    const nd::UNet2DConditionConfig& c = m->config();
    EXPECT_EQ(c.num_attention_heads, (sd == "sd1-tiny" ? std::vector<int>{8, 8} : std::vector<int>{2, 4}));
    EXPECT_EQ(c.use_linear_projection, sd == "sd2-tiny");
    int64_t n = 0;
    for (const auto& p : m->parameters()) n += p.numel();
    EXPECT_EQ(n, 1106212);  // the README's parameter count

    const nd::SafetensorsFile g = nd::SafetensorsFile::open(kGolden + "/" + sd + "/golden/unet.safetensors");
    at::NoGradGuard no_grad;
    const at::Tensor sample = g.load("sample"), ehs = g.load("encoder_hidden_states");
    const at::Tensor t = g.load("timestep", at::kLong);
    const double e_proj = max_abs_diff(m->time_proj(t, 2), g.load("time_proj"));
    const double e_temb = max_abs_diff(m->time_embed(t, 2), g.load("time_embedding"));
    const double e_out = max_abs_diff(m->forward(sample, t, ehs), g.load("out"));
    const double e_scalar =
        max_abs_diff(m->forward(sample, g.load("timestep_scalar", at::kLong), ehs), g.load("out_scalar_t"));
    for (double e : {e_proj, e_temb, e_out, e_scalar}) EXPECT_LE(e, 1e-4);

    // The call the SDS loop makes on the CPU: batch 2, 8×8 latents. Timed on one thread: the tiny model is
    // bound by per-op overhead, and on a shared machine multi-threaded timings of it swing by 100×.
    nd::set_threads(1);
    m->forward(sample, t, ehs);
    const int reps = 5;
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < reps; ++i) m->forward(sample, t, ehs);
    const double ms =
        std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() / reps;
    nd::set_threads(0);
    std::cout << "  " << sd << " UNet max abs error: time_proj " << e_proj << ", time_embedding " << e_temb
              << ", out " << e_out << ", out_scalar_t " << e_scalar << "; forward (B=2, 8x8, 1 thread) " << ms
              << " ms\n";
  }
}

TEST(GoldenUNet, PrefixedTensorMapMatchesFolder) {
  REQUIRE_GOLDEN();
  nd::set_threads(0);
  const std::string dir = kGolden + "/sd2-tiny/unet";
  std::map<std::string, at::Tensor> prefixed;
  for (auto& [name, t] : nd::load_safetensors(dir + "/diffusion_pytorch_model.safetensors"))
    prefixed["unet." + name] = t;
  nd::UNet2DConditionModel m = nd::load_unet_from(
      prefixed, "unet.", nd::UNet2DConditionConfig::from_file(dir + "/config.json"), "prefixed");
  const nd::SafetensorsFile g = nd::SafetensorsFile::open(kGolden + "/sd2-tiny/golden/unet.safetensors");
  at::NoGradGuard no_grad;
  EXPECT_LE(max_abs_diff(
                m->forward(g.load("sample"), g.load("timestep", at::kLong), g.load("encoder_hidden_states")),
                g.load("out")),
            1e-4);
}

}  // namespace
