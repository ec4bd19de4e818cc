#include "prior/tiny_text_encoder.h"

#include <torch/nn/init.h>

#include "prior/word_tokenizer.h"

namespace nd {

TextEncoderLayerImpl::TextEncoderLayerImpl(int width, int heads) {
  ln_1 = register_module("ln_1", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
  attn = register_module("attn", Attention(width, 0, heads, width / heads, /*qkv_bias=*/true));
  ln_2 = register_module("ln_2", torch::nn::LayerNorm(torch::nn::LayerNormOptions({width})));
  fc1 = register_module("fc1", torch::nn::Linear(width, 4 * width));
  fc2 = register_module("fc2", torch::nn::Linear(4 * width, width));
}

at::Tensor TextEncoderLayerImpl::forward(const at::Tensor& x) {
  at::Tensor h = x + attn(ln_1(x));
  return h + fc2(at::gelu(fc1(ln_2(h))));
}

TinyTextEncoderImpl::TinyTextEncoderImpl(const TinyTextEncoderOptions& o) : o_(o) {
  token_embedding = register_module("token_embedding", torch::nn::Embedding(o.vocab_size, o.width));
  position_embedding = register_parameter("position_embedding", at::randn({o.max_tokens, o.width}) * 0.02);
  torch::nn::init::normal_(token_embedding->weight, 0, 0.02);
  layers = register_module("layers", torch::nn::ModuleList());
  for (int i = 0; i < o.layers; ++i) {
    layers_.push_back(TextEncoderLayer(o.width, o.heads));
    layers->push_back(layers_.back());
  }
  final_layer_norm =
      register_module("final_layer_norm", torch::nn::LayerNorm(torch::nn::LayerNormOptions({o.width})));
}

TextEncoding TinyTextEncoderImpl::forward(const at::Tensor& ids) {
  TORCH_CHECK(ids.dim() == 2 && ids.size(1) == o_.max_tokens, "TinyTextEncoder: ids must be [B, ",
              o_.max_tokens, "], got ", ids.sizes());
  at::Tensor x = token_embedding(ids) + position_embedding.unsqueeze(0);
  for (auto& layer : layers_) x = layer(x);
  x = final_layer_norm(x);
  // The pooled state sits at each row's <eos> (its first occurrence).
  const at::Tensor eos = (ids == WordTokenizer::kEos).to(at::kLong).argmax(1);
  const int64_t batch = ids.size(0), length = ids.size(1);
  const at::Tensor rows = at::arange(batch, ids.options()) * length + eos;
  return {x, x.reshape({batch * length, -1}).index_select(0, rows)};
}

}  // namespace nd
