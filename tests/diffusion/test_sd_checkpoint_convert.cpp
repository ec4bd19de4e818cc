// The original-layout ↔ diffusers name table: names checked against diffusers' hard-coded SD 1.5 / SD 2
// conversion tables, version detection, config inference, and the golden single-file sd1-tiny checkpoint
// (every tensor maps onto exactly the tensors of the diffusers folder, with equal values).
#include <gtest/gtest.h>

#include <filesystem>
#include <set>

#include "diffusion/autoencoder_kl.h"
#include "diffusion/clip_text_encoder.h"
#include "diffusion/sd_checkpoint_convert.h"
#include "diffusion/unet2d_condition.h"
#include "io/safetensors.h"
#include "test_support.h"

namespace {

namespace fs = std::filesystem;
using nd::LdmNameTable;
using nd::SdVersion;
using nd::test::contains;
using nd::test::input_error_of;
using nd::test::kGolden;

#define REQUIRE_GOLDEN()                                                \
  if (!fs::exists(kGolden + "/sd1-tiny/original/sd1-tiny.safetensors")) \
  GTEST_SKIP() << kGolden << " not found"

// The single diffusers name an original name becomes ("" when dropped, "<none>" when unknown).
std::string one(const LdmNameTable& t, const std::string& original) {
  auto r = t.to_diffusers(original);
  if (!r) return "<none>";
  if (r->empty()) return "";
  EXPECT_EQ(r->size(), 1u) << original;
  return r->front().first;
}

nd::OriginalUNetLayout sd15_layout() {
  nd::OriginalUNetLayout l;
  l.levels = {{320, 2, 1}, {640, 2, 1}, {1280, 2, 1}, {1280, 2, 0}};
  l.has_mid_block = l.mid_attention = true;
  return l;
}

TEST(SdConvert, UNetNamesMatchDiffusersSD15Table) {
  const LdmNameTable t = LdmNameTable::unet(sd15_layout());
  // Pairs from diffusers' convert_diffusers_to_original_stable_diffusion.py (hard-coded for SD 1.x/2.x).
  const std::vector<std::pair<std::string, std::string>> pairs = {
      {"time_embed.0.weight", "time_embedding.linear_1.weight"},
      {"time_embed.2.bias", "time_embedding.linear_2.bias"},
      {"input_blocks.0.0.weight", "conv_in.weight"},
      {"out.0.weight", "conv_norm_out.weight"},
      {"out.2.bias", "conv_out.bias"},
      {"input_blocks.1.0.in_layers.0.weight", "down_blocks.0.resnets.0.norm1.weight"},
      {"input_blocks.1.0.in_layers.2.weight", "down_blocks.0.resnets.0.conv1.weight"},
      {"input_blocks.2.0.out_layers.0.bias", "down_blocks.0.resnets.1.norm2.bias"},
      {"input_blocks.2.0.out_layers.3.weight", "down_blocks.0.resnets.1.conv2.weight"},
      {"input_blocks.2.0.emb_layers.1.weight", "down_blocks.0.resnets.1.time_emb_proj.weight"},
      {"input_blocks.4.0.skip_connection.weight", "down_blocks.1.resnets.0.conv_shortcut.weight"},
      {"input_blocks.1.1.transformer_blocks.0.attn1.to_q.weight",
       "down_blocks.0.attentions.0.transformer_blocks.0.attn1.to_q.weight"},
      {"input_blocks.8.1.proj_in.weight", "down_blocks.2.attentions.1.proj_in.weight"},
      {"input_blocks.3.0.op.weight", "down_blocks.0.downsamplers.0.conv.weight"},
      {"input_blocks.9.0.op.bias", "down_blocks.2.downsamplers.0.conv.bias"},
      {"input_blocks.11.0.in_layers.2.weight", "down_blocks.3.resnets.1.conv1.weight"},
      {"middle_block.0.in_layers.0.weight", "mid_block.resnets.0.norm1.weight"},
      {"middle_block.1.transformer_blocks.0.ff.net.0.proj.weight",
       "mid_block.attentions.0.transformer_blocks.0.ff.net.0.proj.weight"},
      {"middle_block.2.out_layers.3.bias", "mid_block.resnets.1.conv2.bias"},
      {"output_blocks.0.0.skip_connection.weight", "up_blocks.0.resnets.0.conv_shortcut.weight"},
      {"output_blocks.2.1.conv.weight", "up_blocks.0.upsamplers.0.conv.weight"},
      {"output_blocks.3.1.norm.weight", "up_blocks.1.attentions.0.norm.weight"},
      {"output_blocks.5.2.conv.bias", "up_blocks.1.upsamplers.0.conv.bias"},
      {"output_blocks.8.2.conv.weight", "up_blocks.2.upsamplers.0.conv.weight"},
      {"output_blocks.11.1.transformer_blocks.0.norm3.bias",
       "up_blocks.3.attentions.2.transformer_blocks.0.norm3.bias"},
      {"output_blocks.11.0.in_layers.2.weight", "up_blocks.3.resnets.2.conv1.weight"},
  };
  for (const auto& [original, diffusers] : pairs) {
    EXPECT_EQ(one(t, original), diffusers) << original;
    EXPECT_EQ(t.to_original(diffusers), original) << diffusers;
  }
  // Parts the table does not know stay unknown instead of passing through.
  EXPECT_EQ(one(t, "input_blocks.1.0.in_layers.1.weight"), "<none>");
  EXPECT_EQ(one(t, "input_blocks.12.0.in_layers.0.weight"), "<none>");
  EXPECT_EQ(one(t, "label_emb.0.0.weight"), "<none>");
}

TEST(SdConvert, VAEAndTextNamesMatchDiffusersTables) {
  const LdmNameTable vae = LdmNameTable::vae(4, 3);
  const std::vector<std::pair<std::string, std::string>> pairs = {
      {"encoder.conv_in.weight", "encoder.conv_in.weight"},
      {"encoder.down.0.block.1.norm1.weight", "encoder.down_blocks.0.resnets.1.norm1.weight"},
      {"encoder.down.1.block.0.nin_shortcut.weight", "encoder.down_blocks.1.resnets.0.conv_shortcut.weight"},
      {"encoder.down.2.downsample.conv.weight", "encoder.down_blocks.2.downsamplers.0.conv.weight"},
      {"encoder.mid.block_2.conv2.bias", "encoder.mid_block.resnets.1.conv2.bias"},
      {"encoder.mid.attn_1.norm.weight", "encoder.mid_block.attentions.0.group_norm.weight"},
      {"encoder.mid.attn_1.proj_out.bias", "encoder.mid_block.attentions.0.to_out.0.bias"},
      {"encoder.norm_out.bias", "encoder.conv_norm_out.bias"},
      {"decoder.up.3.block.0.conv1.weight", "decoder.up_blocks.0.resnets.0.conv1.weight"},
      {"decoder.up.0.block.2.conv2.weight", "decoder.up_blocks.3.resnets.2.conv2.weight"},
      {"decoder.up.1.upsample.conv.weight", "decoder.up_blocks.2.upsamplers.0.conv.weight"},
      {"decoder.mid.attn_1.k.bias", "decoder.mid_block.attentions.0.to_k.bias"},
      {"quant_conv.weight", "quant_conv.weight"},
      {"post_quant_conv.bias", "post_quant_conv.bias"},
  };
  for (const auto& [original, diffusers] : pairs) {
    EXPECT_EQ(one(vae, original), diffusers) << original;
    EXPECT_EQ(vae.to_original(diffusers), original) << diffusers;
  }
  // 1×1-conv attention weights become Linear weights; biases and norms stay as they are.
  EXPECT_TRUE(vae.to_diffusers("encoder.mid.attn_1.q.weight")->front().second.squeeze);
  EXPECT_FALSE(vae.to_diffusers("encoder.mid.attn_1.q.bias")->front().second.squeeze);
  EXPECT_FALSE(vae.to_diffusers("encoder.mid.attn_1.norm.weight")->front().second.squeeze);
  EXPECT_EQ(one(vae, "loss.discriminator.main.0.weight"), "");

  const LdmNameTable clip = LdmNameTable::clip_text(true);
  EXPECT_EQ(one(clip, "transformer.text_model.encoder.layers.11.mlp.fc2.bias"),
            "text_model.encoder.layers.11.mlp.fc2.bias");
  EXPECT_EQ(one(clip, "transformer.text_model.embeddings.position_ids"), "");
  EXPECT_EQ(one(LdmNameTable::clip_text(false), "transformer.embeddings.token_embedding.weight"),
            "text_model.embeddings.token_embedding.weight");

  // OpenCLIP (diffusers' convert_open_clip_checkpoint): 24 blocks, the last one dropped.
  const LdmNameTable oc = LdmNameTable::open_clip_text(24);
  EXPECT_EQ(one(oc, "model.token_embedding.weight"), "text_model.embeddings.token_embedding.weight");
  EXPECT_EQ(one(oc, "model.positional_embedding"), "text_model.embeddings.position_embedding.weight");
  EXPECT_EQ(one(oc, "model.ln_final.bias"), "text_model.final_layer_norm.bias");
  EXPECT_EQ(one(oc, "model.transformer.resblocks.0.ln_1.weight"),
            "text_model.encoder.layers.0.layer_norm1.weight");
  EXPECT_EQ(one(oc, "model.transformer.resblocks.22.ln_2.bias"),
            "text_model.encoder.layers.22.layer_norm2.bias");
  EXPECT_EQ(one(oc, "model.transformer.resblocks.5.mlp.c_fc.weight"),
            "text_model.encoder.layers.5.mlp.fc1.weight");
  EXPECT_EQ(one(oc, "model.transformer.resblocks.5.mlp.c_proj.bias"),
            "text_model.encoder.layers.5.mlp.fc2.bias");
  EXPECT_EQ(one(oc, "model.transformer.resblocks.5.attn.out_proj.weight"),
            "text_model.encoder.layers.5.self_attn.out_proj.weight");
  EXPECT_EQ(one(oc, "model.transformer.resblocks.23.ln_1.weight"), "");  // the unused last block
  EXPECT_EQ(one(oc, "model.text_projection"), "");
  EXPECT_EQ(one(oc, "model.logit_scale"), "");
  EXPECT_EQ(one(oc, "model.transformer.resblocks.3.attn.bogus"), "<none>");
  const auto qkv = oc.to_diffusers("model.transformer.resblocks.7.attn.in_proj_weight");
  ASSERT_TRUE(qkv && qkv->size() == 3);
  const char* names[] = {"q", "k", "v"};
  for (int c = 0; c < 3; ++c) {
    EXPECT_EQ((*qkv)[c].first,
              std::string("text_model.encoder.layers.7.self_attn.") + names[c] + "_proj.weight");
    EXPECT_EQ((*qkv)[c].second.chunk, c);
    EXPECT_EQ(oc.to_original((*qkv)[c].first), "model.transformer.resblocks.7.attn.in_proj_weight");
  }
  EXPECT_EQ(oc.to_diffusers("model.transformer.resblocks.7.attn.in_proj_bias")->at(2).first,
            "text_model.encoder.layers.7.self_attn.v_proj.bias");
}

TEST(SdConvert, DetectsVersionFromNames) {
  const std::string u = "model.diffusion_model.input_blocks.0.0.weight";
  EXPECT_EQ(nd::detect_original_sd_version(
                {u, "cond_stage_model.transformer.text_model.final_layer_norm.weight"}, "f"),
            SdVersion::kSD1);
  EXPECT_EQ(nd::detect_original_sd_version({u, "cond_stage_model.model.ln_final.weight"}, "f"),
            SdVersion::kSD2);
  EXPECT_FALSE(nd::detect_original_sd_version({"conv_in.weight", "time_embedding.linear_1.weight"}, "f"));
  EXPECT_TRUE(contains(
      input_error_of([&] {
        nd::detect_original_sd_version({u, "conditioner.embedders.0.transformer.x"}, "f.safetensors");
      }),
      "SDXL"));
  EXPECT_TRUE(contains(input_error_of([&] { nd::detect_original_sd_version({u}, "f.safetensors"); }),
                       "without a known text encoder"));
}

// ------------------------------------------------------------------------------------------------ golden

TEST(GoldenSdConvert, SD1SingleFileMapsOntoTheDiffusersFolder) {
  REQUIRE_GOLDEN();
  const auto file = nd::SafetensorsFile::open(kGolden + "/sd1-tiny/original/sd1-tiny.safetensors");
  const nd::TensorSource src = nd::tensor_source(file);
  ASSERT_EQ(nd::detect_original_sd_version(src.names, file.path()), SdVersion::kSD1);
  const nd::OriginalConversion conv = nd::convert_original_names(src, SdVersion::kSD1);
  EXPECT_TRUE(conv.ignored.empty());
  struct Part {
    const nd::ConvertedNames* names;
    std::string weights;
  };
  const Part parts[] = {{&conv.unet, "/sd1-tiny/unet/diffusion_pytorch_model.safetensors"},
                        {&conv.vae, "/sd1-tiny/vae/diffusion_pytorch_model.safetensors"},
                        {&conv.text_encoder, "/sd1-tiny/text_encoder/model.safetensors"}};
  size_t total = 0;
  for (const Part& part : parts) {
    const auto folder = nd::SafetensorsFile::open(kGolden + part.weights);
    const std::vector<std::string> folder_names = folder.names();
    std::set<std::string> want(folder_names.begin(), folder_names.end()), got;
    for (const auto& [name, slot] : *part.names) {
      got.insert(name);
      if (!folder.contains(name)) continue;
      at::Tensor t = file.load(slot.original);
      const at::Tensor ref = folder.load(name);
      EXPECT_TRUE(at::equal(t.reshape(ref.sizes()), ref)) << slot.original << " -> " << name;
    }
    EXPECT_EQ(got, want) << part.weights;
    total += got.size();
  }
  EXPECT_EQ(total, 520u);  // every tensor of the file, once
}

TEST(GoldenSdConvert, InferredConfigsMatchTheFolder) {
  REQUIRE_GOLDEN();
  const auto file = nd::SafetensorsFile::open(kGolden + "/sd1-tiny/original/sd1-tiny.safetensors");
  const nd::TensorSource src = nd::tensor_source(file);
  // The text encoder's 4 heads are not in the file (width 32 is no multiple of SD's head size 64).
  const std::string err = input_error_of([&] { nd::infer_original_configs(src, SdVersion::kSD1); });
  EXPECT_TRUE(contains(err, "text encoder attention heads") && contains(err, "--config")) << err;
  nd::OriginalLayoutHints hints;
  hints.text_heads = 4;
  const nd::OriginalConfigs c = nd::infer_original_configs(src, SdVersion::kSD1, hints);

  const auto u = nd::UNet2DConditionConfig::from_json(c.unet, "inferred");
  const auto uf = nd::UNet2DConditionConfig::from_file(kGolden + "/sd1-tiny/unet/config.json");
  EXPECT_EQ(u.down_block_types, uf.down_block_types);
  EXPECT_EQ(u.up_block_types, uf.up_block_types);
  EXPECT_EQ(u.mid_block_type, uf.mid_block_type);
  EXPECT_EQ(u.block_out_channels, uf.block_out_channels);
  EXPECT_EQ(u.layers_per_block, uf.layers_per_block);
  EXPECT_EQ(u.num_attention_heads, uf.num_attention_heads);  // SD 1's rule: 8 heads per level
  EXPECT_EQ(u.cross_attention_dim, uf.cross_attention_dim);
  EXPECT_EQ(u.transformer_layers_per_block, uf.transformer_layers_per_block);
  EXPECT_EQ(u.use_linear_projection, uf.use_linear_projection);
  EXPECT_EQ(u.time_embed_dim(), uf.time_embed_dim());
  EXPECT_EQ(u.in_channels, uf.in_channels);
  EXPECT_EQ(u.out_channels, uf.out_channels);
  EXPECT_EQ(u.norm_num_groups, uf.norm_num_groups);

  const auto v = nd::AutoencoderKLConfig::from_json(c.vae, "inferred");
  const auto vf = nd::AutoencoderKLConfig::from_file(kGolden + "/sd1-tiny/vae/config.json");
  EXPECT_EQ(v.block_out_channels, vf.block_out_channels);
  EXPECT_EQ(v.layers_per_block, vf.layers_per_block);
  EXPECT_EQ(v.latent_channels, vf.latent_channels);
  EXPECT_EQ(v.in_channels, vf.in_channels);
  EXPECT_EQ(v.out_channels, vf.out_channels);
  EXPECT_DOUBLE_EQ(v.scaling_factor, vf.scaling_factor);

  const auto t = nd::CLIPTextConfig::from_json(c.text_encoder, "inferred");
  const auto tf = nd::CLIPTextConfig::from_file(kGolden + "/sd1-tiny/text_encoder/config.json");
  EXPECT_EQ(t.vocab_size, tf.vocab_size);
  EXPECT_EQ(t.hidden_size, tf.hidden_size);
  EXPECT_EQ(t.intermediate_size, tf.intermediate_size);
  EXPECT_EQ(t.num_layers, tf.num_layers);
  EXPECT_EQ(t.num_heads, tf.num_heads);
  EXPECT_EQ(t.max_positions, tf.max_positions);
  EXPECT_EQ(t.activation, tf.activation);
  EXPECT_EQ(c.scheduler["_class_name"], "PNDMScheduler");
  EXPECT_EQ(c.scheduler["prediction_type"], "epsilon");
}

}  // namespace
