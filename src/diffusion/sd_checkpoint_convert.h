// Stable Diffusion single-file checkpoints in the original CompVis/Stability ("LDM") layout, and the ONE
// table that maps their tensor names to diffusers' names. Nothing else in nerfdream renames SD tensors.
//
//   model.diffusion_model.*  UNet     input_blocks.K.{0 resnet | 0.op downsample | 1 SpatialTransformer},
//                                     middle_block.{0,1,2}, output_blocks.K.{0,1,2}, time_embed.{0,2},
//                                     out.{0,2}
//   first_stage_model.*      VAE      encoder.down.I.block.J, decoder.up.I.block.J (reversed level order),
//                                     mid.{block_1, attn_1, block_2}, nin_shortcut, norm_out, quant_conv
//   cond_stage_model.*       text     SD 1.x: transformer.text_model.* (transformers' CLIPTextModel names)
//                                     SD 2.x: model.* (OpenCLIP ViT-H: resblocks.N with a fused attn.in_proj,
//                                             ln_final, positional_embedding; the last block is dropped
//                                             because SD 2 conditions on the penultimate block + ln_final)
// Tensors outside these prefixes (model_ema.*, betas, alphas_cumprod, ...) are ignored.
//
// The file does not carry everything a pipeline needs: the CLIP tokenizer's vocab.json/merges.txt, the
// attention head counts, the GroupNorm group count and the scheduler (prediction type). The original repos
// kept those in YAML configs; infer_original_configs() uses the values of every released SD 1.x/2.x
// (SD 1: UNet 8 heads per level, SD 2: UNet head size 64; text encoders head size 64; 32 groups; SD 1
// epsilon / SD 2 v-prediction) unless hints say otherwise, and names what is missing when they do not fit.
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "diffusion/diffusers_config.h"

namespace nd {

enum class SdVersion { kSD1, kSD2 };
const char* sd_version_name(SdVersion v);  // "SD1" | "SD2"

constexpr const char* kLdmUNetPrefix = "model.diffusion_model.";
constexpr const char* kLdmVAEPrefix = "first_stage_model.";
constexpr const char* kLdmTextPrefix = "cond_stage_model.";

// The version of an original-layout checkpoint from its tensor names: SD1 when the text encoder is
// transformers' CLIP (cond_stage_model.transformer.*), SD2 when it is OpenCLIP (cond_stage_model.model.*).
// nullopt when the names are not the original SD layout. InputError (naming `source`) for a recognised family
// nerfdream does not run (SDXL's conditioner.embedders.*) or an original UNet without a known text encoder.
std::optional<SdVersion> detect_original_sd_version(const std::vector<std::string>& names,
                                                    const std::string& source);

// Where one diffusers parameter comes from in the original file.
struct TensorSlot {
  std::string original;  // stored tensor name
  int chunk = -1;        // >= 0: chunk `chunk` of 3 along dim 0 (OpenCLIP's fused in_proj → q, k, v)
  bool squeeze = false;  // drop trailing size-1 dims (the VAE's 1×1-conv attention weights → Linear)
};

// The sizes of an original UNet that decide its names, read from the tensor names and shapes.
struct OriginalUNetLayout {
  struct Level {
    int channels = 0;           // resnet output channels
    int layers = 0;             // resnets in the down block
    int transformer_depth = 0;  // BasicTransformerBlocks per SpatialTransformer; 0: no attention
  };
  std::vector<Level> levels;
  bool mid_attention = false;
  bool has_mid_block = false;
};

// Every original name under a prefix → its diffusers name(s), relative to the component (the UNet's
// "conv_in.weight", the VAE's "encoder.down_blocks.0.resnets.0.conv1.weight", the text encoder's
// "text_model.encoder.layers.0.self_attn.q_proj.weight"). Built from the layout; works in both directions.
class LdmNameTable {
 public:
  // What follows a matched prefix: unchanged, or renamed by one of the component's sub-tables.
  // A rule whose original name ends in '.' matches a prefix, otherwise the whole name.
  enum class Kind { kPlain, kUNetResnet, kVAEResnet, kVAEAttention, kOpenCLIPBlock, kIgnore };
  struct Rule {
    std::string original, diffusers;
    Kind kind = Kind::kPlain;
  };

  static LdmNameTable unet(const OriginalUNetLayout& layout);
  // VAE with `levels` resolution levels (SD: 4) and at most `max_layers` resnets per block (decoder: 3).
  static LdmNameTable vae(int levels, int max_layers);
  // SD 1.x text encoder; `text_model_prefix`: the stored names hold "text_model." (newer transformers)
  // or start at "embeddings." (older ones).
  static LdmNameTable clip_text(bool text_model_prefix);
  // SD 2.x OpenCLIP text tower with `blocks` resblocks; the last one (and text_projection, logit_scale,
  // attn_mask) is dropped.
  static LdmNameTable open_clip_text(int blocks);

  // The diffusers names that the original name (relative to the component prefix) becomes: one, three for a
  // fused in_proj, none for a dropped tensor; nullopt when no rule matches.
  std::optional<std::vector<std::pair<std::string, TensorSlot>>> to_diffusers(
      const std::string& original) const;
  // The original name of a diffusers name (relative), for messages and for writing original files; "" when
  // no rule matches. A q/k/v_proj of OpenCLIP gives "...attn.in_proj_weight".
  std::string to_original(const std::string& diffusers) const;
  const std::vector<Rule>& rules() const { return rules_; }

 private:
  std::vector<Rule> rules_;  // longest original prefix first
  void add(std::string original, std::string diffusers, Kind kind = Kind::kPlain);
  void finish();
};

// The original UNet's layout, from the names/shapes under kLdmUNetPrefix. InputError naming `src` and the
// tensor when a block is neither a resnet, a downsampler nor recognisable.
OriginalUNetLayout scan_original_unet(const TensorSource& src);

// Values a file does not carry (0 / empty: the released-SD value, see the top of this file).
struct OriginalLayoutHints {
  int text_heads = 0;           // text encoder attention heads
  std::vector<int> unet_heads;  // per level
  std::string prediction_type;  // "epsilon" | "v_prediction"
};

// diffusers-style config.json objects for the four components, inferred from the file (`src`: its names and
// shapes). Feed them to UNet2DConditionConfig::from_json etc. InputError naming the file and what is missing
// when a hint is needed (e.g. a text width that is not a multiple of the head size 64).
struct OriginalConfigs {
  nlohmann::json unet, vae, text_encoder, scheduler;
};
OriginalConfigs infer_original_configs(const TensorSource& src, SdVersion version,
                                       const OriginalLayoutHints& hints = {});

// One component of a converted checkpoint: diffusers name (relative) → slot.
using ConvertedNames = std::map<std::string, TensorSlot>;

struct OriginalConversion {
  ConvertedNames unet, vae, text_encoder;
  LdmNameTable unet_table, vae_table, text_table;
  std::vector<std::string> ignored;  // stored names that no component uses
};
// Maps every tensor of the file (SD 2: the text encoder keeps all OpenCLIP blocks but the last). InputError
// naming the file and the first tensor under a model prefix that no rule converts.
OriginalConversion convert_original_names(const TensorSource& src, SdVersion version);

}  // namespace nd
