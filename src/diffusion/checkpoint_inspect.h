// What a checkpoint is, read from headers and configs only (no weights are loaded): `nerfdream inspect PATH`.
//
// A .safetensors file: tensor count, dtypes, total elements, metadata, and the family detected from the
// names/metadata: "SD1" / "SD2" (original single-file layout), "SDXL" (recognised, not supported),
// "tiny-prior" / "nerfdream-fit-checkpoint" (nerfdream's own checkpoints, by their metadata "format"),
// "diffusers-unet" / "diffusers-vae" / "clip-text-encoder" (one component of a diffusers folder), "unknown".
// A diffusers folder: each component of model_index.json with the sizes its config names and its weights'
// tensor/parameter counts; family "SD1" or "SD2" from the text encoder (quick_gelu CLIP / gelu OpenCLIP).
// A pickle (.ckpt, .bin, .pt, .pth): reported, never opened.
#pragma once
#include <cstdint>
#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace nd {

struct CheckpointInspection {
  std::string path;
  std::string kind;    // "safetensors" | "diffusers-folder" | "pickle"
  std::string family;  // see the top of this file
  int64_t tensors = 0;
  int64_t params = 0;                     // elements of every tensor (all weight files of a folder)
  std::map<std::string, int64_t> dtypes;  // dtype → number of tensors
  std::map<std::string, std::string> metadata;
  std::vector<std::pair<std::string, std::string>> details;  // ordered "key: value" lines

  nlohmann::json to_json() const;
  std::string to_text() const;  // the lines `nerfdream inspect` prints
};

// InputError naming the path when it does not exist or is neither a safetensors file, a pickle nor a
// folder with model_index.json; a malformed safetensors header gives the reader's one-line error.
CheckpointInspection inspect_checkpoint(const std::string& path);

}  // namespace nd
