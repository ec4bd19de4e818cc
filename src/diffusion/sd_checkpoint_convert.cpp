// The original-layout ↔ diffusers name table (the same mapping as diffusers v0.25.1's
// convert_original_stable_diffusion_to_diffusers / convert_diffusers_to_original_stable_diffusion, generated
// from the layout instead of hard-coding SD's four levels), and config inference from the weights.
#include "diffusion/sd_checkpoint_convert.h"

#include <algorithm>
#include <cstdlib>
#include <set>

#include "core/error.h"

namespace nd {

namespace {

using json = nlohmann::json;
using Kind = LdmNameTable::Kind;

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.size() >= prefix.size() && s.compare(0, prefix.size(), prefix) == 0;
}

// Suffix renames inside a matched prefix: {original, diffusers}.
using SubTable = std::vector<std::pair<std::string, std::string>>;
const SubTable kUNetResnet = {{"in_layers.0.", "norm1."},          {"in_layers.2.", "conv1."},
                              {"out_layers.0.", "norm2."},         {"out_layers.3.", "conv2."},
                              {"emb_layers.1.", "time_emb_proj."}, {"skip_connection.", "conv_shortcut."}};
const SubTable kVAEResnet = {{"norm1.", "norm1."},
                             {"conv1.", "conv1."},
                             {"norm2.", "norm2."},
                             {"conv2.", "conv2."},
                             {"nin_shortcut.", "conv_shortcut."}};
const SubTable kVAEAttention = {
    {"norm.", "group_norm."}, {"q.", "to_q."}, {"k.", "to_k."}, {"v.", "to_v."}, {"proj_out.", "to_out.0."}};
const SubTable kOpenCLIPBlock = {{"ln_1.", "layer_norm1."},
                                 {"ln_2.", "layer_norm2."},
                                 {"mlp.c_fc.", "mlp.fc1."},
                                 {"mlp.c_proj.", "mlp.fc2."},
                                 {"attn.out_proj.", "self_attn.out_proj."}};

const SubTable* sub_table(Kind kind) {
  switch (kind) {
    case Kind::kUNetResnet:
      return &kUNetResnet;
    case Kind::kVAEResnet:
      return &kVAEResnet;
    case Kind::kVAEAttention:
      return &kVAEAttention;
    case Kind::kOpenCLIPBlock:
      return &kOpenCLIPBlock;
    default:
      return nullptr;
  }
}

bool rule_matches(const std::string& pattern, const std::string& name) {
  return pattern.back() == '.' ? starts_with(name, pattern) : name == pattern;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string idx(const std::string& a, int i, const std::string& b = "") { return a + std::to_string(i) + b; }

// The integer after `prefix` in `name` ("input_blocks.12.0.x" → 12), or -1.
int index_after(const std::string& name, const std::string& prefix) {
  if (!starts_with(name, prefix)) return -1;
  size_t p = prefix.size(), e = p;
  while (e < name.size() && name[e] >= '0' && name[e] <= '9') ++e;
  if (e == p || e >= name.size() || name[e] != '.') return -1;
  return std::atoi(name.substr(p, e - p).c_str());
}

}  // namespace

const char* sd_version_name(SdVersion v) { return v == SdVersion::kSD1 ? "SD1" : "SD2"; }

std::optional<SdVersion> detect_original_sd_version(const std::vector<std::string>& names,
                                                    const std::string& source) {
  bool unet = false, clip = false, open_clip = false, sdxl = false;
  for (const std::string& n : names) {
    unet |= starts_with(n, std::string(kLdmUNetPrefix) + "input_blocks.");
    clip |= starts_with(n, "cond_stage_model.transformer.");
    open_clip |= starts_with(n, "cond_stage_model.model.");
    sdxl |= starts_with(n, "conditioner.embedders.");
  }
  if (sdxl)
    throw InputError(source +
                     ": an SDXL checkpoint (conditioner.embedders.*): only SD 1.x and 2.x are supported");
  if (!unet) return std::nullopt;
  if (clip) return SdVersion::kSD1;
  if (open_clip) return SdVersion::kSD2;
  throw InputError(source +
                   ": an original-layout Stable Diffusion UNet without a known text encoder (expected "
                   "cond_stage_model.transformer.* for SD 1.x or cond_stage_model.model.* for SD 2.x)");
}

// ------------------------------------------------------------------------------------------------- table

void LdmNameTable::add(std::string original, std::string diffusers, Kind kind) {
  rules_.push_back({std::move(original), std::move(diffusers), kind});
}

void LdmNameTable::finish() {
  std::stable_sort(rules_.begin(), rules_.end(),
                   [](const Rule& a, const Rule& b) { return a.original.size() > b.original.size(); });
}

LdmNameTable LdmNameTable::unet(const OriginalUNetLayout& layout) {
  LdmNameTable t;
  t.add("time_embed.0.", "time_embedding.linear_1.");
  t.add("time_embed.2.", "time_embedding.linear_2.");
  t.add("input_blocks.0.0.", "conv_in.");
  t.add("out.0.", "conv_norm_out.");
  t.add("out.2.", "conv_out.");
  const int n = static_cast<int>(layout.levels.size());
  int k = 1;  // input_blocks.0 is conv_in
  for (int i = 0; i < n; ++i) {
    const auto& level = layout.levels[i];
    for (int j = 0; j < level.layers; ++j, ++k) {
      t.add(idx("input_blocks.", k, ".0."), idx("down_blocks.", i, idx(".resnets.", j, ".")),
            Kind::kUNetResnet);
      if (level.transformer_depth > 0)
        t.add(idx("input_blocks.", k, ".1."), idx("down_blocks.", i, idx(".attentions.", j, ".")));
    }
    if (i + 1 < n)
      t.add(idx("input_blocks.", k++, ".0.op."), idx("down_blocks.", i, ".downsamplers.0.conv."));
  }
  t.add("middle_block.0.", "mid_block.resnets.0.", Kind::kUNetResnet);
  t.add("middle_block.1.", "mid_block.attentions.0.");
  t.add("middle_block.2.", "mid_block.resnets.1.", Kind::kUNetResnet);
  k = 0;
  for (int u = 0; u < n;
       ++u) {  // up block u works at level n-1-u and has one resnet more than its down block
    const auto& level = layout.levels[n - 1 - u];
    const bool attention = level.transformer_depth > 0;
    for (int j = 0; j <= level.layers; ++j, ++k) {
      t.add(idx("output_blocks.", k, ".0."), idx("up_blocks.", u, idx(".resnets.", j, ".")),
            Kind::kUNetResnet);
      if (attention)
        t.add(idx("output_blocks.", k, ".1."), idx("up_blocks.", u, idx(".attentions.", j, ".")));
      if (j == level.layers && u + 1 < n)
        t.add(idx("output_blocks.", k, attention ? ".2." : ".1."), idx("up_blocks.", u, ".upsamplers.0."));
    }
  }
  t.finish();
  return t;
}

LdmNameTable LdmNameTable::vae(int levels, int max_layers) {
  LdmNameTable t;
  for (const char* s : {"encoder.", "decoder."}) {
    const std::string side = s;
    for (const char* plain : {"conv_in.", "conv_out."}) t.add(side + plain, side + plain);
    t.add(side + "norm_out.", side + "conv_norm_out.");
    t.add(side + "mid.block_1.", side + "mid_block.resnets.0.", Kind::kVAEResnet);
    t.add(side + "mid.block_2.", side + "mid_block.resnets.1.", Kind::kVAEResnet);
    t.add(side + "mid.attn_1.", side + "mid_block.attentions.0.", Kind::kVAEAttention);
  }
  t.add("quant_conv.", "quant_conv.");
  t.add("post_quant_conv.", "post_quant_conv.");
  t.add("loss.", "", Kind::kIgnore);  // training-only (LPIPS/discriminator) in some full checkpoints
  for (int i = 0; i < levels; ++i) {
    const int up = levels - 1 - i;  // diffusers numbers the decoder's levels from the deepest
    for (int j = 0; j < max_layers; ++j) {
      t.add(idx("encoder.down.", i, idx(".block.", j, ".")),
            idx("encoder.down_blocks.", i, idx(".resnets.", j, ".")), Kind::kVAEResnet);
      t.add(idx("decoder.up.", up, idx(".block.", j, ".")),
            idx("decoder.up_blocks.", i, idx(".resnets.", j, ".")), Kind::kVAEResnet);
    }
    t.add(idx("encoder.down.", i, ".downsample."), idx("encoder.down_blocks.", i, ".downsamplers.0."));
    t.add(idx("decoder.up.", up, ".upsample."), idx("decoder.up_blocks.", i, ".upsamplers.0."));
  }
  t.finish();
  return t;
}

LdmNameTable LdmNameTable::clip_text(bool text_model_prefix) {
  LdmNameTable t;
  const std::string p = text_model_prefix ? "transformer.text_model." : "transformer.";
  t.add(p + "embeddings.position_ids", "", Kind::kIgnore);  // a buffer, not a parameter
  t.add(p, "text_model.");
  t.finish();
  return t;
}

LdmNameTable LdmNameTable::open_clip_text(int blocks) {
  LdmNameTable t;
  t.add("model.token_embedding.weight", "text_model.embeddings.token_embedding.weight");
  t.add("model.positional_embedding", "text_model.embeddings.position_embedding.weight");
  t.add("model.ln_final.", "text_model.final_layer_norm.");
  for (const char* unused : {"model.text_projection", "model.logit_scale", "model.attn_mask"})
    t.add(unused, "", Kind::kIgnore);
  for (int i = 0; i + 1 < blocks; ++i)
    t.add(idx("model.transformer.resblocks.", i, "."), idx("text_model.encoder.layers.", i, "."),
          Kind::kOpenCLIPBlock);
  // SD 2 conditions on the penultimate block followed by ln_final: the last block never runs.
  if (blocks > 0) t.add(idx("model.transformer.resblocks.", blocks - 1, "."), "", Kind::kIgnore);
  t.finish();
  return t;
}

std::optional<std::vector<std::pair<std::string, TensorSlot>>> LdmNameTable::to_diffusers(
    const std::string& original) const {
  using Result = std::vector<std::pair<std::string, TensorSlot>>;
  for (const Rule& r : rules_) {
    if (!rule_matches(r.original, original)) continue;
    if (r.kind == Kind::kIgnore) return Result{};
    const std::string rest = original.substr(r.original.size());
    const SubTable* sub = sub_table(r.kind);
    if (!sub) return Result{{r.diffusers + rest, {original}}};
    if (r.kind == Kind::kOpenCLIPBlock && (rest == "attn.in_proj_weight" || rest == "attn.in_proj_bias")) {
      const std::string what = rest == "attn.in_proj_weight" ? "weight" : "bias";
      Result out;
      const char* qkv[] = {"q", "k", "v"};
      for (int c = 0; c < 3; ++c)
        out.push_back({r.diffusers + "self_attn." + qkv[c] + "_proj." + what, {original, c, false}});
      return out;
    }
    for (const auto& [from, to] : *sub) {
      if (!starts_with(rest, from)) continue;
      TensorSlot slot{original};
      // The VAE's attention projections are 1×1 convs in the original, Linear layers in diffusers.
      slot.squeeze = r.kind == Kind::kVAEAttention && from != "norm." && rest == from + "weight";
      return Result{{r.diffusers + to + rest.substr(from.size()), slot}};
    }
    return std::nullopt;  // a block the table knows, with a part it does not
  }
  return std::nullopt;
}

std::string LdmNameTable::to_original(const std::string& diffusers) const {
  const Rule* best = nullptr;
  for (const Rule& r : rules_)
    if (r.kind != Kind::kIgnore && rule_matches(r.diffusers, diffusers) &&
        (!best || r.diffusers.size() > best->diffusers.size()))
      best = &r;
  if (!best) return "";
  const std::string rest = diffusers.substr(best->diffusers.size());
  const SubTable* sub = sub_table(best->kind);
  if (!sub) return best->original + rest;
  if (best->kind == Kind::kOpenCLIPBlock)
    for (const char* p : {"q", "k", "v"})
      for (const char* what : {"weight", "bias"})
        if (rest == std::string("self_attn.") + p + "_proj." + what)
          return best->original + "attn.in_proj_" + what;
  for (const auto& [from, to] : *sub)
    if (starts_with(rest, to)) return best->original + from + rest.substr(to.size());
  return "";
}

// ----------------------------------------------------------------------------------------- UNet layout

OriginalUNetLayout scan_original_unet(const TensorSource& src) {
  const std::string P = kLdmUNetPrefix;
  std::set<std::string> names;
  int max_input = -1;
  for (const std::string& n : src.names) {
    if (!starts_with(n, P)) continue;
    const std::string rel = n.substr(P.size());
    names.insert(rel);
    max_input = std::max(max_input, index_after(rel, "input_blocks."));
  }
  auto has = [&](const std::string& rel) { return names.count(rel) > 0; };
  auto shape = [&](const std::string& rel) { return src.shape(P + rel); };
  if (!has("input_blocks.0.0.weight"))
    throw InputError(src.name + ": missing tensor '" + P + "input_blocks.0.0.weight' (the UNet's conv_in)");
  // BasicTransformerBlocks under a SpatialTransformer prefix.
  auto depth_of = [&](const std::string& prefix) {
    if (!has(prefix + "proj_in.weight")) return 0;
    int d = 0;
    for (const std::string& n : names) d = std::max(d, index_after(n, prefix + "transformer_blocks.") + 1);
    return d;
  };

  OriginalUNetLayout layout;
  layout.levels.emplace_back();
  for (int k = 1; k <= max_input; ++k) {
    const std::string b = idx("input_blocks.", k, ".");
    if (has(b + "0.op.weight")) {
      if (layout.levels.back().layers == 0)
        throw InputError(src.name + ": '" + P + b + "0.op' downsamples a level without resnets");
      layout.levels.emplace_back();
      continue;
    }
    if (!has(b + "0.in_layers.2.weight"))
      throw InputError(src.name + ": '" + P + b +
                       "*' is neither a UNet resnet (in_layers.2.weight) nor a "
                       "downsampler (op.weight)");
    auto& level = layout.levels.back();
    const int channels = static_cast<int>(shape(b + "0.in_layers.2.weight").at(0));
    const int depth = depth_of(b + "1.");
    if (level.layers > 0 && (channels != level.channels || depth != level.transformer_depth))
      throw InputError(src.name + ": '" + P + b + "0' differs from the other resnets of its level (" +
                       std::to_string(channels) + " channels, " + std::to_string(depth) +
                       " transformer blocks)");
    level.channels = channels;
    level.transformer_depth = depth;
    ++level.layers;
  }
  if (layout.levels.back().layers == 0)
    throw InputError(src.name + ": the UNet's last input block is a downsampler without resnets after it");
  layout.has_mid_block = has("middle_block.0.in_layers.2.weight");
  layout.mid_attention = has("middle_block.1.proj_in.weight");
  return layout;
}

// ----------------------------------------------------------------------------------------------- configs

namespace {

// `hidden` / 64 heads (every released SD text encoder and SD 2 UNet level), or an InputError naming what to
// supply.
int heads_of_size_64(int width, const std::string& source, const std::string& what) {
  if (width < 64 || width % 64 != 0)
    throw InputError(source + ": cannot infer the " + what + " attention heads: width " +
                     std::to_string(width) +
                     " is not a multiple of 64 (the head size of every released SD model) and the file does "
                     "not store them; give a folder with the diffusers config.json files (--config DIR)");
  return width / 64;
}

int count_indices(const TensorSource& src, const std::string& prefix) {
  int n = 0;
  for (const std::string& name : src.names) n = std::max(n, index_after(name, prefix) + 1);
  return n;
}

std::vector<int64_t> shape_of(const TensorSource& src, const std::string& name) {
  if (std::find(src.names.begin(), src.names.end(), name) == src.names.end())
    throw InputError(src.name + ": missing tensor '" + name + "'");
  return src.shape(name);
}

json scheduler_json(SdVersion version, const std::string& prediction_type) {
  // As the released pipelines ship them: SD 1.5's PNDM, SD 2.1's DDIM.
  json j = {{"_class_name", version == SdVersion::kSD1 ? "PNDMScheduler" : "DDIMScheduler"},
            {"beta_start", 0.00085},
            {"beta_end", 0.012},
            {"beta_schedule", "scaled_linear"},
            {"num_train_timesteps", 1000},
            {"clip_sample", false},
            {"set_alpha_to_one", false},
            {"skip_prk_steps", true},
            {"steps_offset", 1},
            {"prediction_type", prediction_type}};
  return j;
}

}  // namespace

OriginalConfigs infer_original_configs(const TensorSource& src, SdVersion version,
                                       const OriginalLayoutHints& hints) {
  const bool sd2 = version == SdVersion::kSD2;
  std::string prediction = hints.prediction_type;
  if (prediction.empty()) prediction = sd2 ? "v_prediction" : "epsilon";
  const bool v_model = prediction == "v_prediction";
  OriginalConfigs c;

  // UNet.
  const std::string U = kLdmUNetPrefix;
  const OriginalUNetLayout layout = scan_original_unet(src);
  const auto conv_in = shape_of(src, U + "input_blocks.0.0.weight");
  const auto conv_out = shape_of(src, U + "out.2.weight");
  const auto temb = shape_of(src, U + "time_embed.0.weight");
  const int n = static_cast<int>(layout.levels.size());
  if (!layout.has_mid_block || !layout.mid_attention)
    throw InputError(src.name + ": the UNet has no middle_block with attention (UNetMidBlock2DCrossAttn)");
  json down = json::array(), up = json::array(), channels = json::array(), layers = json::array(),
       heads = json::array(), depth = json::array();
  int cross_dim = 0;
  bool linear_projection = false;
  for (const std::string& name : src.names) {
    if (!starts_with(name, U)) continue;
    if (!cross_dim && ends_with(name, ".attn2.to_k.weight"))
      cross_dim = static_cast<int>(src.shape(name).at(1));
  }
  for (const std::string& name : src.names)
    if (starts_with(name, U) && ends_with(name, ".proj_in.weight")) {
      linear_projection = src.shape(name).size() == 2;
      break;
    }
  if (!cross_dim) throw InputError(src.name + ": no UNet cross-attention (attn2.to_k.weight) found");
  for (int i = 0; i < n; ++i) {
    const auto& level = layout.levels[i];
    down.push_back(level.transformer_depth ? "CrossAttnDownBlock2D" : "DownBlock2D");
    up.insert(up.begin(), level.transformer_depth ? "CrossAttnUpBlock2D" : "UpBlock2D");
    channels.push_back(level.channels);
    layers.push_back(level.layers);
    int h = 8;  // SD 1.x: num_heads 8 at every level
    if (static_cast<size_t>(i) < hints.unet_heads.size())
      h = hints.unet_heads[i];
    else if (sd2)  // SD 2.x: num_head_channels 64
      h = heads_of_size_64(level.channels, src.name, "UNet level " + std::to_string(i));
    heads.push_back(h);
    // The mid block uses the last level's entry.
    int d = level.transformer_depth;
    if (i + 1 == n && d == 0) d = std::max(1, count_indices(src, U + "middle_block.1.transformer_blocks."));
    depth.push_back(std::max(d, 1));
  }
  c.unet = {{"_class_name", "UNet2DConditionModel"},
            {"in_channels", conv_in.at(1)},
            {"out_channels", conv_out.at(0)},
            {"conv_in_kernel", conv_in.at(2)},
            {"conv_out_kernel", conv_out.at(2)},
            {"sample_size", sd2 && v_model ? 96 : 64},
            {"down_block_types", down},
            {"mid_block_type", "UNetMidBlock2DCrossAttn"},
            {"up_block_types", up},
            {"block_out_channels", channels},
            {"layers_per_block", layers},
            {"attention_head_dim", heads},
            {"cross_attention_dim", cross_dim},
            {"transformer_layers_per_block", depth},
            {"use_linear_projection", linear_projection},
            {"upcast_attention", sd2},
            {"norm_num_groups", 32},
            {"norm_eps", 1e-5},
            {"flip_sin_to_cos", true},
            {"freq_shift", 0},
            {"act_fn", "silu"}};
  if (temb.at(0) != 4 * conv_in.at(0)) c.unet["time_embedding_dim"] = temb.at(0);

  // VAE.
  const std::string V = kLdmVAEPrefix;
  const int levels = count_indices(src, V + "encoder.down.");
  if (levels == 0) throw InputError(src.name + ": no VAE encoder blocks (" + V + "encoder.down.N.*)");
  json vae_channels = json::array(), down_types = json::array(), up_types = json::array();
  for (int i = 0; i < levels; ++i) {
    vae_channels.push_back(shape_of(src, V + idx("encoder.down.", i, ".block.0.conv1.weight")).at(0));
    down_types.push_back("DownEncoderBlock2D");
    up_types.push_back("UpDecoderBlock2D");
  }
  auto has = [&](const std::string& name) {
    return std::find(src.names.begin(), src.names.end(), name) != src.names.end();
  };
  c.vae = {{"_class_name", "AutoencoderKL"},
           {"in_channels", shape_of(src, V + "encoder.conv_in.weight").at(1)},
           {"out_channels", shape_of(src, V + "decoder.conv_out.weight").at(0)},
           {"latent_channels", shape_of(src, V + "decoder.conv_in.weight").at(1)},
           {"sample_size", sd2 && v_model ? 768 : 512},
           {"block_out_channels", vae_channels},
           {"down_block_types", down_types},
           {"up_block_types", up_types},
           {"layers_per_block", count_indices(src, V + "encoder.down.0.block.")},
           {"norm_num_groups", 32},
           {"scaling_factor", 0.18215},
           {"use_quant_conv", has(V + "quant_conv.weight")},
           {"use_post_quant_conv", has(V + "post_quant_conv.weight")},
           {"act_fn", "silu"}};

  // Text encoder.
  const std::string T = kLdmTextPrefix;
  if (!sd2) {
    std::string p = T + "transformer.text_model.";
    if (!has(p + "embeddings.token_embedding.weight")) p = T + "transformer.";
    const auto tok = shape_of(src, p + "embeddings.token_embedding.weight");
    const int hidden = static_cast<int>(tok.at(1));
    c.text_encoder = {
        {"architectures", json::array({"CLIPTextModel"})},
        {"vocab_size", tok.at(0)},
        {"hidden_size", hidden},
        {"intermediate_size", shape_of(src, p + "encoder.layers.0.mlp.fc1.weight").at(0)},
        {"num_hidden_layers", count_indices(src, p + "encoder.layers.")},
        {"num_attention_heads",
         hints.text_heads ? hints.text_heads : heads_of_size_64(hidden, src.name, "text encoder")},
        {"max_position_embeddings", shape_of(src, p + "embeddings.position_embedding.weight").at(0)},
        {"hidden_act", "quick_gelu"},
        {"layer_norm_eps", 1e-5}};
  } else {
    const std::string p = T + "model.";
    const auto tok = shape_of(src, p + "token_embedding.weight");
    const int hidden = static_cast<int>(tok.at(1));
    const int blocks = count_indices(src, p + "transformer.resblocks.");
    if (blocks < 2) throw InputError(src.name + ": the OpenCLIP text encoder needs at least 2 resblocks");
    c.text_encoder = {
        {"architectures", json::array({"CLIPTextModel"})},
        {"vocab_size", tok.at(0)},
        {"hidden_size", hidden},
        {"intermediate_size", shape_of(src, p + "transformer.resblocks.0.mlp.c_fc.weight").at(0)},
        {"num_hidden_layers", blocks - 1},  // the penultimate block's output is what SD 2 uses
        {"num_attention_heads",
         hints.text_heads ? hints.text_heads : heads_of_size_64(hidden, src.name, "text encoder")},
        {"max_position_embeddings", shape_of(src, p + "positional_embedding").at(0)},
        {"hidden_act", "gelu"},
        {"layer_norm_eps", 1e-5}};
  }
  c.scheduler = scheduler_json(version, prediction);
  return c;
}

// ------------------------------------------------------------------------------------------- conversion

OriginalConversion convert_original_names(const TensorSource& src, SdVersion version) {
  OriginalConversion conv;
  conv.unet_table = LdmNameTable::unet(scan_original_unet(src));
  const std::string V = kLdmVAEPrefix, T = kLdmTextPrefix;
  conv.vae_table = LdmNameTable::vae(count_indices(src, V + "encoder.down."),
                                     std::max(count_indices(src, V + "decoder.up.0.block."),
                                              count_indices(src, V + "encoder.down.0.block.")));
  if (version == SdVersion::kSD1) {
    bool text_model = false;
    for (const std::string& n : src.names) text_model |= starts_with(n, T + "transformer.text_model.");
    conv.text_table = LdmNameTable::clip_text(text_model);
  } else {
    conv.text_table = LdmNameTable::open_clip_text(count_indices(src, T + "model.transformer.resblocks."));
  }
  struct Part {
    std::string prefix;
    const LdmNameTable* table;
    ConvertedNames* out;
    const char* what;
  };
  const Part parts[] = {{kLdmUNetPrefix, &conv.unet_table, &conv.unet, "UNet"},
                        {V, &conv.vae_table, &conv.vae, "VAE"},
                        {T, &conv.text_table, &conv.text_encoder, "text encoder"}};
  for (const std::string& name : src.names) {
    const Part* part = nullptr;
    for (const Part& p : parts)
      if (starts_with(name, p.prefix)) part = &p;
    if (!part) {
      conv.ignored.push_back(name);
      continue;
    }
    auto mapped = part->table->to_diffusers(name.substr(part->prefix.size()));
    if (!mapped)
      throw InputError(src.name + ": tensor '" + name + "' is not part of the original " +
                       sd_version_name(version) + " " + part->what + " layout");
    if (mapped->empty()) conv.ignored.push_back(name);
    for (auto& [diffusers, slot] : *mapped) {
      slot.original = name;
      if (!part->out->emplace(diffusers, slot).second)
        throw InputError(src.name + ": tensors '" + part->out->at(diffusers).original + "' and '" + name +
                         "' both map to " + part->what + " parameter '" + diffusers + "'");
    }
  }
  return conv;
}

}  // namespace nd
