#include "diffusion/diffusers_config.h"

#include <fstream>
#include <set>
#include <sstream>

#include "core/error.h"
#include "io/safetensors.h"

namespace nd {
namespace {

using nlohmann::json;

std::string shape_str(at::IntArrayRef shape) {
  std::ostringstream ss;
  ss << "[";
  for (size_t i = 0; i < shape.size(); ++i) ss << (i ? ", " : "") << shape[i];
  ss << "]";
  return ss.str();
}

std::string join(const std::vector<std::string>& v) {
  std::string s;
  for (const auto& x : v) s += (s.empty() ? "" : ", ") + x;
  return s;
}

// Typed access to one diffusers config.json object; every error names the file and the key.
class Keys {
 public:
  Keys(const json& j, std::string source) : j_(j), source_(std::move(source)) {
    if (!j_.is_object()) throw InputError(source_ + ": expected a JSON object");
  }
  [[noreturn]] void fail(const std::string& key, const std::string& what) const {
    throw InputError(source_ + ": " + key + ": " + what);
  }
  // The value, or nullptr when the key is absent; InputError when absent and required.
  const json* find(const char* key, bool required) const {
    auto it = j_.find(key);
    if (it == j_.end()) {
      if (required) throw InputError(source_ + ": missing key '" + key + "'");
      return nullptr;
    }
    return &*it;
  }
  void get(const char* key, int& v, bool required = false, int min = 1) const {
    if (const json* x = find(key, required)) v = as_int(key, *x, min);
  }
  void get(const char* key, double& v, bool required = false) const {
    if (const json* x = find(key, required)) {
      if (!x->is_number()) fail(key, "expected a number, got " + x->dump());
      v = x->get<double>();
    }
  }
  // sample_size: an int, or [height, width] in some configs (informative only: the height is kept).
  void get_sample_size(int& v) const {
    const json* x = find("sample_size", false);
    if (x && x->is_array() && !x->empty())
      v = as_int("sample_size", x->front(), 1);
    else if (x && !x->is_null())
      get("sample_size", v);
  }
  void get(const char* key, bool& v) const {
    if (const json* x = find(key, false)) {
      if (!x->is_boolean()) fail(key, "expected true or false, got " + x->dump());
      v = x->get<bool>();
    }
  }
  // A string, or "" for null.
  void get(const char* key, std::string& v, bool required = false) const {
    if (const json* x = find(key, required)) {
      if (x->is_null()) {
        v.clear();
      } else if (x->is_string()) {
        v = x->get<std::string>();
      } else {
        fail(key, "expected a string, got " + x->dump());
      }
    }
  }
  std::vector<std::string> strings(const char* key) const {
    const json* x = find(key, true);
    if (!x->is_array() || x->empty()) fail(key, "expected a non-empty list of strings, got " + x->dump());
    std::vector<std::string> v;
    for (const json& e : *x) {
      if (!e.is_string()) fail(key, "expected a list of strings, got " + x->dump());
      v.push_back(e.get<std::string>());
    }
    return v;
  }
  // An int for every level, or a list with one int per level.
  std::vector<int> per_level(const char* key, size_t n, const json& x, int min = 1) const {
    if (x.is_array()) {
      if (x.size() != n)
        fail(key, "has " + std::to_string(x.size()) + " entries, expected one per block (" +
                      std::to_string(n) + ")");
      std::vector<int> v;
      for (const json& e : x) v.push_back(as_int(key, e, min));
      return v;
    }
    return std::vector<int>(n, as_int(key, x, min));
  }
  // Options this implementation does not have must keep diffusers' default (null / false / a value).
  void expect(const char* key, const json& default_value) const {
    const json* x = find(key, false);
    if (x && *x != default_value)
      fail(key, x->dump() + " is not supported (only " + default_value.dump() + ")");
  }

 private:
  int as_int(const char* key, const json& x, int min) const {
    // diffusers writes some integer options as floats (1.0): accept integral numbers.
    if (!x.is_number() || x.get<double>() != static_cast<double>(static_cast<int64_t>(x.get<double>())))
      fail(key, "expected an integer, got " + x.dump());
    const int64_t v = static_cast<int64_t>(x.get<double>());
    if (v < min || v > (1 << 24))
      fail(key, "expected an integer >= " + std::to_string(min) + ", got " + x.dump());
    return static_cast<int>(v);
  }
  const json& j_;
  std::string source_;
};

void check_block_types(const std::string& source, const char* key, const std::vector<std::string>& types,
                       const std::vector<std::string>& supported) {
  for (size_t i = 0; i < types.size(); ++i) {
    bool ok = false;
    for (const auto& s : supported) ok = ok || types[i] == s;
    if (!ok)
      throw InputError(source + ": " + key + "[" + std::to_string(i) + "]: unknown block type '" + types[i] +
                       "' (supported: " + join(supported) + ")");
  }
}

void check_act_fn(const Keys& k) {
  std::string act = "silu";
  k.get("act_fn", act);
  if (act != "silu" && act != "swish") k.fail("act_fn", "'" + act + "' is not supported (only silu)");
}

void check_groups(const std::string& source, int channels, int groups, const std::string& where) {
  if (channels % groups != 0)
    throw InputError(source + ": norm_num_groups " + std::to_string(groups) + " does not divide the " +
                     std::to_string(channels) + " channels of " + where);
}

}  // namespace

json read_json_file(const std::string& path) {
  std::ifstream f(path);
  if (!f) throw InputError(path + ": cannot open file");
  try {
    return json::parse(f);
  } catch (const json::exception& e) {
    throw InputError(path + ": not valid JSON (" + e.what() + ")");
  }
}

std::string diffusers_weights_path(const std::string& dir) {
  const std::string weights = dir + "/diffusion_pytorch_model.safetensors";
  if (std::ifstream(weights).good()) return weights;
  const std::string fp16 = dir + "/diffusion_pytorch_model.fp16.safetensors";
  if (std::ifstream(fp16).good()) return fp16;
  if (std::ifstream(dir + "/diffusion_pytorch_model.bin").good())
    throw InputError(dir +
                     "/diffusion_pytorch_model.bin: PyTorch pickle checkpoints are not supported; convert "
                     "the model to diffusion_pytorch_model.safetensors");
  throw InputError(weights + ": cannot open file");
}

// ------------------------------------------------------------------------------------------------- UNet

UNet2DConditionConfig UNet2DConditionConfig::from_json(const json& j, const std::string& source) {
  const Keys k(j, source);
  UNet2DConditionConfig c;
  k.get("in_channels", c.in_channels, true);
  k.get("out_channels", c.out_channels, true);
  k.get_sample_size(c.sample_size);
  k.get("center_input_sample", c.center_input_sample);
  c.down_block_types = k.strings("down_block_types");
  c.up_block_types = k.strings("up_block_types");
  // diffusers' get_down_block/get_up_block strip a "UNetRes" prefix.
  for (auto* types : {&c.down_block_types, &c.up_block_types})
    for (auto& t : *types)
      if (t.rfind("UNetRes", 0) == 0) t = t.substr(7);
  check_block_types(source, "down_block_types", c.down_block_types, {"CrossAttnDownBlock2D", "DownBlock2D"});
  check_block_types(source, "up_block_types", c.up_block_types, {"UpBlock2D", "CrossAttnUpBlock2D"});
  k.get("mid_block_type", c.mid_block_type);
  if (!c.mid_block_type.empty() && c.mid_block_type != "UNetMidBlock2DCrossAttn")
    k.fail("mid_block_type",
           "unknown block type '" + c.mid_block_type + "' (supported: UNetMidBlock2DCrossAttn, null)");

  const size_t n = c.down_block_types.size();
  const json* boc = k.find("block_out_channels", true);
  if (!boc->is_array()) k.fail("block_out_channels", "expected a list of integers, got " + boc->dump());
  c.block_out_channels = k.per_level("block_out_channels", n, *boc);
  c.layers_per_block = k.per_level("layers_per_block", n, *k.find("layers_per_block", true));

  // v0.25.1: num_attention_heads = num_attention_heads or attention_head_dim.
  const json* heads = k.find("num_attention_heads", false);
  const char* heads_key = "num_attention_heads";
  if (!heads || heads->is_null()) {
    heads = k.find("attention_head_dim", false);
    heads_key = "attention_head_dim";
    if (!heads)
      throw InputError(source + ": missing key 'attention_head_dim' (the number of heads per block)");
  }
  c.num_attention_heads = k.per_level(heads_key, n, *heads);
  c.cross_attention_dim = k.per_level("cross_attention_dim", n, *k.find("cross_attention_dim", true));
  if (const json* x = k.find("transformer_layers_per_block", false))
    c.transformer_layers_per_block = k.per_level("transformer_layers_per_block", n, *x);
  else
    c.transformer_layers_per_block.assign(n, 1);
  c.only_cross_attention.assign(n, false);
  if (const json* x = k.find("only_cross_attention", false)) {
    if (x->is_boolean()) {
      c.only_cross_attention.assign(n, x->get<bool>());
    } else if (x->is_array() && x->size() == n) {
      for (size_t i = 0; i < n; ++i) {
        if (!(*x)[i].is_boolean()) k.fail("only_cross_attention", "expected booleans, got " + x->dump());
        c.only_cross_attention[i] = (*x)[i].get<bool>();
      }
    } else {
      k.fail("only_cross_attention", "expected true, false or one boolean per block, got " + x->dump());
    }
  }
  k.get("use_linear_projection", c.use_linear_projection);
  k.get("upcast_attention", c.upcast_attention);
  if (const json* x = k.find("norm_num_groups", false); x && x->is_null())
    k.fail("norm_num_groups", "null (no output GroupNorm) is not supported");
  k.get("norm_num_groups", c.norm_num_groups);
  k.get("norm_eps", c.norm_eps);
  k.get("downsample_padding", c.downsample_padding, false, 0);
  k.get("mid_block_scale_factor", c.mid_block_scale_factor);
  k.get("resnet_time_scale_shift", c.resnet_time_scale_shift);
  k.get("conv_in_kernel", c.conv_in_kernel);
  k.get("conv_out_kernel", c.conv_out_kernel);
  k.get("flip_sin_to_cos", c.flip_sin_to_cos);
  k.get("freq_shift", c.freq_shift);
  if (const json* x = k.find("time_embedding_dim", false); x && !x->is_null())
    k.get("time_embedding_dim", c.time_embedding_dim);

  check_act_fn(k);
  k.expect("time_embedding_type", "positional");
  k.expect("time_embedding_act_fn", nullptr);
  k.expect("timestep_post_act", nullptr);
  k.expect("time_cond_proj_dim", nullptr);
  k.expect("class_embed_type", nullptr);
  k.expect("num_class_embeds", nullptr);
  k.expect("class_embeddings_concat", false);
  k.expect("addition_embed_type", nullptr);
  k.expect("encoder_hid_dim", nullptr);
  k.expect("encoder_hid_dim_type", nullptr);
  k.expect("dual_cross_attention", false);
  k.expect("attention_type", "default");
  k.expect("cross_attention_norm", nullptr);
  k.expect("reverse_transformer_layers_per_block", nullptr);
  c.validate(source);
  return c;
}

UNet2DConditionConfig UNet2DConditionConfig::from_file(const std::string& path) {
  return from_json(read_json_file(path), path);
}

void UNet2DConditionConfig::validate(const std::string& source) const {
  const size_t n = down_block_types.size();
  if (n == 0) throw InputError(source + ": down_block_types: empty");
  auto need_len = [&](const char* key, size_t len) {
    if (len != n)
      throw InputError(source + ": " + key + ": has " + std::to_string(len) + " entries, down_block_types " +
                       std::to_string(n));
  };
  need_len("up_block_types", up_block_types.size());
  need_len("block_out_channels", block_out_channels.size());
  need_len("layers_per_block", layers_per_block.size());
  need_len("attention_head_dim", num_attention_heads.size());
  need_len("cross_attention_dim", cross_attention_dim.size());
  need_len("transformer_layers_per_block", transformer_layers_per_block.size());
  need_len("only_cross_attention", only_cross_attention.size());
  for (int v : {in_channels, out_channels, norm_num_groups, conv_in_kernel, conv_out_kernel})
    if (v < 1) throw InputError(source + ": channel counts, groups and kernels must be positive");
  if (conv_in_kernel % 2 == 0 || conv_out_kernel % 2 == 0)
    throw InputError(source + ": conv_in_kernel/conv_out_kernel must be odd");
  if (!(norm_eps > 0)) throw InputError(source + ": norm_eps: must be positive");
  if (resnet_time_scale_shift != "default" && resnet_time_scale_shift != "scale_shift")
    throw InputError(source + ": resnet_time_scale_shift: '" + resnet_time_scale_shift +
                     "' is not supported (default, scale_shift)");
  if (block_out_channels[0] % 2 != 0)
    throw InputError(source + ": block_out_channels[0] must be even (sinusoidal time embedding)");
  auto check_heads = [&](int channels, int heads, size_t level) {
    if (channels % heads != 0)
      throw InputError(source + ": attention_head_dim[" + std::to_string(level) +
                       "] = " + std::to_string(heads) + " heads do not divide " + std::to_string(channels) +
                       " channels");
  };
  for (size_t i = 0; i < n; ++i) {
    const int out = block_out_channels[i], in = i ? block_out_channels[i - 1] : block_out_channels[0];
    check_groups(source, in, norm_num_groups, "down_blocks." + std::to_string(i));
    check_groups(source, out, norm_num_groups, "down_blocks." + std::to_string(i));
    if (down_block_types[i] == "CrossAttnDownBlock2D") check_heads(out, num_attention_heads[i], i);
  }
  if (!mid_block_type.empty()) check_heads(block_out_channels.back(), num_attention_heads.back(), n - 1);
  // Up block i (level n-1-i) concatenates skip connections: check the widths its resnets normalise.
  int prev_out = block_out_channels.back();
  for (size_t i = 0; i < n; ++i) {
    const size_t level = n - 1 - i;
    const int out = block_out_channels[level], in = block_out_channels[level ? level - 1 : 0];
    for (int r = 0; r <= layers_per_block[level]; ++r) {
      const int skip = r == layers_per_block[level] ? in : out;
      check_groups(source, (r == 0 ? prev_out : out) + skip, norm_num_groups,
                   "up_blocks." + std::to_string(i) + ".resnets." + std::to_string(r));
    }
    if (up_block_types[i] == "CrossAttnUpBlock2D") check_heads(out, num_attention_heads[level], level);
    prev_out = out;
  }
}

// -------------------------------------------------------------------------------------------------- VAE

AutoencoderKLConfig AutoencoderKLConfig::from_json(const json& j, const std::string& source) {
  const Keys k(j, source);
  AutoencoderKLConfig c;
  k.get("in_channels", c.in_channels, true);
  k.get("out_channels", c.out_channels, true);
  k.get("latent_channels", c.latent_channels, true);
  k.get_sample_size(c.sample_size);
  c.down_block_types = k.strings("down_block_types");
  c.up_block_types = k.strings("up_block_types");
  check_block_types(source, "down_block_types", c.down_block_types, {"DownEncoderBlock2D"});
  check_block_types(source, "up_block_types", c.up_block_types, {"UpDecoderBlock2D"});
  const json* boc = k.find("block_out_channels", true);
  if (!boc->is_array()) k.fail("block_out_channels", "expected a list of integers, got " + boc->dump());
  c.block_out_channels = k.per_level("block_out_channels", boc->size(), *boc);
  k.get("layers_per_block", c.layers_per_block, true);
  k.get("norm_num_groups", c.norm_num_groups);
  k.get("scaling_factor", c.scaling_factor);
  if (const json* x = k.find("shift_factor", false); x && !x->is_null())
    k.get("shift_factor", c.shift_factor);
  k.get("use_quant_conv", c.use_quant_conv);
  k.get("use_post_quant_conv", c.use_post_quant_conv);
  k.get("mid_block_add_attention", c.mid_block_add_attention);
  check_act_fn(k);
  c.validate(source);
  return c;
}

AutoencoderKLConfig AutoencoderKLConfig::from_file(const std::string& path) {
  return from_json(read_json_file(path), path);
}

void AutoencoderKLConfig::validate(const std::string& source) const {
  const size_t n = block_out_channels.size();
  if (n == 0) throw InputError(source + ": block_out_channels: empty");
  if (down_block_types.size() != n || up_block_types.size() != n)
    throw InputError(source + ": down_block_types/up_block_types need one entry per block_out_channels (" +
                     std::to_string(n) + ")");
  for (int v : {in_channels, out_channels, latent_channels, layers_per_block, norm_num_groups})
    if (v < 1)
      throw InputError(source + ": channel counts, layers_per_block and norm_num_groups must be positive");
  for (size_t i = 0; i < n; ++i)
    check_groups(source, block_out_channels[i], norm_num_groups, "level " + std::to_string(i));
  if (!(scaling_factor > 0)) throw InputError(source + ": scaling_factor: must be positive");
}

// ------------------------------------------------------------------------------------------------ loading

TensorSource tensor_source(const std::map<std::string, at::Tensor>& tensors, const std::string& source_name) {
  TensorSource src;
  src.name = source_name;
  for (const auto& kv : tensors) src.names.push_back(kv.first);
  src.shape = [&tensors, source_name](const std::string& n) {
    const at::Tensor& t = tensors.at(n);
    if (!at::isFloatingType(t.scalar_type()))
      throw InputError(source_name + ": tensor '" + n + "' has dtype " +
                       std::string(c10::toString(t.scalar_type())) + ", expected a float type");
    return t.sizes().vec();
  };
  src.load = [&tensors](const std::string& n) {
    return tensors.at(n).to(at::kCPU).to(at::kFloat).contiguous();
  };
  return src;
}

TensorSource tensor_source(const SafetensorsFile& file) {
  TensorSource src;
  src.name = file.path();
  src.names = file.names();
  src.shape = [&file](const std::string& n) {
    const TensorInfo& info = file.info(n);
    if (info.dtype != "F32" && info.dtype != "F16" && info.dtype != "BF16" && info.dtype != "F64")
      throw InputError(file.path() + ": tensor '" + n + "' has dtype " + info.dtype +
                       ", expected a float type");
    return info.shape;
  };
  src.load = [&file](const std::string& n) { return file.load(n, at::kFloat); };
  return src;
}

void load_parameters_strict(torch::nn::Module& module, const TensorSource& src, const std::string& prefix,
                            const StrictLoadOptions& options) {
  auto params = module.named_parameters(/*recurse=*/true);
  // Parameter name → stored name, built from the stored names under the prefix.
  std::map<std::string, std::string> stored_of;
  for (const std::string& name : src.names) {
    if (name.compare(0, prefix.size(), prefix) != 0) continue;
    const std::string rest = name.substr(prefix.size());
    const std::string param = options.rename ? options.rename(rest) : rest;
    if (!params.contains(param))
      throw InputError(src.name + ": unexpected tensor '" + name + "' (not a " + options.what +
                       " parameter)");
    auto [it, inserted] = stored_of.emplace(param, name);
    if (!inserted)
      throw InputError(src.name + ": tensors '" + it->second + "' and '" + name + "' both hold " +
                       options.what + " parameter '" + param + "'");
  }
  // First every check (nothing is read before the file is known to fit), then the copies.
  for (const auto& p : params) {
    auto it = stored_of.find(p.key());
    if (it == stored_of.end())
      throw InputError(src.name + ": missing tensor '" + prefix + p.key() + "' (" + options.what + ")");
    std::vector<int64_t> shape = src.shape(it->second);
    if (options.allow_squeeze && options.allow_squeeze(p.key()))
      while (shape.size() > static_cast<size_t>(p.value().dim()) && shape.back() == 1) shape.pop_back();
    if (at::IntArrayRef(shape) != p.value().sizes())
      throw InputError(src.name + ": tensor '" + it->second + "' has shape " +
                       shape_str(src.shape(it->second)) + ", the config needs " +
                       shape_str(p.value().sizes()));
  }
  at::NoGradGuard no_grad;
  for (auto& p : params) p.value().copy_(src.load(stored_of.at(p.key())).view(p.value().sizes()));
}

}  // namespace nd
