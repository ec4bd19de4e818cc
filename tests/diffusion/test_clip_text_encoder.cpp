// CLIP text encoder: a float64 reference written with plain ops, the causal structure, strict loading, and
// the golden outputs of ../shared/golden/sd{1,2}-tiny (transformers' CLIPTextModel, atol 1e-4).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <limits>
#include <map>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/threads.h"
#include "diffusion/clip_text_encoder.h"
#include "io/safetensors.h"

namespace {

namespace fs = std::filesystem;

const std::string kGolden = NERFDREAM_SOURCE_DIR "/../shared/golden";

#define REQUIRE_GOLDEN()                                                 \
  if (!fs::exists(kGolden + "/sd1-tiny/text_encoder/model.safetensors")) \
  GTEST_SKIP() << kGolden << " not found"

template <class F>
std::string input_error_of(F&& f) {
  try {
    f();
  } catch (const nd::InputError& e) {
    return e.what();
  }
  return "<no InputError>";
}

double max_abs_diff(const at::Tensor& a, const at::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

nd::CLIPTextConfig tiny_config(const std::string& activation) {
  nd::CLIPTextConfig c;
  c.vocab_size = 50;
  c.hidden_size = 12;
  c.num_layers = 2;
  c.num_heads = 3;  // head dim 4
  c.intermediate_size = 10;
  c.max_positions = 9;
  c.activation = activation;
  return c;
}

// Random weights of the golden files' kind (LayerNorm affine parameters away from 1/0, so swaps show).
void randomize(nd::CLIPTextModel& m, uint64_t seed) {
  at::manual_seed(seed);
  at::NoGradGuard no_grad;
  for (auto& p : m->named_parameters()) {
    const bool norm = p.key().find("layer_norm") != std::string::npos;
    if (norm && p.key().find("weight") != std::string::npos)
      p.value().copy_(1 + 0.1 * at::randn(p.value().sizes()));
    else
      p.value().copy_((norm ? 0.1 : 0.5) * at::randn(p.value().sizes()));
  }
}

// The model's maths in float64 with plain per-head loops: [num_layers + 2] tensors (hidden states, then the
// last hidden state).
std::vector<at::Tensor> reference_forward(nd::CLIPTextModel& m, const at::Tensor& ids) {
  const nd::CLIPTextConfig& c = m->config();
  std::map<std::string, at::Tensor> P;
  for (const auto& p : m->named_parameters()) P[p.key()] = p.value().detach().to(at::kDouble);
  const int64_t B = ids.size(0), L = ids.size(1), H = c.hidden_size, D = c.head_dim();
  auto ln = [&](const at::Tensor& x, const std::string& name) {
    const at::Tensor mean = x.mean(-1, true);
    const at::Tensor var = (x - mean).pow(2).mean(-1, true);
    return (x - mean) / (var + c.layer_norm_eps).sqrt() * P[name + ".weight"] + P[name + ".bias"];
  };
  auto linear = [&](const at::Tensor& x, const std::string& name) {
    return at::matmul(x, P[name + ".weight"].t()) + P[name + ".bias"];
  };
  std::vector<at::Tensor> out;
  at::Tensor h =
      P["text_model.embeddings.token_embedding.weight"].index_select(0, ids.flatten()).view({B, L, H}) +
      P["text_model.embeddings.position_embedding.weight"].slice(0, 0, L);
  out.push_back(h);
  for (int i = 0; i < c.num_layers; ++i) {
    const std::string pre = "text_model.encoder.layers." + std::to_string(i) + ".";
    const at::Tensor x = ln(h, pre + "layer_norm1");
    const at::Tensor q = linear(x, pre + "self_attn.q_proj"), k = linear(x, pre + "self_attn.k_proj"),
                     v = linear(x, pre + "self_attn.v_proj");
    at::Tensor attn = at::zeros({B, L, H}, at::kDouble);
    for (int64_t hd = 0; hd < c.num_heads; ++hd) {
      const auto cols = at::indexing::Slice(hd * D, (hd + 1) * D);
      using at::indexing::Slice;
      const at::Tensor qh = q.index({Slice(), Slice(), cols}), kh = k.index({Slice(), Slice(), cols}),
                       vh = v.index({Slice(), Slice(), cols});
      at::Tensor s = at::matmul(qh, kh.transpose(1, 2)) / std::sqrt(static_cast<double>(D));
      s = s.masked_fill(at::ones({L, L}, at::kBool).triu(1), -std::numeric_limits<double>::infinity());
      attn.index_put_({Slice(), Slice(), cols}, at::matmul(at::softmax(s, -1), vh));
    }
    h = h + linear(attn, pre + "self_attn.out_proj");
    at::Tensor f = linear(ln(h, pre + "layer_norm2"), pre + "mlp.fc1");
    f = c.activation == "quick_gelu" ? f * at::sigmoid(1.702 * f)
                                     : 0.5 * f * (1 + at::erf(f / std::sqrt(2.0)));
    h = h + linear(f, pre + "mlp.fc2");
    out.push_back(h);
  }
  out.push_back(ln(h, "text_model.final_layer_norm"));
  return out;
}

TEST(CLIPTextEncoder, ParameterNamesAreCheckpointKeys) {
  nd::CLIPTextModel m(tiny_config("gelu"));
  std::vector<std::string> keys;
  for (const auto& p : m->named_parameters()) keys.push_back(p.key());
  // 2 embeddings + 2 layers × 16 + final LayerNorm 2.
  ASSERT_EQ(keys.size(), 36u);
  for (const char* k :
       {"text_model.embeddings.token_embedding.weight", "text_model.embeddings.position_embedding.weight",
        "text_model.encoder.layers.0.self_attn.q_proj.weight",
        "text_model.encoder.layers.1.self_attn.out_proj.bias",
        "text_model.encoder.layers.1.layer_norm1.weight", "text_model.encoder.layers.0.layer_norm2.bias",
        "text_model.encoder.layers.0.mlp.fc1.weight", "text_model.encoder.layers.1.mlp.fc2.bias",
        "text_model.final_layer_norm.weight", "text_model.final_layer_norm.bias"})
    EXPECT_NE(std::find(keys.begin(), keys.end(), k), keys.end()) << k;
  EXPECT_EQ(m->named_parameters()["text_model.encoder.layers.0.mlp.fc1.weight"].sizes(),
            (at::IntArrayRef{10, 12}));
}

TEST(CLIPTextEncoder, MatchesFloat64ReferenceAndIsCausal) {
  nd::set_threads(0);
  for (const std::string act : {"quick_gelu", "gelu"}) {
    SCOPED_TRACE(act);
    nd::CLIPTextModel m(tiny_config(act));
    randomize(m, 7);
    const at::Tensor ids = at::randint(0, 50, {3, 9}, at::kLong);
    at::NoGradGuard no_grad;
    const nd::CLIPTextOutput out = m->forward(ids);
    const std::vector<at::Tensor> ref = reference_forward(m, ids);
    ASSERT_EQ(out.hidden_states.size(), 3u);
    for (size_t i = 0; i < 3; ++i)
      EXPECT_LT(max_abs_diff(out.hidden_states[i], ref[i]), 2e-5) << "hidden " << i;
    EXPECT_LT(max_abs_diff(out.last_hidden_state, ref[3]), 2e-5);
    EXPECT_EQ(out.last_hidden_state.sizes(), (at::IntArrayRef{3, 9, 12}));
    EXPECT_EQ(out.last_hidden_state.scalar_type(), at::kFloat);
    // clip_skip: 0 = last_hidden_state, 1 = final_layer_norm(hidden_states[1]), 3 is too many for 2 layers.
    EXPECT_TRUE(at::equal(m->clip_skip_hidden_state(out, 0), out.last_hidden_state));
    EXPECT_TRUE(at::allclose(m->penultimate_hidden_state_final_ln(out),
                             m->text_model->final_layer_norm(out.hidden_states[1])));
    EXPECT_THROW(m->clip_skip_hidden_state(out, 3), nd::InputError);
    // pooled: the row at the first position of the largest id.
    const at::Tensor eos = ids.argmax(1);
    for (int64_t b = 0; b < 3; ++b)
      EXPECT_TRUE(at::equal(out.pooled[b], out.last_hidden_state[b][eos[b].item<int64_t>()]));

    // Causal: changing token 5 leaves positions 0..4 untouched and changes 5..8.
    at::Tensor ids2 = ids.clone();
    ids2.index_put_({0, 5}, (ids[0][5].item<int64_t>() + 1) % 50);
    const at::Tensor h2 = m->forward(ids2).last_hidden_state;
    EXPECT_TRUE(at::equal(h2[0].slice(0, 0, 5), out.last_hidden_state[0].slice(0, 0, 5)));
    EXPECT_GT(max_abs_diff(h2[0].slice(0, 5), out.last_hidden_state[0].slice(0, 5)), 1e-3);
    // Batched = one by one; a shorter sequence = the prefix of the longer (positions 0..L-1).
    const at::Tensor one = m->forward(ids.slice(0, 1, 2)).last_hidden_state;
    EXPECT_LT(max_abs_diff(one[0], out.last_hidden_state[1]), 1e-6);
    const at::Tensor shorter = m->forward(ids.slice(1, 0, 4)).last_hidden_state;
    EXPECT_LT(max_abs_diff(shorter, out.last_hidden_state.slice(1, 0, 4)), 1e-6);
  }
}

TEST(CLIPTextEncoder, ConfigFromJson) {
  const nlohmann::json sd1 = {{"hidden_size", 768},
                              {"num_hidden_layers", 12},
                              {"num_attention_heads", 12},
                              {"intermediate_size", 3072},
                              {"hidden_act", "quick_gelu"},
                              {"max_position_embeddings", 77},
                              {"vocab_size", 49408},
                              {"layer_norm_eps", 1e-5},
                              {"architectures", {"CLIPTextModel"}},
                              {"dropout", 0.0}};
  const nd::CLIPTextConfig c = nd::CLIPTextConfig::from_json(sd1, "te/config.json");
  EXPECT_EQ(c.hidden_size, 768);
  EXPECT_EQ(c.num_layers, 12);
  EXPECT_EQ(c.head_dim(), 64);
  EXPECT_EQ(c.activation, "quick_gelu");
  // Absent keys: transformers' defaults.
  const nd::CLIPTextConfig d = nd::CLIPTextConfig::from_json(nlohmann::json::object());
  EXPECT_EQ(d.hidden_size, 512);
  EXPECT_EQ(d.num_heads, 8);
  EXPECT_EQ(d.activation, "quick_gelu");

  nlohmann::json bad = sd1;
  bad["hidden_act"] = "relu";
  EXPECT_NE(input_error_of([&] {
              nd::CLIPTextConfig::from_json(bad, "te/config.json");
            }).find("te/config.json: hidden_act"),
            std::string::npos);
  bad = sd1;
  bad["num_attention_heads"] = 7;
  EXPECT_NE(input_error_of([&] { nd::CLIPTextConfig::from_json(bad, "x"); }).find("multiple"),
            std::string::npos);
  bad = sd1;
  bad["hidden_size"] = "768";
  EXPECT_NE(input_error_of([&] { nd::CLIPTextConfig::from_json(bad, "x"); }).find("x: hidden_size"),
            std::string::npos);
  EXPECT_NE(input_error_of([&] {
              nd::CLIPTextConfig::from_file("/nonexistent/config.json");
            }).find("/nonexistent/config.json"),
            std::string::npos);
}

TEST(CLIPTextEncoder, StrictLoadingNamesFileAndTensor) {
  nd::CLIPTextModel m(tiny_config("gelu"));
  randomize(m, 3);
  std::map<std::string, at::Tensor> good;
  for (const auto& p : m->named_parameters())
    good["cond_stage_model.transformer." + p.key()] = p.value().detach().clone();
  good["model.diffusion_model.out.2.weight"] = at::zeros({4});  // outside the prefix: ignored
  good["cond_stage_model.transformer.text_model.embeddings.position_ids"] =
      at::arange(9).unsqueeze(0);  // ignored
  const std::string prefix = "cond_stage_model.transformer.";
  nd::CLIPTextModel loaded =
      nd::load_clip_text_model_from(good, prefix, tiny_config("gelu"), "ckpt.safetensors");
  for (const auto& p : m->named_parameters())
    EXPECT_TRUE(at::equal(p.value(), loaded->named_parameters()[p.key()])) << p.key();

  auto missing = good;
  missing.erase(prefix + "text_model.encoder.layers.1.mlp.fc2.bias");
  EXPECT_EQ(input_error_of([&] {
              nd::load_clip_text_model_from(missing, prefix, tiny_config("gelu"), "ckpt.safetensors");
            }),
            "ckpt.safetensors: missing tensor "
            "'cond_stage_model.transformer.text_model.encoder.layers.1.mlp.fc2.bias' "
            "(CLIP text encoder)");
  auto reshaped = good;
  reshaped[prefix + "text_model.encoder.layers.0.mlp.fc1.weight"] = at::zeros({11, 12});
  const std::string shape_error = input_error_of(
      [&] { nd::load_clip_text_model_from(reshaped, prefix, tiny_config("gelu"), "ckpt.safetensors"); });
  EXPECT_NE(shape_error.find(
                "ckpt.safetensors: tensor 'cond_stage_model.transformer.text_model.encoder.layers.0.mlp.fc1"
                ".weight' has shape [11, 12]"),
            std::string::npos)
      << shape_error;
  EXPECT_NE(shape_error.find("needs [10, 12]"), std::string::npos);
  auto extra = good;
  extra[prefix + "text_model.encoder.layers.2.mlp.fc1.weight"] = at::zeros({10, 12});
  EXPECT_NE(
      input_error_of([&] {
        nd::load_clip_text_model_from(extra, prefix, tiny_config("gelu"), "ckpt.safetensors");
      }).find("unexpected tensor 'cond_stage_model.transformer.text_model.encoder.layers.2.mlp.fc1.weight'"),
      std::string::npos);
  auto ints = good;
  ints[prefix + "text_model.final_layer_norm.bias"] = at::zeros({12}, at::kLong);
  EXPECT_NE(input_error_of([&] {
              nd::load_clip_text_model_from(ints, prefix, tiny_config("gelu"), "ckpt.safetensors");
            }).find("expected a float type"),
            std::string::npos);
  // Half-precision weights are converted.
  auto half = good;
  for (auto& kv : half)
    if (kv.first.rfind(prefix + "text_model.encoder", 0) == 0) kv.second = kv.second.to(at::kHalf);
  EXPECT_NO_THROW(nd::load_clip_text_model_from(half, prefix, tiny_config("gelu"), "ckpt.safetensors"));
}

// ----------------------------------------------------------------------------------------------- golden

struct GoldenResult {
  double hidden[3], last, penultimate, pooled;
};

GoldenResult compare_with_golden(nd::CLIPTextModel& m, const std::string& golden_file) {
  const nd::SafetensorsFile g = nd::SafetensorsFile::open(golden_file);
  at::NoGradGuard no_grad;
  const nd::CLIPTextOutput out = m->forward(g.load("input_ids", at::kLong));
  GoldenResult r;
  EXPECT_EQ(out.hidden_states.size(), 3u);
  for (int i = 0; i < 3; ++i)
    r.hidden[i] = max_abs_diff(out.hidden_states[i], g.load("hidden_states." + std::to_string(i)));
  r.last = max_abs_diff(out.last_hidden_state, g.load("last_hidden_state"));
  r.penultimate =
      max_abs_diff(m->penultimate_hidden_state_final_ln(out), g.load("penultimate_hidden_state_final_ln"));
  r.pooled = max_abs_diff(out.pooled, g.load("pooler_output"));
  for (double e : {r.hidden[0], r.hidden[1], r.hidden[2], r.last, r.penultimate, r.pooled})
    EXPECT_LE(e, 1e-4);
  std::cout << "  max abs error vs " << golden_file.substr(golden_file.find("golden/") + 7)
            << ": hidden_states " << r.hidden[0] << " " << r.hidden[1] << " " << r.hidden[2]
            << ", last_hidden_state " << r.last << ", penultimate " << r.penultimate << ", pooled "
            << r.pooled << "\n";
  return r;
}

TEST(GoldenCLIPTextEncoder, SD1AndSD2Folders) {
  REQUIRE_GOLDEN();
  nd::set_threads(0);
  for (const std::string sd : {"sd1-tiny", "sd2-tiny"}) {
    SCOPED_TRACE(sd);
    nd::CLIPTextModel m = nd::load_clip_text_model(kGolden + "/" + sd + "/text_encoder");
    EXPECT_EQ(m->config().activation, sd == "sd1-tiny" ? "quick_gelu" : "gelu");
    EXPECT_EQ(m->config().hidden_size, 32);
    int64_t n = 0;
    for (const auto& p : m->parameters()) n += p.numel();
    EXPECT_EQ(n, 1597162);  // the README's parameter count
    compare_with_golden(m, kGolden + "/" + sd + "/golden/text_encoder.safetensors");
  }
}

TEST(GoldenCLIPTextEncoder, SD1SingleFileCheckpoint) {
  REQUIRE_GOLDEN();
  nd::set_threads(0);
  const std::string path = kGolden + "/sd1-tiny/original/sd1-tiny.safetensors";
  const nd::CLIPTextConfig config =
      nd::CLIPTextConfig::from_file(kGolden + "/sd1-tiny/text_encoder/config.json");
  // Lazily from the file (UNet/VAE tensors are outside the prefix and never read)...
  nd::CLIPTextModel lazy =
      nd::load_clip_text_model_from(nd::SafetensorsFile::open(path), "cond_stage_model.transformer.", config);
  compare_with_golden(lazy, kGolden + "/sd1-tiny/golden/text_encoder.safetensors");
  // ...and from a map in memory: the same weights as the diffusers folder.
  const auto tensors = nd::load_safetensors(path);
  nd::CLIPTextModel from_map =
      nd::load_clip_text_model_from(tensors, "cond_stage_model.transformer.", config, path);
  nd::CLIPTextModel folder = nd::load_clip_text_model(kGolden + "/sd1-tiny/text_encoder");
  for (const auto& p : folder->named_parameters()) {
    EXPECT_TRUE(at::equal(p.value(), from_map->named_parameters()[p.key()])) << p.key();
    EXPECT_TRUE(at::equal(p.value(), lazy->named_parameters()[p.key()])) << p.key();
  }
  // A wrong prefix finds nothing: the first parameter is reported missing, naming the file.
  EXPECT_NE(input_error_of([&] {
              nd::load_clip_text_model_from(nd::SafetensorsFile::open(path), "text_encoder.", config);
            }).find(path + ": missing tensor 'text_encoder.text_model.embeddings.token_embedding.weight'"),
            std::string::npos);
}

}  // namespace
