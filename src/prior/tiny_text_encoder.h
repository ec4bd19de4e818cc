// The tiny prior's text encoder: a small pre-norm transformer over word tokens, trained jointly with the
// UNet. Its outputs play the role of CLIP's hidden states in Stable Diffusion: the UNet cross-attends to
// the token states, and the <eos> state ("pooled", as in SDXL) is added to the timestep embedding.
#pragma once
#include <ATen/ATen.h>
#include <torch/nn/module.h>
#include <torch/nn/modules/container/modulelist.h>
#include <torch/nn/modules/embedding.h>
#include <torch/nn/modules/linear.h>
#include <torch/nn/modules/normalization.h>

#include <vector>

#include "diffusion/unet_blocks.h"

namespace nd {

struct TinyTextEncoderOptions {
  int vocab_size = 0;
  int max_tokens = 16;
  int width = 128;
  int layers = 2;
  int heads = 4;
};

// x += attn(ln_1(x)); x += mlp(ln_2(x)) with mlp = fc2(gelu(fc1)), 4× wide.
class TextEncoderLayerImpl : public torch::nn::Module {
 public:
  TextEncoderLayerImpl(int width, int heads);
  at::Tensor forward(const at::Tensor& x);  // [B, L, width] → same
  torch::nn::LayerNorm ln_1{nullptr}, ln_2{nullptr};
  Attention attn{nullptr};
  torch::nn::Linear fc1{nullptr}, fc2{nullptr};
};
TORCH_MODULE(TextEncoderLayer);

struct TextEncoding {
  at::Tensor tokens;  // [B, L, width]: the UNet's cross-attention context
  at::Tensor pooled;  // [B, width]: the state at each row's <eos>
};

class TinyTextEncoderImpl : public torch::nn::Module {
 public:
  explicit TinyTextEncoderImpl(const TinyTextEncoderOptions& o);
  // ids: [B, max_tokens] int64 (WordTokenizer) → token states and pooled state.
  TextEncoding forward(const at::Tensor& ids);
  torch::nn::Embedding token_embedding{nullptr};
  at::Tensor position_embedding;  // [max_tokens, width]
  torch::nn::ModuleList layers{nullptr};
  torch::nn::LayerNorm final_layer_norm{nullptr};

 private:
  TinyTextEncoderOptions o_;
  std::vector<TextEncoderLayer> layers_;
};
TORCH_MODULE(TinyTextEncoder);

}  // namespace nd
