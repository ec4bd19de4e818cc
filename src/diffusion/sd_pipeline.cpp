#include "diffusion/sd_pipeline.h"

#include <ATen/CPUGeneratorImpl.h>
#include <torch/nn/module.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <optional>

#include "core/error.h"
#include "core/progress.h"
#include "io/image_io.h"
#include "io/safetensors.h"

namespace nd {

namespace fs = std::filesystem;

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string shape_text(at::IntArrayRef s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
  return r + "]";
}

[[noreturn]] void refuse_pickle(const std::string& path) {
  throw InputError(
      path +
      ": a PyTorch pickle checkpoint; nerfdream refuses pickles for safety (unpickling can run "
      "arbitrary code): convert it to .safetensors first (e.g. with the safetensors or diffusers "
      "conversion scripts) and pass that file");
}

bool has_pickle_extension(const std::string& path) {
  const std::string ext = lower(fs::path(path).extension().string());
  return ext == ".ckpt" || ext == ".bin" || ext == ".pt" || ext == ".pth" || ext == ".pkl";
}

// torch.save writes a zip ("PK\3\4") or a raw pickle (0x80, protocol 2..5, then a pickle opcode).
bool looks_like_pickle(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  unsigned char b[4] = {0, 0, 0, 0};
  f.read(reinterpret_cast<char*>(b), 4);
  if (f.gcount() < 4) return false;
  if (b[0] == 'P' && b[1] == 'K' && b[2] == 3 && b[3] == 4) return true;
  return b[0] == 0x80 && b[1] >= 2 && b[1] <= 5 &&
         (b[2] == 0x8a || b[2] == 0x7d || b[2] == 0x63 || b[2] == 0x95);
}

SafetensorsFile open_weights(const std::string& path) {
  if (has_pickle_extension(path)) refuse_pickle(path);
  try {
    return SafetensorsFile::open(path);
  } catch (const InputError&) {
    if (looks_like_pickle(path)) refuse_pickle(path);
    throw;
  }
}

bool is_float_dtype(const std::string& dtype) {
  return dtype == "F32" || dtype == "F16" || dtype == "BF16" || dtype == "F64";
}

// Strict copy of one component's converted tensors into `module`: every parameter present once with its
// shape, nothing else; messages name the stored (original) tensor. Nothing is copied before all checks pass.
void load_converted(torch::nn::Module& module, const SafetensorsFile& file, const ConvertedNames& names,
                    const LdmNameTable& table, const std::string& prefix, const std::string& what) {
  auto params = module.named_parameters(/*recurse=*/true);
  for (const auto& [name, slot] : names)
    if (!params.contains(name))
      throw InputError(file.path() + ": unexpected tensor '" + slot.original + "' (" + what + " parameter '" +
                       name + "' is not in the detected architecture)");
  for (const auto& p : params) {
    auto it = names.find(p.key());
    if (it == names.end()) {
      const std::string original = table.to_original(p.key());
      throw InputError(file.path() + ": missing tensor '" + (original.empty() ? p.key() : prefix + original) +
                       "' (" + what + " parameter '" + p.key() + "')");
    }
    const TensorSlot& slot = it->second;
    const TensorInfo& info = file.info(slot.original);
    if (!is_float_dtype(info.dtype))
      throw InputError(file.path() + ": tensor '" + slot.original + "' has dtype " + info.dtype +
                       ", expected a float type");
    std::vector<int64_t> shape = info.shape;
    bool ok = true;
    if (slot.chunk >= 0) {
      ok = !shape.empty() && shape[0] % 3 == 0;
      if (ok) shape[0] /= 3;
    }
    if (slot.squeeze)
      while (shape.size() > static_cast<size_t>(p.value().dim()) && shape.back() == 1) shape.pop_back();
    if (!ok || at::IntArrayRef(shape) != p.value().sizes())
      throw InputError(file.path() + ": tensor '" + slot.original + "' has shape " + shape_text(info.shape) +
                       ", the detected " + what + " needs " + (slot.chunk >= 0 ? "3 × " : "") +
                       shape_text(p.value().sizes()) + " for '" + p.key() + "'");
  }
  at::NoGradGuard no_grad;
  for (auto& p : params) {
    const TensorSlot& slot = names.at(p.key());
    at::Tensor t = file.load(slot.original, at::kFloat);
    if (slot.chunk >= 0) t = t.chunk(3, 0)[slot.chunk];
    p.value().copy_(t.reshape(p.value().sizes()));
  }
}

// A diffusers component folder named in model_index.json.
std::string component_dir(const std::string& dir, const nlohmann::json& index, const std::string& index_path,
                          const std::string& name, const std::vector<std::string>& classes) {
  auto it = index.find(name);
  if (it == index.end() || !it->is_array() || it->size() != 2 || !(*it)[1].is_string())
    throw InputError(index_path + ": component '" + name + "' is missing (expected \"" + name +
                     "\": [library, class])");
  const std::string cls = (*it)[1].get<std::string>();
  if (std::find(classes.begin(), classes.end(), cls) == classes.end()) {
    std::string known;
    for (const auto& c : classes) known += (known.empty() ? "" : ", ") + c;
    throw InputError(index_path + ": component '" + name + "' is a " + cls + " (supported: " + known + ")");
  }
  const std::string sub = (fs::path(dir) / name).string();
  if (!fs::is_directory(sub))
    throw InputError(sub + ": folder missing (model_index.json names a " + cls + ")");
  return sub;
}

bool path_exists(const fs::path& p) {
  std::error_code ec;
  return fs::exists(p, ec);
}

// A tokenizer folder given directly or as a pipeline folder holding tokenizer/.
std::string tokenizer_folder(const std::string& dir) {
  if (!path_exists(fs::path(dir) / "vocab.json") && path_exists(fs::path(dir) / "tokenizer" / "vocab.json"))
    return (fs::path(dir) / "tokenizer").string();
  return dir;
}

}  // namespace

// -------------------------------------------------------------------------------------------------- load

StableDiffusionPipeline StableDiffusionPipeline::load(const std::string& path_in,
                                                      const SdLoadOptions& options) {
  std::string path = path_in;
  if (fs::path(path).filename() == "model_index.json") path = fs::path(path).parent_path().string();
  if (!path_exists(path)) throw InputError(path + ": no such file or folder");
  StableDiffusionPipeline p;
  p.source_ = path;

  if (fs::is_directory(path)) {
    const std::string index_path = (fs::path(path) / "model_index.json").string();
    if (!path_exists(index_path))
      throw InputError(path + ": not a diffusers Stable Diffusion folder (no model_index.json)");
    const nlohmann::json index = read_json_file(index_path);
    if (!index.is_object()) throw InputError(index_path + ": expected a JSON object");
    const std::string tok =
        component_dir(path, index, index_path, "tokenizer", {"CLIPTokenizer", "CLIPTokenizerFast"});
    const std::string te = component_dir(path, index, index_path, "text_encoder", {"CLIPTextModel"});
    const std::string unet = component_dir(path, index, index_path, "unet", {"UNet2DConditionModel"});
    const std::string vae = component_dir(path, index, index_path, "vae", {"AutoencoderKL"});
    const std::string sched = component_dir(
        path, index, index_path, "scheduler",
        {"PNDMScheduler", "DDIMScheduler", "DDPMScheduler", "EulerDiscreteScheduler", "LMSDiscreteScheduler",
         "EulerAncestralDiscreteScheduler", "DPMSolverMultistepScheduler", "UniPCMultistepScheduler",
         "DEISMultistepScheduler", "HeunDiscreteScheduler", "KDPM2DiscreteScheduler"});
    // Configs first (cheap, and their errors come before any weight is read).
    p.scheduler_config_ = SchedulerConfig::load((fs::path(sched) / "scheduler_config.json").string());
    p.tokenizer_ = std::make_shared<const CLIPTokenizer>(CLIPTokenizer::load_folder(tok));
    p.pad_id_ = p.tokenizer_->pad_id();
    p.text_encoder = load_clip_text_model(te);
    p.unet = load_unet(unet);
    p.vae = load_vae(vae);
    p.version_ = p.text_encoder->config().activation == "gelu" ? SdVersion::kSD2 : SdVersion::kSD1;
  } else {
    p.single_file_ = true;
    const SafetensorsFile file = open_weights(path);
    const TensorSource src = tensor_source(file);
    const std::optional<SdVersion> version = detect_original_sd_version(src.names, path);
    if (!version) {
      std::string hint;
      if (file.contains("conv_in.weight") || file.contains("encoder.conv_in.weight") ||
          file.contains("text_model.embeddings.token_embedding.weight"))
        hint =
            " (it looks like one diffusers component: pass the pipeline folder that holds model_index.json)";
      else if (file.metadata().count("format") && file.metadata().at("format").rfind("nerfdream.", 0) == 0)
        hint = " (it is a nerfdream " + file.metadata().at("format") + " checkpoint)";
      throw InputError(
          path +
          ": not a Stable Diffusion checkpoint: neither the original layout (model.diffusion_model.*, "
          "first_stage_model.*, cond_stage_model.*) nor a diffusers folder" +
          hint);
    }
    p.version_ = *version;

    // What the file does not carry: from --config, else a diffusers folder beside the file.
    if (!options.config_dir.empty() && !fs::is_directory(options.config_dir))
      throw InputError(options.config_dir + ": --config: not a folder");
    std::string config_dir = options.config_dir;
    const fs::path here = fs::absolute(path).parent_path();
    if (config_dir.empty())
      for (const fs::path& dir : {here, here.parent_path()})
        if (path_exists(dir / "model_index.json")) {
          config_dir = dir.string();
          break;
        }
    const fs::path cfg(config_dir);
    OriginalLayoutHints hints;
    std::optional<CLIPTextConfig> te_cfg;
    std::optional<UNet2DConditionConfig> unet_cfg;
    std::optional<AutoencoderKLConfig> vae_cfg;
    std::optional<SchedulerConfig> sched_cfg;
    std::vector<std::string> from_folder, inferred;
    if (!config_dir.empty()) {
      if (path_exists(cfg / "text_encoder/config.json")) {
        te_cfg = CLIPTextConfig::from_file((cfg / "text_encoder/config.json").string());
        hints.text_heads = te_cfg->num_heads;
      }
      if (path_exists(cfg / "unet/config.json")) {
        unet_cfg = UNet2DConditionConfig::from_file((cfg / "unet/config.json").string());
        hints.unet_heads = unet_cfg->num_attention_heads;
      }
      if (path_exists(cfg / "vae/config.json"))
        vae_cfg = AutoencoderKLConfig::from_file((cfg / "vae/config.json").string());
      if (path_exists(cfg / "scheduler/scheduler_config.json")) {
        sched_cfg = SchedulerConfig::load((cfg / "scheduler/scheduler_config.json").string());
        hints.prediction_type = prediction_type_name(sched_cfg->prediction_type);
      }
    }
    if (!options.prediction_type.empty()) hints.prediction_type = options.prediction_type;
    const OriginalConfigs guess = infer_original_configs(src, p.version_, hints);
    auto note = [&](bool have, const char* what) { (have ? from_folder : inferred).push_back(what); };
    note(te_cfg.has_value(), "text_encoder");
    note(unet_cfg.has_value(), "unet");
    note(vae_cfg.has_value(), "vae");
    note(sched_cfg.has_value(), "scheduler");
    if (!te_cfg)
      te_cfg = CLIPTextConfig::from_json(guess.text_encoder, path + " (inferred text encoder config)");
    if (!unet_cfg) unet_cfg = UNet2DConditionConfig::from_json(guess.unet, path + " (inferred UNet config)");
    if (!vae_cfg) vae_cfg = AutoencoderKLConfig::from_json(guess.vae, path + " (inferred VAE config)");
    if (!sched_cfg)
      sched_cfg = SchedulerConfig::from_json(guess.scheduler, path + " (inferred scheduler config)");
    if (p.version_ == SdVersion::kSD2 &&
        te_cfg->num_layers != guess.text_encoder["num_hidden_layers"].get<int>())
      throw InputError(
          (cfg / "text_encoder/config.json").string() + ": num_hidden_layers " +
          std::to_string(te_cfg->num_layers) + ", but SD 2 conditions on the penultimate of the " +
          std::to_string(guess.text_encoder["num_hidden_layers"].get<int>() + 1) + " OpenCLIP blocks in " +
          path + " (expected " + std::to_string(guess.text_encoder["num_hidden_layers"].get<int>()) + ")");
    p.scheduler_config_ = *sched_cfg;

    // The tokenizer: --tokenizer, the config folder's, or a tokenizer/ beside the file.
    std::string tok = options.tokenizer_dir.empty() ? "" : tokenizer_folder(options.tokenizer_dir);
    if (tok.empty() && !config_dir.empty() && path_exists(cfg / "tokenizer" / "vocab.json"))
      tok = (cfg / "tokenizer").string();
    if (tok.empty())
      for (const fs::path& dir : {here / "tokenizer", here.parent_path() / "tokenizer"})
        if (path_exists(dir / "vocab.json")) {
          tok = dir.string();
          break;
        }
    if (tok.empty())
      throw InputError(
          path +
          ": a single-file checkpoint does not carry the CLIP tokenizer (vocab.json, merges.txt); "
          "pass --tokenizer DIR (e.g. the tokenizer/ folder of a diffusers Stable Diffusion "
          "pipeline) or put a tokenizer/ folder beside the file");
    p.tokenizer_ = std::make_shared<const CLIPTokenizer>(CLIPTokenizer::load_folder(tok));
    // The original code pads as its embedder did: SD 1 (HF CLIP) with <|endoftext|>, SD 2 (open_clip) with 0.
    p.pad_id_ = p.tokenizer_->eos_id();
    if (p.version_ == SdVersion::kSD2) {
      if (p.tokenizer_->vocab_size() < 1 || p.tokenizer_->token(0) != "!")
        throw InputError(tok + "/vocab.json: id 0 is not \"!\" (SD 2's pad token)");
      p.pad_id_ = 0;
    }

    const OriginalConversion conv = convert_original_names(src, p.version_);
    p.text_encoder = CLIPTextModel(*te_cfg);
    p.unet = UNet2DConditionModel(*unet_cfg);
    p.vae = AutoencoderKL(*vae_cfg);
    load_converted(*p.text_encoder, file, conv.text_encoder, conv.text_table, kLdmTextPrefix, "text encoder");
    load_converted(*p.unet, file, conv.unet, conv.unet_table, kLdmUNetPrefix, "UNet");
    load_converted(*p.vae, file, conv.vae, conv.vae_table, kLdmVAEPrefix, "VAE");
    if (options.verbose) {
      auto join = [](const std::vector<std::string>& v) {
        std::string s;
        for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
        return s;
      };
      std::string msg = path + ": " + sd_version_name(p.version_) + " original layout; tokenizer from " + tok;
      if (!from_folder.empty()) msg += "; configs from " + config_dir + " (" + join(from_folder) + ")";
      if (!inferred.empty()) msg += "; inferred from the weights: " + join(inferred);
      std::fprintf(stderr, "nerfdream: %s\n", msg.c_str());
    }
  }
  if (!options.prediction_type.empty())
    p.scheduler_config_.prediction_type = parse_prediction_type(options.prediction_type, "--prediction-type");
  p.finish_load();
  return p;
}

void StableDiffusionPipeline::finish_load() {
  if (unet->config().in_channels != vae->config().latent_channels)
    throw InputError(source_ + ": the UNet takes " + std::to_string(unet->config().in_channels) +
                     " channels but the VAE's latents have " + std::to_string(vae->config().latent_channels) +
                     " (inpainting and other conditioned UNets are not supported)");
  if (unet->config().cross_attention_dim.back() != text_encoder->config().hidden_size)
    throw InputError(source_ + ": the UNet's cross_attention_dim " +
                     std::to_string(unet->config().cross_attention_dim.back()) +
                     " differs from the text encoder's width " +
                     std::to_string(text_encoder->config().hidden_size));
  for (torch::nn::Module* m :
       {static_cast<torch::nn::Module*>(text_encoder.get()), static_cast<torch::nn::Module*>(unet.get()),
        static_cast<torch::nn::Module*>(vae.get())}) {
    m->eval();
    for (auto& param : m->parameters()) param.requires_grad_(false);
  }
  schedule_ = std::make_shared<const NoiseSchedule>(scheduler_config_.make_noise_schedule());
}

int StableDiffusionPipeline::vae_scale_factor() const {
  return 1 << (static_cast<int>(vae->config().block_out_channels.size()) - 1);
}

void StableDiffusionPipeline::to(at::Device device, at::ScalarType dtype) {
  text_encoder->to(device, dtype);
  unet->to(device, dtype);
  vae->to(device, dtype);
}

at::Device StableDiffusionPipeline::device() const { return unet->conv_in->weight.device(); }

std::unique_ptr<Scheduler> StableDiffusionPipeline::make_scheduler(const std::string& override_class) const {
  return nd::make_scheduler(scheduler_config_, override_class);
}

// -------------------------------------------------------------------------------------------- inference

at::Tensor StableDiffusionPipeline::encode_prompt(const std::vector<std::string>& prompts) {
  const int max_length = text_encoder->config().max_positions;
  std::vector<int64_t> ids;
  for (const std::string& prompt : prompts) {
    const CLIPTokenizer::Encoded e = tokenizer_->encode_padded(prompt, max_length, pad_id_);
    if (e.truncated) {
      const std::vector<int64_t> content = tokenizer_->encode(prompt);
      const std::vector<int64_t> dropped(content.begin() + (max_length - 2), content.end());
      std::fprintf(
          stderr, "nerfdream: warning: the prompt is %zu tokens, CLIP reads %d: truncated, dropping \"%s\"\n",
          content.size(), max_length - 2, tokenizer_->decode(dropped).c_str());
    }
    ids.insert(ids.end(), e.ids.begin(), e.ids.end());
  }
  const at::Tensor tokens =
      at::tensor(ids, at::kLong).view({static_cast<int64_t>(prompts.size()), max_length}).to(device());
  at::NoGradGuard no_grad;
  return text_encoder->forward(tokens).last_hidden_state.to(at::kFloat);
}

at::Tensor StableDiffusionPipeline::encode_prompt_cfg(const std::vector<std::string>& prompts,
                                                      const std::vector<std::string>& negatives) {
  if (!negatives.empty() && negatives.size() != prompts.size())
    throw InputError("negative prompts: " + std::to_string(negatives.size()) + " given for " +
                     std::to_string(prompts.size()) + " prompts");
  const at::Tensor uncond =
      encode_prompt(negatives.empty() ? std::vector<std::string>(prompts.size()) : negatives);
  return at::cat({uncond, encode_prompt(prompts)});
}

CfgPrediction StableDiffusionPipeline::predict(const at::Tensor& latents, const at::Tensor& t,
                                               const at::Tensor& embeddings, double cfg) {
  TORCH_CHECK(latents.dim() == 4, "predict: latents must be [B, C, h, w], got ", latents.sizes());
  TORCH_CHECK(embeddings.dim() == 3, "predict: embeddings must be [B, L, D], got ", embeddings.sizes());
  const int64_t B = latents.size(0);
  // The UNet runs in its own dtype (half on CUDA when to() asked for it); the outputs are float32.
  const at::ScalarType dtype = unet->conv_in->weight.scalar_type();
  const at::Tensor x = latents.to(dtype), emb = embeddings.to(dtype);
  CfgPrediction out;
  if (embeddings.size(0) == B) {
    out.cond = out.guided = unet->forward(x, t, emb).to(latents.scalar_type());
    return out;
  }
  TORCH_CHECK(embeddings.size(0) == 2 * B, "predict: embeddings must hold ", B, " or ", 2 * B,
              " rows (uncond first), got ", embeddings.size(0));
  const at::Tensor tt = t.dim() == 1 && t.size(0) == B && B > 1 ? at::cat({t, t}) : t;
  const auto parts = unet->forward(at::cat({x, x}), tt, emb).to(latents.scalar_type()).chunk(2);
  out.uncond = parts[0];
  out.cond = parts[1];
  out.guided = out.uncond + cfg * (out.cond - out.uncond);
  return out;
}

at::Tensor StableDiffusionPipeline::predict_noise(const at::Tensor& latents, const at::Tensor& t,
                                                  const at::Tensor& embeddings, double cfg) {
  const at::Tensor guided = predict(latents, t, embeddings, cfg).guided;
  return schedule_->to_epsilon(prediction_type(), guided, latents, t.to(at::kLong));
}

at::Tensor StableDiffusionPipeline::decode_latents(const at::Tensor& latents) {
  const auto& c = vae->config();
  const at::ScalarType dtype = vae->decoder->conv_in->weight.scalar_type();
  return vae->decode((latents / c.scaling_factor + c.shift_factor).to(dtype)).to(latents.scalar_type());
}

at::Tensor StableDiffusionPipeline::encode_image(const at::Tensor& image, at::Generator* gen) {
  const auto& c = vae->config();
  const DiagonalGaussian posterior = vae->encode(image.to(vae->encoder->conv_in->weight.scalar_type()));
  const at::Tensor z = (gen ? posterior.sample(*gen) : posterior.mean).to(image.scalar_type());
  return (z - c.shift_factor) * c.scaling_factor;
}

at::Tensor StableDiffusionPipeline::to_unit_range(const at::Tensor& decoded) {
  return (decoded / 2 + 0.5).clamp(0, 1);
}

Txt2ImgResult StableDiffusionPipeline::txt2img(const Txt2ImgOptions& o) {
  if (o.num_images < 1) throw InputError("-n: " + std::to_string(o.num_images) + " images; need at least 1");
  if (o.steps < 1) throw InputError("--steps: " + std::to_string(o.steps) + "; need at least 1");
  if (!std::isfinite(o.cfg)) throw InputError("--cfg: not a finite number");
  const int factor = vae_scale_factor();
  const int height = o.height ? o.height : default_image_size();
  const int width = o.width ? o.width : default_image_size();
  for (auto [name, v] : {std::pair<const char*, int>{"--height", height}, {"--width", width}})
    if (v <= 0 || v % factor != 0)
      throw InputError(std::string(name) + ": " + std::to_string(v) + " is not a positive multiple of " +
                       std::to_string(factor) + " (the VAE's downsampling)");
  at::NoGradGuard no_grad;
  const int n = o.num_images;
  const bool guidance = o.cfg > 1.0;

  Txt2ImgResult r;
  // One encoding per distinct prompt, repeated per image (diffusers' num_images_per_prompt).
  const at::Tensor cond = encode_prompt({o.prompt}).repeat({n, 1, 1});
  r.prompt_embeds = guidance ? at::cat({encode_prompt({o.negative_prompt}).repeat({n, 1, 1}), cond}) : cond;

  std::unique_ptr<Scheduler> scheduler = make_scheduler(o.scheduler);
  scheduler->set_timesteps(o.steps);
  r.timesteps = scheduler->timesteps();
  at::Generator gen = at::detail::createCPUGenerator(o.seed);
  const std::vector<int64_t> shape = {n, unet->config().in_channels, height / factor, width / factor};
  at::Tensor latents;
  if (o.init_latents.defined()) {
    if (o.init_latents.sizes() != at::IntArrayRef(shape))
      throw InputError("init latents: shape " + shape_text(o.init_latents.sizes()) + ", expected " +
                       shape_text(shape));
    latents = o.init_latents.to(device(), at::kFloat);
  } else {
    // Drawn on the CPU as diffusers does with a CPU generator: the same seed gives the same noise anywhere.
    latents = at::randn(shape, gen, at::TensorOptions(at::kFloat)).to(device());
  }
  latents = latents * scheduler->init_noise_sigma();
  ProgressBar bar(static_cast<int64_t>(r.timesteps.size()), "sample", o.progress);
  latents = denoise(latents, *scheduler, 0, r.prompt_embeds, o.cfg, gen,
                    [&](int i, int64_t t, const CfgPrediction& pred, const at::Tensor& x) {
                      if (o.on_step) o.on_step(i, t, pred, x);
                      bar.update(i + 1);
                    });
  bar.finish();
  r.latents = latents;
  r.decoded = decode_latents(latents);
  r.images = to_unit_range(r.decoded);
  return r;
}

at::Tensor StableDiffusionPipeline::denoise(at::Tensor latents, Scheduler& scheduler, size_t first,
                                            const at::Tensor& embeddings, double cfg, at::Generator& gen,
                                            const StepCallback& on_step) {
  at::NoGradGuard no_grad;
  const bool cpu = device().is_cpu();
  const auto& timesteps = scheduler.timesteps();
  for (size_t i = first; i < timesteps.size(); ++i) {
    const int64_t t = timesteps[i];
    const double model_t = scheduler.model_timesteps()[i];
    const at::Tensor tt = model_t == std::floor(model_t)
                              ? at::scalar_tensor(static_cast<int64_t>(model_t), at::kLong)
                              : at::scalar_tensor(model_t, at::kFloat);
    const CfgPrediction pred = predict(scheduler.scale_model_input(latents, t), tt, embeddings, cfg);
    latents = scheduler.step(pred.guided, t, latents, cpu ? &gen : nullptr);
    if (on_step) on_step(static_cast<int>(i), t, pred, latents);
  }
  return latents;
}

// ------------------------------------------------------------------------------------------------ sample

int run_sd_sample(const SdSampleOptions& o) {
  if (o.model.empty()) throw InputError("--model: missing");
  if (o.out.empty()) throw InputError("-o: missing output file");
  if (!ends_with(lower(o.out), ".png")) throw InputError("-o: " + o.out + ": the output must be a .png file");
  if (o.num_images < 1 || o.num_images > 256)
    throw InputError("-n: " + std::to_string(o.num_images) + " not in [1, 256]");
  if (o.steps < 1 || o.steps > 1000)
    throw InputError("--steps: " + std::to_string(o.steps) + " not in [1, 1000]");
  if (!std::isfinite(o.cfg) || o.cfg < 0) throw InputError("--cfg: must be a finite number >= 0");
  if (o.columns < 0) throw InputError("--columns: must be >= 0");
  for (auto [name, v] : {std::pair<const char*, int>{"--height", o.height}, {"--width", o.width}})
    if (v < 0 || v % 8 != 0)
      throw InputError(std::string(name) + ": " + std::to_string(v) + " is not a positive multiple of 8");
  if (!o.scheduler.empty()) {
    const std::string s = lower(o.scheduler);
    if (s != "ddim" && s != "ddpm" && s != "pndm" && s != "euler")
      throw InputError("--scheduler: '" + o.scheduler + "' (known: ddim, ddpm, pndm, euler)");
  }
  if (!o.prediction_type.empty()) parse_prediction_type(o.prediction_type, "--prediction-type");

  const auto t0 = std::chrono::steady_clock::now();
  SdLoadOptions lo;
  lo.tokenizer_dir = o.tokenizer_dir;
  lo.config_dir = o.config_dir;
  lo.prediction_type = o.prediction_type;
  StableDiffusionPipeline pipe = StableDiffusionPipeline::load(o.model, lo);
  Txt2ImgOptions to;
  to.prompt = o.prompt;
  to.negative_prompt = o.negative_prompt;
  to.num_images = o.num_images;
  to.steps = o.steps;
  to.cfg = o.cfg;
  to.seed = o.seed;
  to.height = o.height;
  to.width = o.width;
  to.scheduler = lower(o.scheduler);
  to.progress = o.progress;
  const Txt2ImgResult r = pipe.txt2img(to);

  std::vector<at::Tensor> tiles;
  for (int64_t i = 0; i < r.images.size(0); ++i) tiles.push_back(r.images[i].permute({1, 2, 0}).to(at::kCPU));
  const int columns =
      o.columns > 0 ? o.columns : static_cast<int>(std::ceil(std::sqrt(static_cast<double>(o.num_images))));
  const fs::path parent = fs::path(o.out).parent_path();
  if (!parent.empty()) fs::create_directories(parent);
  save_png(o.out, image_grid(tiles, columns));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::fprintf(stderr, "wrote %s: %d image%s %lldx%lld, %d steps (%s), cfg %g, seed %llu, %.1f s\n",
               o.out.c_str(), o.num_images, o.num_images == 1 ? "" : "s",
               static_cast<long long>(r.images.size(3)), static_cast<long long>(r.images.size(2)), o.steps,
               pipe.make_scheduler(to.scheduler)->name(), o.cfg, static_cast<unsigned long long>(o.seed),
               seconds);
  return 0;
}

}  // namespace nd
