#include "diffusion/clip_text_encoder.h"

#include <fstream>
#include <functional>
#include <limits>
#include <set>
#include <sstream>

#include "core/error.h"
#include "io/safetensors.h"

namespace nd {
namespace {

std::string shape_str(at::IntArrayRef shape) {
  std::ostringstream ss;
  ss << "[";
  for (size_t i = 0; i < shape.size(); ++i) ss << (i ? ", " : "") << shape[i];
  ss << "]";
  return ss.str();
}

torch::nn::LayerNorm make_layer_norm(const CLIPTextConfig& c) {
  return torch::nn::LayerNorm(torch::nn::LayerNormOptions({c.hidden_size}).eps(c.layer_norm_eps));
}

// transformers: "text_model.embeddings.position_ids" is a buffer in some versions' checkpoints; not a weight.
const char* const kIgnoredTensor = "text_model.embeddings.position_ids";

// Where the tensors come from: a name list, a shape query and a loader (map in memory or a lazy file).
struct TensorSource {
  std::string name;  // for messages
  std::vector<std::string> names;
  // The stored shape; InputError when the tensor is not floating point.
  std::function<std::vector<int64_t>(const std::string&)> shape;
  std::function<at::Tensor(const std::string&)> load;  // float32
};

CLIPTextModel load_from_source(const TensorSource& src, const std::string& prefix,
                               const CLIPTextConfig& config) {
  config.validate(src.name);
  CLIPTextModel model(config);
  model->eval();
  const std::set<std::string> present(src.names.begin(), src.names.end());
  std::set<std::string> expected;
  auto params = model->named_parameters(/*recurse=*/true);
  // First every check (nothing is read before the file is known to fit), then the copies.
  for (const auto& p : params) {
    const std::string key = prefix + p.key();
    expected.insert(key);
    if (!present.count(key))
      throw InputError(src.name + ": missing tensor '" + key + "' (CLIP text encoder)");
    const std::vector<int64_t> shape = src.shape(key);
    if (at::IntArrayRef(shape) != p.value().sizes())
      throw InputError(src.name + ": tensor '" + key + "' has shape " + shape_str(shape) +
                       ", the config (hidden " + std::to_string(config.hidden_size) + ", intermediate " +
                       std::to_string(config.intermediate_size) + ") needs " + shape_str(p.value().sizes()));
  }
  for (const std::string& name : src.names) {
    if (name.compare(0, prefix.size(), prefix) != 0 || expected.count(name) ||
        name == prefix + kIgnoredTensor)
      continue;
    throw InputError(src.name + ": unexpected tensor '" + name +
                     "' (not a CLIPTextModel parameter; layers: " + std::to_string(config.num_layers) + ")");
  }
  at::NoGradGuard no_grad;
  for (auto& p : params) p.value().copy_(src.load(prefix + p.key()));
  return model;
}

}  // namespace

// ------------------------------------------------------------------------------------------- config

CLIPTextConfig CLIPTextConfig::from_json(const nlohmann::json& j, const std::string& source) {
  if (!j.is_object()) throw InputError(source + ": expected a JSON object");
  CLIPTextConfig c;
  auto get_int = [&](const char* key, int& value) {
    auto it = j.find(key);
    if (it == j.end()) return;
    if (!it->is_number_integer() || it->get<int64_t>() < 1 || it->get<int64_t>() > (1 << 24))
      throw InputError(source + ": " + key + ": expected a positive integer, got " + it->dump());
    value = it->get<int>();
  };
  get_int("vocab_size", c.vocab_size);
  get_int("hidden_size", c.hidden_size);
  get_int("num_hidden_layers", c.num_layers);
  get_int("num_attention_heads", c.num_heads);
  get_int("intermediate_size", c.intermediate_size);
  get_int("max_position_embeddings", c.max_positions);
  if (auto it = j.find("hidden_act"); it != j.end()) {
    if (!it->is_string()) throw InputError(source + ": hidden_act: expected a string, got " + it->dump());
    c.activation = it->get<std::string>();
  }
  if (auto it = j.find("layer_norm_eps"); it != j.end()) {
    if (!it->is_number()) throw InputError(source + ": layer_norm_eps: expected a number, got " + it->dump());
    c.layer_norm_eps = it->get<double>();
  }
  c.validate(source);
  return c;
}

CLIPTextConfig CLIPTextConfig::from_file(const std::string& config_json) {
  std::ifstream f(config_json);
  if (!f) throw InputError(config_json + ": cannot open file");
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(f);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(config_json + ": not valid JSON (" + e.what() + ")");
  }
  return from_json(j, config_json);
}

void CLIPTextConfig::validate(const std::string& source) const {
  if (activation != "quick_gelu" && activation != "gelu")
    throw InputError(source + ": hidden_act: '" + activation + "' is not supported (quick_gelu, gelu)");
  for (auto [key, value] : {std::pair<const char*, int>{"vocab_size", vocab_size},
                            {"hidden_size", hidden_size},
                            {"num_hidden_layers", num_layers},
                            {"num_attention_heads", num_heads},
                            {"intermediate_size", intermediate_size},
                            {"max_position_embeddings", max_positions}})
    if (value < 1) throw InputError(source + ": " + key + ": must be positive, got " + std::to_string(value));
  if (hidden_size % num_heads != 0)
    throw InputError(source + ": hidden_size " + std::to_string(hidden_size) +
                     " is not a multiple of num_attention_heads " + std::to_string(num_heads));
  if (!(layer_norm_eps > 0)) throw InputError(source + ": layer_norm_eps: must be positive");
}

// ------------------------------------------------------------------------------------------ modules

CLIPAttentionImpl::CLIPAttentionImpl(const CLIPTextConfig& c)
    : num_heads_(c.num_heads), head_dim_(c.head_dim()) {
  q_proj = register_module("q_proj", torch::nn::Linear(c.hidden_size, c.hidden_size));
  k_proj = register_module("k_proj", torch::nn::Linear(c.hidden_size, c.hidden_size));
  v_proj = register_module("v_proj", torch::nn::Linear(c.hidden_size, c.hidden_size));
  out_proj = register_module("out_proj", torch::nn::Linear(c.hidden_size, c.hidden_size));
}

at::Tensor CLIPAttentionImpl::forward(const at::Tensor& x, const at::Tensor& mask) {
  const int64_t B = x.size(0), L = x.size(1);
  // [B, L, H] → [B, heads, L, head_dim]; Q is scaled before the product, as transformers does.
  auto heads = [&](const at::Tensor& t) { return t.view({B, L, num_heads_, head_dim_}).transpose(1, 2); };
  const at::Tensor q = heads(q_proj(x) * std::pow(static_cast<double>(head_dim_), -0.5));
  const at::Tensor k = heads(k_proj(x));
  const at::Tensor v = heads(v_proj(x));
  const at::Tensor weights = at::softmax(at::matmul(q, k.transpose(-1, -2)) + mask, -1);  // [B, heads, L, L]
  const at::Tensor out = at::matmul(weights, v).transpose(1, 2).reshape({B, L, num_heads_ * head_dim_});
  return out_proj(out);
}

CLIPMLPImpl::CLIPMLPImpl(const CLIPTextConfig& c) : quick_gelu_(c.activation == "quick_gelu") {
  fc1 = register_module("fc1", torch::nn::Linear(c.hidden_size, c.intermediate_size));
  fc2 = register_module("fc2", torch::nn::Linear(c.intermediate_size, c.hidden_size));
}

at::Tensor CLIPMLPImpl::forward(const at::Tensor& x) {
  at::Tensor h = fc1(x);
  h = quick_gelu_ ? h * at::sigmoid(1.702 * h) : at::gelu(h);
  return fc2(h);
}

CLIPEncoderLayerImpl::CLIPEncoderLayerImpl(const CLIPTextConfig& c) {
  self_attn = register_module("self_attn", CLIPAttention(c));
  layer_norm1 = register_module("layer_norm1", make_layer_norm(c));
  mlp = register_module("mlp", CLIPMLP(c));
  layer_norm2 = register_module("layer_norm2", make_layer_norm(c));
}

at::Tensor CLIPEncoderLayerImpl::forward(const at::Tensor& x, const at::Tensor& mask) {
  const at::Tensor h = x + self_attn(layer_norm1(x), mask);
  return h + mlp(layer_norm2(h));
}

CLIPTextEmbeddingsImpl::CLIPTextEmbeddingsImpl(const CLIPTextConfig& c) {
  token_embedding = register_module("token_embedding", torch::nn::Embedding(c.vocab_size, c.hidden_size));
  position_embedding =
      register_module("position_embedding", torch::nn::Embedding(c.max_positions, c.hidden_size));
}

at::Tensor CLIPTextEmbeddingsImpl::forward(const at::Tensor& ids) {
  const at::Tensor positions = at::arange(ids.size(1), ids.options().dtype(at::kLong));
  return token_embedding(ids) + position_embedding(positions).unsqueeze(0);
}

CLIPEncoderImpl::CLIPEncoderImpl(const CLIPTextConfig& c) {
  layers = register_module("layers", torch::nn::ModuleList());
  for (int i = 0; i < c.num_layers; ++i) layers->push_back(CLIPEncoderLayer(c));
}

CLIPTextTransformerImpl::CLIPTextTransformerImpl(const CLIPTextConfig& c) {
  embeddings = register_module("embeddings", CLIPTextEmbeddings(c));
  encoder = register_module("encoder", CLIPEncoder(c));
  final_layer_norm = register_module("final_layer_norm", make_layer_norm(c));
}

CLIPTextModelImpl::CLIPTextModelImpl(const CLIPTextConfig& c) : config_(c) {
  config_.validate("CLIPTextConfig");
  text_model = register_module("text_model", CLIPTextTransformer(c));
}

CLIPTextOutput CLIPTextModelImpl::forward(const at::Tensor& ids_in) {
  TORCH_CHECK(ids_in.dim() == 2, "CLIPTextModel: ids must be [B, L], got ", ids_in.sizes());
  TORCH_CHECK(!at::isFloatingType(ids_in.scalar_type()), "CLIPTextModel: ids must be integers");
  const at::Tensor ids = ids_in.to(at::kLong);
  const int64_t L = ids.size(1);
  TORCH_CHECK(L >= 1 && L <= config_.max_positions, "CLIPTextModel: sequence length ", L, " not in [1, ",
              config_.max_positions, "]");
  TORCH_CHECK(
      ids.numel() == 0 || (ids.min().item<int64_t>() >= 0 && ids.max().item<int64_t>() < config_.vocab_size),
      "CLIPTextModel: token id outside [0, ", config_.vocab_size, ")");

  CLIPTextOutput out;
  at::Tensor h = text_model->embeddings(ids);
  out.hidden_states.push_back(h);
  // Causal mask as transformers builds it: the float minimum above the diagonal, 0 elsewhere.
  const at::Tensor mask = at::full({L, L}, std::numeric_limits<float>::lowest(), h.options()).triu(1);
  for (const auto& layer : *text_model->encoder->layers) {
    h = layer->as<CLIPEncoderLayer>()->forward(h, mask);
    out.hidden_states.push_back(h);
  }
  out.last_hidden_state = text_model->final_layer_norm(h);
  const at::Tensor eos = ids.argmax(-1);  // first position of the largest id
  out.pooled = out.last_hidden_state.index({at::arange(ids.size(0), eos.options()), eos});
  return out;
}

at::Tensor CLIPTextModelImpl::clip_skip_hidden_state(const CLIPTextOutput& out, int clip_skip) {
  const int n = static_cast<int>(out.hidden_states.size());
  if (clip_skip < 0 || clip_skip >= n)
    throw InputError("clip_skip: " + std::to_string(clip_skip) + " not in [0, " + std::to_string(n - 1) +
                     "]");
  if (clip_skip == 0) return out.last_hidden_state;
  return text_model->final_layer_norm(out.hidden_states[n - 1 - clip_skip]);
}

// ------------------------------------------------------------------------------------------ loading

CLIPTextModel load_clip_text_model_from(const std::map<std::string, at::Tensor>& tensors,
                                        const std::string& prefix, const CLIPTextConfig& config,
                                        const std::string& source_name) {
  TensorSource src;
  src.name = source_name;
  for (const auto& kv : tensors) src.names.push_back(kv.first);
  src.shape = [&](const std::string& n) {
    const at::Tensor& t = tensors.at(n);
    if (!at::isFloatingType(t.scalar_type()))
      throw InputError(source_name + ": tensor '" + n + "' has dtype " +
                       std::string(c10::toString(t.scalar_type())) + ", expected a float type");
    return t.sizes().vec();
  };
  src.load = [&](const std::string& n) { return tensors.at(n).to(at::kFloat); };
  return load_from_source(src, prefix, config);
}

CLIPTextModel load_clip_text_model_from(const SafetensorsFile& file, const std::string& prefix,
                                        const CLIPTextConfig& config) {
  TensorSource src;
  src.name = file.path();
  src.names = file.names();
  src.shape = [&](const std::string& n) {
    const TensorInfo& info = file.info(n);
    if (info.dtype != "F32" && info.dtype != "F16" && info.dtype != "BF16" && info.dtype != "F64")
      throw InputError(file.path() + ": tensor '" + n + "' has dtype " + info.dtype +
                       ", expected a float type");
    return info.shape;
  };
  src.load = [&](const std::string& n) { return file.load(n, at::kFloat); };
  return load_from_source(src, prefix, config);
}

CLIPTextModel load_clip_text_model(const std::string& dir) {
  const CLIPTextConfig config = CLIPTextConfig::from_file(dir + "/config.json");
  std::string weights = dir + "/model.safetensors";
  if (!std::ifstream(weights).good()) {
    const std::string fp16 = dir + "/model.fp16.safetensors";
    if (std::ifstream(fp16).good()) {
      weights = fp16;
    } else if (std::ifstream(dir + "/pytorch_model.bin").good()) {
      throw InputError(dir +
                       "/pytorch_model.bin: PyTorch pickle checkpoints are not supported; convert the "
                       "text encoder to model.safetensors");
    } else {
      throw InputError(weights + ": cannot open file");
    }
  }
  return load_clip_text_model_from(SafetensorsFile::open(weights), "", config);
}

}  // namespace nd
