// `nerfdream img2img IN.png "prompt" --strength 0.6 -o OUT.png`: SDEdit with the tiny prior — noise the
// image to the strength, then denoise it under the prompt.
#include <cstdio>

#include "apps/commands.h"
#include "apps/prior_options.h"
#include "core/error.h"
#include "io/image_io.h"

namespace nd {

void add_img2img_command(CLI::App& app, std::vector<Command>& commands, CommonOptions& common) {
  auto* cmd =
      app.add_subcommand("img2img", "Re-imagine an image under a prompt (SDEdit) with the diffusion prior.");
  struct State {
    std::string input, prompt, out;
    double strength = 0.6;
    PriorCliOptions prior;
  };
  auto st = std::make_shared<State>();
  cmd->add_option("input", st->input, "Input PNG or JPEG (RGBA is composited on white)")->required();
  cmd->add_option("prompt", st->prompt, "e.g. \"a red cube, front view\"")->required();
  cmd->add_option("-o,--out", st->out, "Output PNG")->required();
  cmd->add_option("--strength", st->strength, "How far to noise the input, in (0, 1]")->capture_default_str();
  st->prior.add_to(cmd);
  cmd->add_option("--threads", common.threads, "CPU threads (0 = all cores)")->capture_default_str();
  commands.push_back({cmd, [st, cmd]() -> int {
                        require(st->strength > 0 && st->strength <= 1,
                                "--strength must be in (0, 1], got " + std::to_string(st->strength));
                        at::Tensor image = load_image(st->input);  // uint8 [H,W,C]
                        const std::string path =
                            st->prior.prior_path.empty() ? default_prior_path() : st->prior.prior_path;
                        auto prior = TinyPrior::load(path);
                        prior->tokenizer().encode(st->prompt);
                        const int64_t r = prior->config().resolution;
                        require(image.size(0) == image.size(1) && image.size(0) % r == 0,
                                st->input + ": the image must be square with a side that is a multiple of " +
                                    std::to_string(r) + " (the prior's resolution); it is " +
                                    std::to_string(image.size(1)) + "x" + std::to_string(image.size(0)));
                        image = downscale_image(image, static_cast<int>(image.size(0) / r));
                        at::Tensor rgb = image.to(at::kFloat) / 255;
                        if (rgb.size(2) == 4) {
                          const at::Tensor a = rgb.narrow(2, 3, 1);
                          rgb = rgb.narrow(2, 0, 3) * a + (1 - a);
                        }
                        const auto views = st->prior.views(cmd, st->prompt, 1, prior->config().views);
                        const at::Tensor out =
                            img2img_prior(*prior, rgb.permute({2, 0, 1}).unsqueeze(0), {st->prompt}, views,
                                          st->strength, st->prior.sample);
                        save_png(st->out, out[0].permute({1, 2, 0}));
                        std::fprintf(stderr, "wrote %s (strength %.2f, %d steps)\n", st->out.c_str(),
                                     st->strength, st->prior.sample.steps);
                        return 0;
                      }});
}

}  // namespace nd
