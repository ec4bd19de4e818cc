// `nerfdream synth-dataset`: render a synth-world caption into a transforms.json dataset (train/test).
#include <cstdio>

#include "apps/commands.h"
#include "synth/dataset_writer.h"

namespace nd {

void add_synth_dataset_command(CLI::App& app, std::vector<Command>& commands, CommonOptions& common) {
  auto* cmd = app.add_subcommand(
      "synth-dataset",
      "Render a synth-world caption into a NeRF dataset (transforms_{train,test}.json + RGBA PNGs).");
  struct State {
    std::string caption, out;
    SynthDatasetOptions opt;
  };
  auto st = std::make_shared<State>();
  cmd->add_option("caption", st->caption, "e.g. \"a red sphere on top of a blue cube\"")->required();
  cmd->add_option("-o,--out", st->out, "Output directory (must not exist or be empty)")->required();
  cmd->add_option("--views", st->opt.n_train, "Training views")->capture_default_str();
  cmd->add_option("--test-views", st->opt.n_test, "Test views")->capture_default_str();
  cmd->add_option("--width", st->opt.width, "Image width")->capture_default_str();
  cmd->add_option("--height", st->opt.height, "Image height")->capture_default_str();
  cmd->add_option("--radius", st->opt.radius, "Camera distance to the origin")->capture_default_str();
  cmd->add_option("--fov", st->opt.fov_deg, "Vertical field of view, degrees")->capture_default_str();
  cmd->add_option("--supersample", st->opt.supersample, "s×s rays per pixel (antialiasing)")
      ->capture_default_str();
  cmd->add_option("--seed", st->opt.seed, "Camera seed")->capture_default_str();
  cmd->add_flag("--overwrite", st->opt.overwrite, "Replace a non-empty output directory");
  cmd->add_option("--threads", common.threads, "CPU threads (0 = all cores)")->capture_default_str();
  commands.push_back({cmd, [st]() -> int {
                        write_synth_dataset(st->caption, st->out, st->opt);
                        std::fprintf(stderr, "wrote %s: %d train + %d test views at %dx%d\n", st->out.c_str(),
                                     st->opt.n_train, st->opt.n_test, st->opt.width, st->opt.height);
                        return 0;
                      }});
}

}  // namespace nd
