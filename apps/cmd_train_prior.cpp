// `nerfdream train-prior`: train the tiny text-to-image prior on the synth world (prior/prior_trainer.h).
#include <cstdio>

#include "apps/commands.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/number_list.h"
#include "prior/prior_trainer.h"

namespace nd {

void add_train_prior_command(CLI::App& app, std::vector<Command>& commands, CommonOptions& common) {
  auto* cmd =
      app.add_subcommand("train-prior", "Train the tiny text-to-image diffusion prior on the synth world.");
  struct State {
    PriorTrainOptions opt;
    std::string channels = "48,96,128", attention = "0,0,1", kind_mix = "0.4,0.4,0.2";
    bool v_prediction = false, no_progress = false;
  };
  auto st = std::make_shared<State>();
  auto& o = st->opt;
  cmd->add_option("-o,--out", o.out_dir, "Run directory (checkpoint, prior.safetensors, sample grids)")
      ->required();
  cmd->add_flag("--resume", o.resume, "Continue the run in --out from its checkpoint (to --steps in total)");
  cmd->add_option("--init", o.init_from,
                  "Start from these prior weights (e.g. models/tiny-prior/prior.safetensors)");
  cmd->add_option("--steps", o.steps, "Total training steps")->capture_default_str();
  cmd->add_option("--max-minutes", o.max_minutes,
                  "Stop (with a checkpoint) after this many minutes (0 = no limit)")
      ->capture_default_str();
  cmd->add_option("--batch", o.batch, "Images per step")->capture_default_str();
  cmd->add_option("--lr", o.lr, "Adam learning rate (after warm-up)")->capture_default_str();
  cmd->add_option("--warmup", o.warmup_steps, "Linear warm-up steps")->capture_default_str();
  cmd->add_option("--ema-decay", o.ema_decay, "EMA decay of the saved weights")->capture_default_str();
  cmd->add_option("--caption-dropout", o.caption_dropout, "Probability of the empty prompt (for CFG)")
      ->capture_default_str();
  cmd->add_option("--view-dropout", o.view_dropout, "Probability of no camera")->capture_default_str();
  cmd->add_option("--min-snr-gamma", o.min_snr_gamma, "Min-SNR loss weighting γ")->capture_default_str();
  cmd->add_option("--x0-weight-max", o.x0_weight_max,
                  "At high noise weigh the x0 error fully down to SNR 1/this (0 = min-SNR alone)")
      ->capture_default_str();
  cmd->add_option("--high-noise-fraction", o.high_noise_fraction,
                  "Share of each batch with t from the schedule's upper half")
      ->capture_default_str();
  cmd->add_option("--seed", o.seed, "Seed of the training randomness")->capture_default_str();
  cmd->add_option("--res", o.model.resolution, "Image resolution")->capture_default_str();
  cmd->add_option("--channels", st->channels, "UNet channels per level")->capture_default_str();
  cmd->add_option("--attention", st->attention, "Transformer at each level (0/1 per level)")
      ->capture_default_str();
  cmd->add_option("--layers", o.model.unet.layers_per_level, "Resnets per level")->capture_default_str();
  cmd->add_option("--patch", o.model.unet.patch, "Pixel-unshuffle patch size")->capture_default_str();
  cmd->add_option("--text-width", o.model.text.width, "Text encoder width")->capture_default_str();
  cmd->add_option("--text-layers", o.model.text.layers, "Text encoder layers")->capture_default_str();
  cmd->add_flag("--v-prediction", st->v_prediction, "Predict v instead of ε");
  cmd->add_option("--data-size", o.data.size, "Dataset images")->capture_default_str();
  cmd->add_option("--data-seed", o.data.seed, "Dataset seed")->capture_default_str();
  cmd->add_option(
         "--data-mix", st->kind_mix,
         "Caption kinds' weights: singles,stacks,named (named objects are the only azimuth-dependent ones)")
      ->capture_default_str();
  cmd->add_option("--only-caption", o.only_captions,
                  "Train on this caption's images only (canonical, e.g. \"a chair\"; repeat for more)");
  cmd->add_option("--data", o.data_path, "Dataset cache file: loaded when it exists, else written");
  cmd->add_option("--sample-every", o.sample_every, "Steps between sample grids (0 = never)")
      ->capture_default_str();
  cmd->add_option("--checkpoint-every", o.checkpoint_every, "Steps between checkpoints")
      ->capture_default_str();
  cmd->add_flag("--no-progress", st->no_progress, "No progress bar");
  cmd->add_option("--threads", common.threads, "CPU threads (0 = all cores)")->capture_default_str();
  commands.push_back({cmd, [st, cmd]() -> int {
                        PriorTrainOptions opt = st->opt;
                        opt.model.unet.channels = parse_int_list(st->channels, "--channels");
                        opt.model.unet.attention.clear();
                        for (int a : parse_int_list(st->attention, "--attention"))
                          opt.model.unet.attention.push_back(a != 0);
                        opt.data.kind_mix = parse_kind_mix(st->kind_mix, "--data-mix");
                        if (st->v_prediction) opt.model.prediction_type = "v_prediction";
                        opt.model = TinyPriorConfig::from_json(opt.model.to_json());  // validate
                        opt.progress = !st->no_progress;
                        opt.interrupt = interrupt_on_sigint();
                        const PriorTrainResult r = train_prior(opt);
                        std::fprintf(stderr,
                                     "%s: %lld steps (%lld in total) in %.1f s, %.1f images/s, loss %.4f\n"
                                     "wrote %s/{prior.safetensors,checkpoint.safetensors}\n",
                                     r.interrupted ? "interrupted" : "done", (long long)r.steps_done,
                                     (long long)r.step, r.seconds, r.images_per_second, r.final_loss,
                                     opt.out_dir.c_str());
                        return r.interrupted ? 130 : 0;
                      }});
}

}  // namespace nd
