// `nerfdream sample "a red cube, front view" -n 8 -o grid.png`: images from the tiny prior (default) or,
// with --model, from a Stable Diffusion checkpoint.
#include <cstdio>

#include "apps/commands.h"
#include "apps/prior_options.h"
#include "core/error.h"
#include "diffusion/sd_pipeline.h"
#include "io/image_io.h"

namespace nd {

void add_sample_command(CLI::App& app, std::vector<Command>& commands, CommonOptions& common) {
  auto* cmd = app.add_subcommand("sample", "Sample images of a prompt from the diffusion prior.");
  struct State {
    std::string prompt, out;
    int n = 8, columns = 8, scale = 1;
    PriorCliOptions prior;
    SdSampleOptions sd;  // with --model
  };
  auto st = std::make_shared<State>();
  cmd->add_option("prompt", st->prompt, "e.g. \"a red cube, front view\"")->required();
  cmd->add_option("-o,--out", st->out, "Output PNG (a grid of the samples)")->required();
  cmd->add_option("-n,--num", st->n, "Number of images")->capture_default_str();
  cmd->add_option("--columns", st->columns, "Grid columns")->capture_default_str();
  cmd->add_option("--scale", st->scale, "Nearest-neighbour upscaling of the grid, for viewing")
      ->capture_default_str();
  st->prior.add_to(cmd);
  cmd->add_option(
      "--model", st->sd.model,
      "A Stable Diffusion checkpoint (diffusers folder or original-layout .safetensors) instead of "
      "the tiny prior");
  cmd->add_option("--negative", st->sd.negative_prompt, "Negative prompt (--model)");
  cmd->add_option("--height", st->sd.height, "Image height (--model; default the model's)");
  cmd->add_option("--width", st->sd.width, "Image width (--model; default the model's)");
  cmd->add_option("--tokenizer", st->sd.tokenizer_dir,
                  "Tokenizer folder for a single-file checkpoint (--model)");
  cmd->add_option("--model-config", st->sd.config_dir,
                  "Folder of component configs for a single file (--model)");
  cmd->add_option("--prediction-type", st->sd.prediction_type, "epsilon | v_prediction override (--model)");
  cmd->add_option("--threads", common.threads, "CPU threads (0 = all cores)")->capture_default_str();
  commands.push_back(
      {cmd, [st, cmd]() -> int {
         if (!st->sd.model.empty()) {
           SdSampleOptions sd = st->sd;
           sd.prompt = st->prompt;
           sd.num_images = st->n;
           sd.steps = st->prior.sample.steps;
           sd.cfg = cmd->count("--cfg") ? st->prior.sample.guidance_scale : 7.5;
           sd.seed = st->prior.sample.seed;
           sd.scheduler = cmd->count("--scheduler") ? st->prior.sample.scheduler : "";
           sd.out = st->out;
           sd.columns = cmd->count("--columns") ? st->columns : 0;
           return run_sd_sample(sd);
         }
         require(st->n >= 1 && st->n <= 1024, "-n must be in [1, 1024]");
         require(st->scale >= 1 && st->scale <= 32, "--scale must be in [1, 32]");
         require(st->columns >= 1, "--columns must be >= 1");
         const std::string path = st->prior.prior_path.empty() ? default_prior_path() : st->prior.prior_path;
         auto prior = TinyPrior::load(path);
         prior->tokenizer().encode(st->prompt);  // vocabulary errors before any work
         const std::vector<std::string> prompts(st->n, st->prompt);
         const auto views = st->prior.views(cmd, st->prompt, st->n, prior->config().views);
         // Images are sampled in batches of 32 (memory stays flat for large -n); the seed
         // of batch k is seed + k.
         std::vector<at::Tensor> tiles;
         for (int start = 0; start < st->n; start += 32) {
           const int count = std::min(32, st->n - start);
           PriorSampleOptions so = st->prior.sample;
           so.seed += start / 32;
           const std::vector<std::string> p(prompts.begin() + start, prompts.begin() + start + count);
           const std::vector<View> v =
               views.empty() ? std::vector<View>{}
                             : std::vector<View>(views.begin() + start, views.begin() + start + count);
           const at::Tensor images = sample_prior(*prior, p, v, so);
           for (int64_t i = 0; i < images.size(0); ++i) {
             at::Tensor tile = images[i].permute({1, 2, 0});
             if (st->scale > 1) tile = tile.repeat_interleave(st->scale, 0).repeat_interleave(st->scale, 1);
             tiles.push_back(tile);
           }
         }
         save_png(st->out, image_grid(tiles, st->columns));
         std::fprintf(stderr, "wrote %s: %d samples of \"%s\" (%d steps, cfg %.1f, seed %llu)\n",
                      st->out.c_str(), st->n, st->prompt.c_str(), st->prior.sample.steps,
                      st->prior.sample.guidance_scale,
                      static_cast<unsigned long long>(st->prior.sample.seed));
         return 0;
       }});
}

}  // namespace nd
