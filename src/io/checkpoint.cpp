#include "io/checkpoint.h"

#include <torch/csrc/autograd/grad_mode.h>

#include "core/error.h"
#include "io/safetensors.h"

namespace nd {

void save_checkpoint(const std::string& path, const Checkpoint& ckpt, const CheckpointFormat& format) {
  std::map<std::string, std::string> meta = ckpt.extra;
  meta["format"] = format.id;
  meta["format_version"] = std::to_string(format.version);
  meta["config"] = ckpt.config.dump();
  meta["step"] = std::to_string(ckpt.step);
  save_safetensors(path, ckpt.tensors, meta);
}

Checkpoint load_checkpoint(const std::string& path, const CheckpointFormat& format) {
  SafetensorsFile file = SafetensorsFile::open(path);
  const auto& meta = file.metadata();
  auto field = [&](const std::string& key) -> const std::string& {
    auto it = meta.find(key);
    require(it != meta.end(),
            path + ": not a nerfdream " + format.what + " (no '" + key + "' in its metadata)");
    return it->second;
  };
  require(field("format") == format.id,
          path + ": not a nerfdream " + format.what + " (format '" + field("format") + "')");
  require(field("format_version") == std::to_string(format.version),
          path + ": " + format.what + " format version " + field("format_version") +
              " is not supported (this build reads " + std::to_string(format.version) + ")");
  Checkpoint ckpt;
  try {
    ckpt.config = nlohmann::json::parse(field("config"));
    ckpt.step = std::stoll(field("step"));
  } catch (const std::exception&) {
    throw InputError(path + ": corrupt checkpoint metadata (config or step)");
  }
  for (const auto& [k, v] : meta) ckpt.extra[k] = v;
  // Tensors keep their stored dtype (parameters are F32; generator states U8; counters I64).
  for (const auto& name : file.names()) ckpt.tensors[name] = file.load_as_stored(name);
  return ckpt;
}

void restore_tensors(const std::string& path, const std::map<std::string, at::Tensor>& saved,
                     const std::string& prefix, const std::map<std::string, at::Tensor>& params) {
  torch::NoGradGuard no_grad;
  for (const auto& [name, param] : params) {
    auto it = saved.find(prefix + name);
    require(it != saved.end(), path + ": incompatible checkpoint: no tensor '" + prefix + name + "'");
    require(it->second.sizes() == param.sizes(), path + ": incompatible checkpoint: '" + prefix + name +
                                                     "' has shape " + c10::str(it->second.sizes()) +
                                                     ", the model expects " + c10::str(param.sizes()));
    param.copy_(it->second);
  }
}

}  // namespace nd
