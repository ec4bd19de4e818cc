// The CLIP text encoder of Stable Diffusion 1.x/2.x: transformers' CLIPTextModel (the diffusers
// `text_encoder/` folder), with the same parameter names, so that named_parameters() keys are the
// checkpoint keys ("text_model.encoder.layers.0.self_attn.q_proj.weight", ...).
//
//   h_0 = token_embedding[ids] + position_embedding[0..L-1]
//   h_i = h' + fc2(act(fc1(layer_norm2(h')))),  h' = h_{i-1} + out_proj(attn(layer_norm1(h_{i-1}))) (pre-LN)
//   attn: per head softmax(Q K^T · head_dim^-0.5 + causal mask) V, in float32 (no attention mask: SD's
//         configs use none, the causal mask alone applies)
//   last_hidden_state = final_layer_norm(h_N)
// Reference: ../shared/golden/README.md ("text_encoder.safetensors").
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

namespace nd {

class SafetensorsFile;

// A text_encoder/config.json. Absent keys take transformers' CLIPTextConfig defaults (the values below).
struct CLIPTextConfig {
  int vocab_size = 49408;
  int hidden_size = 512;
  int num_layers = 12;  // num_hidden_layers
  int num_heads = 8;    // num_attention_heads
  int intermediate_size = 2048;
  int max_positions = 77;  // max_position_embeddings
  std::string activation =
      "quick_gelu";  // hidden_act: "quick_gelu" (x·σ(1.702x), SD 1.x) | "gelu" (erf, SD 2.x)
  double layer_norm_eps = 1e-5;

  // InputError "<source>: <key>: ..." on a wrong type, an unknown hidden_act or inconsistent sizes.
  static CLIPTextConfig from_json(const nlohmann::json& j, const std::string& source = "config.json");
  static CLIPTextConfig from_file(const std::string& config_json);
  void validate(const std::string& source) const;
  int head_dim() const { return hidden_size / num_heads; }
};

struct CLIPTextOutput {
  at::Tensor last_hidden_state;  // [B, L, H] final_layer_norm(hidden_states.back()): what SD feeds the UNet
  std::vector<at::Tensor> hidden_states;  // num_layers + 1 tensors [B, L, H], before the final LayerNorm:
                                          // [0] = embeddings, [i] = output of encoder layer i
  at::Tensor pooled;  // [B, H] last_hidden_state at the first position of the largest id (the eos):
                      // transformers' pooler_output for CLIP's tokenizer (not used by SD)
};

class CLIPAttentionImpl : public torch::nn::Module {
 public:
  explicit CLIPAttentionImpl(const CLIPTextConfig& c);
  // x: [B, L, H]; mask: [L, L] additive (0 or the float minimum) → [B, L, H]
  at::Tensor forward(const at::Tensor& x, const at::Tensor& mask);
  torch::nn::Linear q_proj{nullptr}, k_proj{nullptr}, v_proj{nullptr}, out_proj{nullptr};

 private:
  int num_heads_, head_dim_;
};
TORCH_MODULE(CLIPAttention);

class CLIPMLPImpl : public torch::nn::Module {
 public:
  explicit CLIPMLPImpl(const CLIPTextConfig& c);
  at::Tensor forward(const at::Tensor& x);  // [B, L, H] → [B, L, H]
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};

 private:
  bool quick_gelu_;
};
TORCH_MODULE(CLIPMLP);

class CLIPEncoderLayerImpl : public torch::nn::Module {
 public:
  explicit CLIPEncoderLayerImpl(const CLIPTextConfig& c);
  at::Tensor forward(const at::Tensor& x, const at::Tensor& mask);  // [B, L, H] → [B, L, H]
  CLIPAttention self_attn{nullptr};
  torch::nn::LayerNorm layer_norm1{nullptr};
  CLIPMLP mlp{nullptr};
  torch::nn::LayerNorm layer_norm2{nullptr};
};
TORCH_MODULE(CLIPEncoderLayer);

class CLIPTextEmbeddingsImpl : public torch::nn::Module {
 public:
  explicit CLIPTextEmbeddingsImpl(const CLIPTextConfig& c);
  at::Tensor forward(const at::Tensor& ids);  // [B, L] int64 → [B, L, H]
  torch::nn::Embedding token_embedding{nullptr}, position_embedding{nullptr};
};
TORCH_MODULE(CLIPTextEmbeddings);

class CLIPEncoderImpl : public torch::nn::Module {
 public:
  explicit CLIPEncoderImpl(const CLIPTextConfig& c);
  torch::nn::ModuleList layers{nullptr};  // CLIPEncoderLayer × num_layers
};
TORCH_MODULE(CLIPEncoder);

class CLIPTextTransformerImpl : public torch::nn::Module {
 public:
  explicit CLIPTextTransformerImpl(const CLIPTextConfig& c);
  CLIPTextEmbeddings embeddings{nullptr};
  CLIPEncoder encoder{nullptr};
  torch::nn::LayerNorm final_layer_norm{nullptr};
};
TORCH_MODULE(CLIPTextTransformer);

// transformers' CLIPTextModel: the module tree "text_model.{embeddings, encoder.layers.N, final_layer_norm}".
class CLIPTextModelImpl : public torch::nn::Module {
 public:
  explicit CLIPTextModelImpl(const CLIPTextConfig& c);
  // ids: [B, L] integer token ids (L <= max_positions; SD uses L = 77, padded), on the model's device.
  CLIPTextOutput forward(const at::Tensor& ids);
  // diffusers' clip_skip = k: final_layer_norm(hidden_states[-(k + 1)]) [B, L, H]; k = 0 is
  // last_hidden_state.
  at::Tensor clip_skip_hidden_state(const CLIPTextOutput& out, int clip_skip);
  // clip_skip = 1: final_layer_norm(hidden_states[-2]) [B, L, H].
  at::Tensor penultimate_hidden_state_final_ln(const CLIPTextOutput& out) {
    return clip_skip_hidden_state(out, 1);
  }
  const CLIPTextConfig& config() const { return config_; }
  CLIPTextTransformer text_model{nullptr};

 private:
  CLIPTextConfig config_;
};
TORCH_MODULE(CLIPTextModel);

// A diffusers text_encoder/ folder: config.json + model.safetensors (or model.fp16.safetensors; any float
// dtype is converted to float32). Loading is strict (see load_clip_text_model_from). The model is in eval
// mode, CPU.
CLIPTextModel load_clip_text_model(const std::string& text_encoder_dir);

// The tensors named prefix + <parameter name>, e.g. prefix "cond_stage_model.transformer." for an original
// single-file SD 1.x checkpoint, "" for text_encoder/model.safetensors. Strict: a missing tensor, a shape
// that differs from the config's, or an unexpected tensor under the prefix (anything but the parameters and
// "text_model.embeddings.position_ids", which is ignored) is an InputError naming source_name and the tensor.
// Tensors outside the prefix are ignored.
CLIPTextModel load_clip_text_model_from(const std::map<std::string, at::Tensor>& tensors,
                                        const std::string& prefix, const CLIPTextConfig& config,
                                        const std::string& source_name);
// The same from a safetensors file, reading only the text encoder's tensors (shapes checked before reading).
CLIPTextModel load_clip_text_model_from(const SafetensorsFile& file, const std::string& prefix,
                                        const CLIPTextConfig& config);

}  // namespace nd
