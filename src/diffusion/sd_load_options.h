// How StableDiffusionPipeline::load finds what a single-file checkpoint lacks (diffusion/sd_pipeline.h), in a
// header of its own so that option structs elsewhere (GenerateOptions) can hold it without pulling in the
// models.
#pragma once
#include <string>

namespace nd {

struct SdLoadOptions {
  std::string tokenizer_dir;    // single file: vocab.json + merges.txt ("" = look beside the file)
  std::string config_dir;       // single file: a diffusers-style folder; each of unet/config.json,
                                // vae/config.json, text_encoder/config.json, scheduler/scheduler_config.json
                                // and tokenizer/ it holds replaces what would be inferred
  std::string prediction_type;  // "" = the scheduler config's; "epsilon" | "v_prediction" overrides it
  bool verbose = true;          // one line on stderr saying where a single file's missing parts came from
};

}  // namespace nd
