#include "diffusion/checkpoint_inspect.h"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <optional>

#include "core/error.h"
#include "diffusion/diffusers_config.h"
#include "diffusion/sd_checkpoint_convert.h"
#include "io/safetensors.h"

namespace nd {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

// nerfdream's own checkpoint formats (io/checkpoint.h writes them into the metadata's "format").
constexpr const char* kNerfFormat = "nerfdream.nerf";
constexpr const char* kPriorFormat = "nerfdream.prior";

std::string thousands(int64_t v) {
  std::string s = std::to_string(v), r;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i && (s.size() - i) % 3 == 0) r += ',';
    r += s[i];
  }
  return r;
}

// A JSON value printed compactly ("[32, 64]"), or "-" when absent.
std::string value(const json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return "-";
  if (it->is_string()) return it->get<std::string>();
  std::string s = it->dump();
  std::string r;
  for (size_t i = 0; i < s.size(); ++i) r += s[i] == ',' ? std::string(", ") : std::string(1, s[i]);
  return r;
}

struct WeightsSummary {
  int64_t tensors = 0, params = 0;
  std::map<std::string, int64_t> dtypes;
};

WeightsSummary summarize(const SafetensorsFile& f, const std::string& prefix = "") {
  WeightsSummary s;
  for (const auto& [name, info] : f.header().tensors) {
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    ++s.tensors;
    s.params += info.numel();
    ++s.dtypes[info.dtype];
  }
  return s;
}

std::string dtype_text(const std::map<std::string, int64_t>& d) {
  std::string r;
  for (const auto& [k, v] : d) r += (r.empty() ? "" : ", ") + k + " " + std::to_string(v);
  return r;
}

void inspect_original(const SafetensorsFile& f, SdVersion version, CheckpointInspection& r) {
  const TensorSource src = tensor_source(f);
  // Architecture as inferred; the head counts are not stored, so fall back to placeholders when the released
  // values do not fit this file.
  OriginalConfigs c;
  bool unet_heads_known = true, text_heads_known = true;
  OriginalLayoutHints hints;
  try {
    c = infer_original_configs(src, version);
  } catch (const InputError&) {
    text_heads_known = false;
    hints.text_heads = 1;
    try {
      c = infer_original_configs(src, version, hints);
    } catch (const InputError&) {
      unet_heads_known = false;
      hints.unet_heads.assign(scan_original_unet(src).levels.size(), 1);
      c = infer_original_configs(src, version, hints);
    }
  }
  auto& d = r.details;
  d.push_back({"unet", thousands(summarize(f, kLdmUNetPrefix).params) + " parameters; block_out_channels " +
                           value(c.unet, "block_out_channels") + ", layers_per_block " +
                           value(c.unet, "layers_per_block") + ", down " + value(c.unet, "down_block_types") +
                           ", cross_attention_dim " + value(c.unet, "cross_attention_dim") +
                           ", linear projection " + value(c.unet, "use_linear_projection") +
                           (unet_heads_known
                                ? ", heads " + value(c.unet, "attention_head_dim") + " (released-SD rule)"
                                : ", heads not stored in the file")});
  d.push_back({"vae", thousands(summarize(f, kLdmVAEPrefix).params) + " parameters; block_out_channels " +
                          value(c.vae, "block_out_channels") + ", latent_channels " +
                          value(c.vae, "latent_channels") + ", layers_per_block " +
                          value(c.vae, "layers_per_block")});
  std::string text = thousands(summarize(f, kLdmTextPrefix).params) + " parameters; " +
                     (version == SdVersion::kSD1 ? "CLIP (quick_gelu)" : "OpenCLIP (gelu)") + ", hidden " +
                     value(c.text_encoder, "hidden_size") + ", layers " +
                     value(c.text_encoder, "num_hidden_layers");
  if (version == SdVersion::kSD2)
    text += " used (of " + std::to_string(c.text_encoder["num_hidden_layers"].get<int>() + 1) +
            ": SD 2 uses the penultimate)";
  text += text_heads_known ? ", heads " + value(c.text_encoder, "num_attention_heads")
                           : ", heads not stored in the file";
  d.push_back({"text_encoder", text});
  d.push_back(
      {"needs", "a CLIP tokenizer folder (vocab.json, merges.txt) beside the file or via --tokenizer"});
  const auto ignored = convert_original_names(src, version).ignored;
  if (!ignored.empty())
    d.push_back({"ignored tensors", std::to_string(ignored.size()) + " (e.g. " + ignored[0] + ")"});
}

void inspect_file(const std::string& path, CheckpointInspection& r) {
  r.kind = "safetensors";
  const SafetensorsFile f = SafetensorsFile::open(path);
  const WeightsSummary s = summarize(f);
  r.tensors = s.tensors;
  r.params = s.params;
  r.dtypes = s.dtypes;
  r.metadata = f.metadata();
  const auto format = r.metadata.find("format");
  if (format != r.metadata.end() && (format->second == kNerfFormat || format->second == kPriorFormat)) {
    r.family = format->second == kNerfFormat ? "nerfdream-fit-checkpoint" : "tiny-prior";
    for (const char* key : {"format_version", "step"})
      if (r.metadata.count(key)) r.details.push_back({key, r.metadata.at(key)});
    std::map<std::string, int64_t> groups;  // "field.*" → elements
    for (const auto& [name, info] : f.header().tensors)
      groups[name.substr(0, name.find('.'))] += info.numel();
    for (const auto& [g, n] : groups) r.details.push_back({g + ".*", thousands(n) + " elements"});
    return;
  }
  std::optional<SdVersion> version;
  try {
    version = detect_original_sd_version(f.names(), path);
  } catch (const InputError& e) {
    const std::vector<std::string> names = f.names();
    const bool sdxl = std::any_of(names.begin(), names.end(), [](const std::string& n) {
      return n.rfind("conditioner.embedders.", 0) == 0;
    });
    r.family = sdxl ? "SDXL" : "unknown";
    r.details.push_back({"note", e.what()});
    return;
  }
  if (version) {
    r.family = sd_version_name(*version);
    r.details.push_back(
        {"layout", "original single file (model.diffusion_model / first_stage_model / cond_stage_model)"});
    inspect_original(f, *version, r);
    return;
  }
  if (f.contains("conv_in.weight") && f.contains("time_embedding.linear_1.weight"))
    r.family = "diffusers-unet";
  else if (f.contains("encoder.conv_in.weight") && f.contains("decoder.conv_in.weight"))
    r.family = "diffusers-vae";
  else if (f.contains("text_model.embeddings.token_embedding.weight"))
    r.family = "clip-text-encoder";
  else
    r.family = "unknown";
}

std::string weights_of(const fs::path& dir) {
  for (const char* name : {"diffusion_pytorch_model.safetensors", "diffusion_pytorch_model.fp16.safetensors",
                           "model.safetensors", "model.fp16.safetensors"})
    if (fs::exists(dir / name)) return (dir / name).string();
  return "";
}

void inspect_folder(const std::string& path, CheckpointInspection& r) {
  r.kind = "diffusers-folder";
  const fs::path dir(path);
  const json index = read_json_file((dir / "model_index.json").string());
  if (index.contains("_class_name")) r.details.push_back({"pipeline", value(index, "_class_name")});
  r.family = "unknown";
  for (const char* comp : {"tokenizer", "text_encoder", "unet", "vae", "scheduler"}) {
    auto it = index.find(comp);
    if (it == index.end() || !it->is_array() || it->size() != 2 || !(*it)[1].is_string()) {
      r.details.push_back({comp, "missing from model_index.json"});
      continue;
    }
    const std::string cls = (*it)[1].get<std::string>();
    const fs::path sub = dir / comp;
    std::string line = cls;
    if (!fs::is_directory(sub)) {
      r.details.push_back({comp, line + "; folder missing"});
      continue;
    }
    const std::string config_name =
        std::string(comp) == "scheduler" ? "scheduler_config.json" : "config.json";
    json cfg;
    if (fs::exists(sub / config_name)) cfg = read_json_file((sub / config_name).string());
    const std::string comp_s = comp;
    if (comp_s == "unet") {
      line += "; block_out_channels " + value(cfg, "block_out_channels") + ", layers_per_block " +
              value(cfg, "layers_per_block") + ", heads " +
              (cfg.contains("num_attention_heads") && !cfg["num_attention_heads"].is_null()
                   ? value(cfg, "num_attention_heads")
                   : value(cfg, "attention_head_dim")) +
              ", cross_attention_dim " + value(cfg, "cross_attention_dim") + ", linear projection " +
              value(cfg, "use_linear_projection") + ", sample_size " + value(cfg, "sample_size");
    } else if (comp_s == "vae") {
      line += "; block_out_channels " + value(cfg, "block_out_channels") + ", latent_channels " +
              value(cfg, "latent_channels") + ", scaling_factor " + value(cfg, "scaling_factor");
    } else if (comp_s == "text_encoder") {
      line += "; hidden " + value(cfg, "hidden_size") + ", layers " + value(cfg, "num_hidden_layers") +
              ", heads " + value(cfg, "num_attention_heads") + ", act " + value(cfg, "hidden_act");
      const std::string act = value(cfg, "hidden_act");
      r.family = act == "gelu" ? "SD2" : act == "quick_gelu" || act == "-" ? "SD1" : "unknown";
    } else if (comp_s == "scheduler") {
      line += "; prediction_type " + value(cfg, "prediction_type") + ", beta_schedule " +
              value(cfg, "beta_schedule") + ", timestep_spacing " + value(cfg, "timestep_spacing");
    } else if (comp_s == "tokenizer") {
      const bool files = fs::exists(sub / "vocab.json") && fs::exists(sub / "merges.txt");
      line += files ? "; vocab.json + merges.txt" : "; vocab.json/merges.txt missing";
    }
    if (comp_s != "tokenizer" && comp_s != "scheduler") {
      const std::string w = weights_of(sub);
      if (w.empty()) {
        line += "; no .safetensors weights";
      } else {
        const WeightsSummary s = summarize(SafetensorsFile::open(w));
        line += "; " + thousands(s.params) + " parameters in " + std::to_string(s.tensors) + " tensors (" +
                dtype_text(s.dtypes) + ")";
        r.tensors += s.tensors;
        r.params += s.params;
        for (const auto& [k, v] : s.dtypes) r.dtypes[k] += v;
      }
    }
    r.details.push_back({comp, line});
  }
}

}  // namespace

CheckpointInspection inspect_checkpoint(const std::string& path) {
  CheckpointInspection r;
  r.path = path;
  std::error_code ec;
  if (!fs::exists(path, ec)) throw InputError(path + ": no such file or folder");
  if (fs::is_directory(path)) {
    if (!fs::exists(fs::path(path) / "model_index.json"))
      throw InputError(path + ": a folder without model_index.json (not a diffusers pipeline)");
    inspect_folder(path, r);
    return r;
  }
  std::string ext = fs::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (ext == ".ckpt" || ext == ".bin" || ext == ".pt" || ext == ".pth" || ext == ".pkl") {
    r.kind = "pickle";
    r.family = "unknown";
    r.details.push_back({"note",
                         "a PyTorch pickle: not opened (unpickling can run arbitrary code); convert it to "
                         ".safetensors to use or inspect it"});
    return r;
  }
  inspect_file(path, r);
  return r;
}

json CheckpointInspection::to_json() const {
  json d = json::object();
  for (const auto& [k, v] : details) d[k] = v;
  return {{"path", path},     {"kind", kind},     {"family", family},     {"tensors", tensors},
          {"params", params}, {"dtypes", dtypes}, {"metadata", metadata}, {"details", d}};
}

std::string CheckpointInspection::to_text() const {
  std::string s = "path: " + path + "\nkind: " + kind + "\nfamily: " + family + "\n";
  if (kind != "pickle") {
    s += "tensors: " + std::to_string(tensors) + "\nparameters: " + thousands(params) + "\n";
    s += "dtypes: " + (dtypes.empty() ? std::string("-") : dtype_text(dtypes)) + "\n";
  }
  for (const auto& [k, v] : metadata) {
    // Long values (a run's config JSON) are cut to one readable line.
    std::string shown = v.size() > 160 ? v.substr(0, 157) + "..." : v;
    std::replace(shown.begin(), shown.end(), '\n', ' ');
    s += "metadata." + k + ": " + shown + "\n";
  }
  for (const auto& [k, v] : details) s += k + ": " + v + "\n";
  return s;
}

}  // namespace nd
