// `nerfdream train-classifier`: train the synth classifier that `eval-prior` scores samples with
// (prior/synth_classifier.h), on exact synth renders, and report its held-out accuracy.
#include <cstdio>
#include <filesystem>

#include "apps/commands.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "core/progress.h"
#include "prior/synth_classifier.h"

namespace nd {

void add_train_classifier_command(CLI::App& app, std::vector<Command>& commands, CommonOptions& common) {
  auto* cmd = app.add_subcommand(
      "train-classifier",
      "Train the synth classifier (object, shapes, colors, view word) that eval-prior uses.");
  struct State {
    ClassifierTrainOptions opt;
    std::string out, evaluate;
    bool no_progress = false, no_augment = false;
  };
  auto st = std::make_shared<State>();
  auto& o = st->opt;
  o.data.size = 80000;
  o.data.seed = 1000;  // not the prior's data seed (0): the classifier must not have seen its images
  cmd->add_option("-o,--out", st->out, "Weights file (.safetensors)");
  cmd->add_option("--evaluate", st->evaluate,
                  "Train nothing: report this weights file's accuracy on the held-out renders");
  cmd->add_option("--steps", o.steps, "Training steps")->capture_default_str();
  cmd->add_option("--batch", o.batch, "Images per step")->capture_default_str();
  cmd->add_option("--lr", o.lr, "Adam learning rate (cosine decay)")->capture_default_str();
  cmd->add_option("--data-size", o.data.size, "Training renders")->capture_default_str();
  cmd->add_option("--heldout-size", o.heldout_size, "Held-out renders (seed --seed + 1)")
      ->capture_default_str();
  cmd->add_option("--seed", o.data.seed, "Seed of the training renders, the initialisation and the batches")
      ->capture_default_str();
  cmd->add_flag("--no-augment", st->no_augment, "Train on the clean renders only");
  cmd->add_flag("--no-progress", st->no_progress, "No progress bar");
  cmd->add_option("--threads", common.threads, "CPU threads (0 = all cores)")->capture_default_str();
  commands.push_back({cmd, [st]() -> int {
                        ClassifierTrainOptions opt = st->opt;
                        if (!st->evaluate.empty()) {
                          SynthClassifier model = load_classifier(st->evaluate);
                          PriorDatasetOptions h = opt.data;
                          h.seed = opt.data.seed + 1;
                          h.size = opt.heldout_size;
                          const PriorDataset heldout = make_prior_dataset(h);
                          std::printf("%s: held-out accuracy (%lld renders, seed %llu):\n",
                                      st->evaluate.c_str(), (long long)h.size, (unsigned long long)h.seed);
                          for (const auto& [name, acc] : classifier_accuracy(model, heldout))
                            std::printf("  %-22s %.4f\n", name.c_str(), acc);
                          return 0;
                        }
                        require(!st->out.empty(), "train-classifier: --out is required (or --evaluate FILE)");
                        opt.seed = opt.data.seed;
                        opt.augment = !st->no_augment;
                        opt.progress = !st->no_progress;
                        opt.interrupt = interrupt_on_sigint();
                        const std::filesystem::path out(st->out);
                        if (out.has_parent_path()) std::filesystem::create_directories(out.parent_path());
                        ClassifierTrainResult r = train_synth_classifier(opt);
                        if (r.interrupted) {
                          std::fprintf(stderr, "interrupted after %lld steps: nothing written\n",
                                       (long long)r.steps_done);
                          return 130;
                        }
                        nlohmann::json heldout(r.heldout);
                        nlohmann::json training = {{"steps", opt.steps},
                                                   {"batch", opt.batch},
                                                   {"lr", opt.lr},
                                                   {"data_size", opt.data.size},
                                                   {"data_seed", opt.data.seed},
                                                   {"heldout_size", opt.heldout_size},
                                                   {"heldout_seed", opt.data.seed + 1},
                                                   {"augment", opt.augment},
                                                   {"train_seconds", r.train_seconds}};
                        save_classifier(st->out, r.model,
                                        {{"trained_by", "nerfdream train-classifier"},
                                         {"training", training.dump()},
                                         {"heldout_accuracy", heldout.dump()}});
                        std::printf("trained %lld steps in %s (renders %s), final loss %.4f\n",
                                    (long long)r.steps_done, format_duration(r.train_seconds).c_str(),
                                    format_duration(r.data_seconds).c_str(), r.final_loss);
                        std::printf("held-out accuracy (%lld renders, seed %llu):\n",
                                    (long long)opt.heldout_size, (unsigned long long)(opt.data.seed + 1));
                        for (const auto& [name, acc] : r.heldout)
                          std::printf("  %-22s %.4f\n", name.c_str(), acc);
                        std::printf("wrote %s\n", st->out.c_str());
                        return 0;
                      }});
}

}  // namespace nd
