// `nerfdream inspect PATH`: what a checkpoint is (a safetensors file or a diffusers folder), from its headers
// and configs alone.
#include <cstdio>

#include "apps/commands.h"
#include "diffusion/checkpoint_inspect.h"

namespace nd {

void add_inspect_command(CLI::App& app, std::vector<Command>& commands, CommonOptions& common) {
  auto* cmd = app.add_subcommand(
      "inspect",
      "Describe a checkpoint: tensor count, dtypes, parameters, metadata and the detected family (SD1, SD2, "
      "tiny-prior, nerfdream-fit-checkpoint, ...) of a .safetensors file, or the components of a diffusers "
      "folder. Reads headers and configs only.");
  struct State {
    std::string path;
    bool json = false;
  };
  auto st = std::make_shared<State>();
  cmd->add_option("path", st->path, "A .safetensors file or a diffusers folder (with model_index.json)")
      ->required();
  cmd->add_flag("--json", st->json, "Print one JSON object instead of text");
  commands.push_back({cmd, [st]() -> int {
                        const CheckpointInspection r = inspect_checkpoint(st->path);
                        if (st->json)
                          std::printf("%s\n", r.to_json().dump().c_str());
                        else
                          std::printf("%s", r.to_text().c_str());
                        return 0;
                      }});
}

}  // namespace nd
