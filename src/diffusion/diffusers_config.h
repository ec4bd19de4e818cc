// diffusers model folders (`unet/`, `vae/`): their config.json parsed into structs, and the strict weight
// loading shared by the UNet and the VAE (named_parameters() keys ARE the checkpoint keys).
//
// config.json files are written by diffusers' save_pretrained, which writes every constructor argument, so
// the keys that fix the architecture are required here (a missing one would otherwise silently become
// SD 1.x's default). Keys this file does not know are ignored (newer diffusers versions add keys whose
// defaults keep the old behaviour); known keys with a value we do not implement are an InputError.
// Semantics follow diffusers v0.25.1.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>

#include <functional>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace nd {

class SafetensorsFile;

// unet/config.json (UNet2DConditionModel). Per-level lists have one entry per down block (level i);
// diffusers' scalar shorthands (an int for every level) are expanded when parsing.
struct UNet2DConditionConfig {
  int in_channels = 4;
  int out_channels = 4;
  int sample_size = 64;  // latent size the model was trained at (informative)
  bool center_input_sample = false;
  std::vector<std::string> down_block_types;               // "CrossAttnDownBlock2D" | "DownBlock2D"
  std::string mid_block_type = "UNetMidBlock2DCrossAttn";  // or "" (diffusers' null: no mid block)
  std::vector<std::string> up_block_types;                 // "UpBlock2D" | "CrossAttnUpBlock2D"
  std::vector<int> block_out_channels;
  std::vector<int> layers_per_block;  // resnets per down block; the up block at the same level has one more
  // Heads per level. diffusers' key `attention_head_dim` really holds the NUMBER of heads (v0.25.1:
  // num_attention_heads = num_attention_heads or attention_head_dim); head dim = channels / heads.
  std::vector<int> num_attention_heads;
  std::vector<int> cross_attention_dim;           // per level; the mid block uses the last entry
  std::vector<int> transformer_layers_per_block;  // BasicTransformerBlocks per Transformer2DModel
  std::vector<bool> only_cross_attention;         // attn1 attends to the text states too
  bool use_linear_projection = false;             // proj_in/proj_out Linear (SD 2.x) instead of 1×1 conv
  bool upcast_attention = false;                  // float32 scores in half precision (no effect in float32)
  int norm_num_groups = 32;
  double norm_eps = 1e-5;
  int downsample_padding = 1;
  double mid_block_scale_factor = 1.0;
  std::string resnet_time_scale_shift = "default";  // "default" (add) | "scale_shift" (FiLM after norm2)
  int conv_in_kernel = 3;
  int conv_out_kernel = 3;
  bool flip_sin_to_cos = true;  // time_proj output [cos, sin] instead of [sin, cos]
  double freq_shift = 0;        // time_proj frequency exponent denominator: half_dim - freq_shift
  int time_embedding_dim = 0;   // 0 (diffusers' null) = 4 × block_out_channels[0]

  int time_embed_dim() const {
    return time_embedding_dim > 0 ? time_embedding_dim : 4 * block_out_channels[0];
  }
  size_t levels() const { return block_out_channels.size(); }

  // InputError "<source>: <key>: ..." on a missing architecture key, a wrong type, an unknown block type or
  // an unsupported option.
  static UNet2DConditionConfig from_json(const nlohmann::json& j, const std::string& source = "config.json");
  static UNet2DConditionConfig from_file(const std::string& config_json);
  // Consistency of the sizes (list lengths, channel/group/head divisibility); InputError naming source.
  void validate(const std::string& source) const;
};

// vae/config.json (AutoencoderKL).
struct AutoencoderKLConfig {
  int in_channels = 3;
  int out_channels = 3;
  int latent_channels = 4;
  int sample_size = 512;                      // image size the model was trained at (informative)
  std::vector<std::string> down_block_types;  // "DownEncoderBlock2D"
  std::vector<std::string> up_block_types;    // "UpDecoderBlock2D"
  std::vector<int> block_out_channels;
  int layers_per_block = 1;  // encoder resnets per level; the decoder has one more
  int norm_num_groups = 32;
  double scaling_factor = 0.18215;  // the UNet works on mean · scaling_factor (SD 1.x/2.x)
  double shift_factor = 0;          // latents = (mean - shift) · scaling (0 for SD 1.x/2.x)
  bool use_quant_conv = true;
  bool use_post_quant_conv = true;
  bool mid_block_add_attention = true;

  static AutoencoderKLConfig from_json(const nlohmann::json& j, const std::string& source = "config.json");
  static AutoencoderKLConfig from_file(const std::string& config_json);
  void validate(const std::string& source) const;
};

// Reads a JSON file; InputError "<path>: cannot open file" / "<path>: not valid JSON (...)".
nlohmann::json read_json_file(const std::string& path);

// The weights file of a diffusers model folder: <dir>/diffusion_pytorch_model.safetensors, else
// <dir>/diffusion_pytorch_model.fp16.safetensors; InputError when neither exists (with a hint for .bin).
std::string diffusers_weights_path(const std::string& model_dir);

// ---------------------------------------------------------------------------------------- strict loading

// Where checkpoint tensors come from: names, shapes and a float32 loader (a map in memory or a lazy file).
// The functions capture the map/file by reference: use the source while they live.
struct TensorSource {
  std::string name;                // for messages (file path)
  std::vector<std::string> names;  // every tensor in the source
  // The stored shape; InputError when the tensor is not floating point.
  std::function<std::vector<int64_t>(const std::string&)> shape;
  std::function<at::Tensor(const std::string&)> load;  // contiguous float32 CPU tensor
};
TensorSource tensor_source(const std::map<std::string, at::Tensor>& tensors, const std::string& source_name);
TensorSource tensor_source(const SafetensorsFile& file);

struct StrictLoadOptions {
  std::string what;  // model name for messages ("UNet2DConditionModel")
  // Stored name (prefix removed) → parameter name; identity when empty. Used for legacy names.
  std::function<std::string(const std::string&)> rename;
  // Parameters that may be stored with extra trailing size-1 dims ([C, C, 1, 1] for a Linear [C, C]),
  // as original-layout checkpoints store 1×1-conv attention projections.
  std::function<bool(const std::string&)> allow_squeeze;
};

// Copies the tensors prefix + <name> into module's parameters. Strict: every parameter must be present
// exactly once with its exact shape, and no other tensor may start with prefix; otherwise InputError
// "<source>: ... tensor '<name>' ...". Tensors outside the prefix are ignored. Nothing is copied before
// every check has passed. The copies go to the parameters' device.
void load_parameters_strict(torch::nn::Module& module, const TensorSource& src, const std::string& prefix,
                            const StrictLoadOptions& options);

}  // namespace nd
