#include "prior/tiny_unet.h"

#include <torch/nn/init.h>
#include <torch/nn/modules/pixelshuffle.h>

#include "core/error.h"

namespace nd {

TinyUNetImpl::TinyUNetImpl(const TinyUNetOptions& o) : o_(o) {
  const int levels = static_cast<int>(o.channels.size());
  require(levels >= 1 && o.attention.size() == o.channels.size(),
          "tiny UNet: channels and attention need one entry per level");
  const int c0 = o.channels[0], temb_dim = 4 * c0, in = o.image_channels * o.patch * o.patch;
  conv_in = register_module("conv_in", torch::nn::Conv2d(torch::nn::Conv2dOptions(in, c0, 3).padding(1)));
  time_embedding = register_module("time_embedding", TimestepEmbedding(c0, temb_dim));
  text_proj = register_module("text_proj", torch::nn::Linear(o.context_dim, temb_dim));
  view_embedding = register_module("view_embedding", TimestepEmbedding(o.view_features, temb_dim));
  down = register_module("down", torch::nn::ModuleList());
  mid = register_module("mid", torch::nn::ModuleList());
  up = register_module("up", torch::nn::ModuleList());

  auto resnet = [&](int cin, int cout) {
    ResnetBlock2DOptions r;
    r.in_channels = cin;
    r.out_channels = cout;
    r.temb_channels = temb_dim;
    r.groups = o.groups;
    r.eps = 1e-5;
    return ResnetBlock2D(r);
  };
  auto transformer = [&](int c) {
    Transformer2DOptions t;
    t.in_channels = c;
    t.heads = o.heads;
    t.dim_head = c / o.heads;
    t.cross_attention_dim = o.context_dim;
    t.groups = o.groups;
    t.use_linear_projection = true;
    return Transformer2DModel(t);
  };
  // Each stage is a small Sequential-free module list entry so that parameter names read
  // "down.3.resnet.conv1.weight", "up.0.attention.transformer_blocks.0.attn2.to_k.weight".
  auto add = [&](torch::nn::ModuleList& list, std::vector<Stage>& stages, Stage s) {
    auto holder = std::make_shared<torch::nn::Module>();
    if (s.resnet) holder->register_module("resnet", s.resnet);
    if (s.transformer) holder->register_module("attention", s.transformer);
    if (s.downsample) holder->register_module("downsample", s.downsample);
    if (s.upsample) holder->register_module("upsample", s.upsample);
    list->push_back(holder);
    stages.push_back(std::move(s));
  };

  std::vector<int> skip_channels{c0};
  int ch = c0;
  for (int l = 0; l < levels; ++l) {
    for (int j = 0; j < o.layers_per_level; ++j) {
      Stage s;
      s.resnet = resnet(ch, o.channels[l]);
      ch = o.channels[l];
      if (o.attention[l]) s.transformer = transformer(ch);
      s.push_skip = true;
      skip_channels.push_back(ch);
      add(down, down_, std::move(s));
    }
    if (l + 1 < levels) {
      Stage s;
      s.downsample = Downsample2D(ch, ch, 1);
      s.push_skip = true;
      skip_channels.push_back(ch);
      add(down, down_, std::move(s));
    }
  }
  {
    Stage a, b;
    a.resnet = resnet(ch, ch);
    a.transformer = transformer(ch);
    b.resnet = resnet(ch, ch);
    add(mid, mid_, std::move(a));
    add(mid, mid_, std::move(b));
  }
  for (int l = levels - 1; l >= 0; --l) {
    for (int j = 0; j <= o.layers_per_level; ++j) {
      Stage s;
      const int skip = skip_channels.back();
      skip_channels.pop_back();
      s.resnet = resnet(ch + skip, o.channels[l]);
      ch = o.channels[l];
      if (o.attention[l]) s.transformer = transformer(ch);
      s.push_skip = true;
      add(up, up_, std::move(s));
    }
    if (l > 0) {
      Stage s;
      s.upsample = Upsample2D(ch, ch);
      add(up, up_, std::move(s));
    }
  }
  norm_out = register_module("norm_out", torch::nn::GroupNorm(torch::nn::GroupNormOptions(o.groups, ch)));
  conv_out = register_module("conv_out", torch::nn::Conv2d(torch::nn::Conv2dOptions(ch, in, 3).padding(1)));
  // A zero last layer starts the model at "predict no noise", which trains more steadily.
  torch::NoGradGuard no_grad;
  conv_out->weight.zero_();
  conv_out->bias.zero_();
}

at::Tensor TinyUNetImpl::run(Stage& s, at::Tensor h, const at::Tensor& temb, const at::Tensor& context) {
  if (s.resnet) h = s.resnet(h, temb);
  if (s.transformer) h = s.transformer(h, context);
  if (s.downsample) h = s.downsample(h);
  if (s.upsample) h = s.upsample(h);
  return h;
}

at::Tensor TinyUNetImpl::forward(const at::Tensor& x, const at::Tensor& t, const TextEncoding& text,
                                 const at::Tensor& views) {
  const int64_t batch = x.size(0);
  const int64_t multiple = o_.patch << (o_.channels.size() - 1);
  TORCH_CHECK(x.dim() == 4 && x.size(1) == o_.image_channels && x.size(2) % multiple == 0 &&
                  x.size(3) % multiple == 0,
              "TinyUNet: x must be [B, ", o_.image_channels, ", H, W] with H, W multiples of ", multiple,
              ", got ", x.sizes());
  TORCH_CHECK(views.dim() == 2 && views.size(0) == batch && views.size(1) == o_.view_features,
              "TinyUNet: views must be [B, ", o_.view_features, "], got ", views.sizes());
  const at::Tensor tt = t.dim() == 0 ? t.expand({batch}) : t;
  at::Tensor temb = time_embedding(timestep_embedding(tt, o_.channels[0], /*flip_sin_to_cos=*/true, 0));
  temb = temb + text_proj(text.pooled) + view_embedding(views);

  at::Tensor h = conv_in(o_.patch > 1 ? at::pixel_unshuffle(x, o_.patch) : x);
  std::vector<at::Tensor> skips{h};
  for (auto& s : down_) {
    h = run(s, h, temb, text.tokens);
    if (s.push_skip) skips.push_back(h);
  }
  for (auto& s : mid_) h = run(s, h, temb, text.tokens);
  for (auto& s : up_) {
    if (s.push_skip) {
      h = at::cat({h, skips.back()}, 1);
      skips.pop_back();
    }
    h = run(s, h, temb, text.tokens);
  }
  h = conv_out(at::silu(norm_out(h)));
  return o_.patch > 1 ? at::pixel_shuffle(h, o_.patch) : h;
}

}  // namespace nd
