// `nerfdream eval-prior`: sample a fixed set of captions × views from the tiny prior, score the samples with
// the synth classifier, and classify real renders zero-shot by the prior's diffusion loss
// (prior/prior_eval.h).
#include <cstdio>

#include "apps/commands.h"
#include "io/safetensors.h"
#include "prior/prior_eval.h"

namespace nd {

void add_eval_prior_command(CLI::App& app, std::vector<Command>& commands, CommonOptions& common) {
  auto* cmd =
      app.add_subcommand("eval-prior",
                         "Score the tiny prior: shape/color/view accuracy of its samples, by the synth "
                         "classifier, and zero-shot accuracy by its diffusion loss.");
  struct State {
    std::string prior, classifier;
    PriorEvalOptions opt;
    bool list = false, json = false, no_camera = false, no_progress = false, no_zero_shot = false;
  };
  auto st = std::make_shared<State>();
  cmd->add_option("--prior", st->prior,
                  "Prior weights (default: the shipped models/tiny-prior/prior.safetensors)");
  cmd->add_option("--classifier", st->classifier,
                  "Classifier weights (default: models/synth-classifier/classifier.safetensors)");
  cmd->add_option("--steps", st->opt.steps, "DDIM steps per sample")->capture_default_str();
  cmd->add_option("--eta", st->opt.eta, "DDIM eta (0 = deterministic, 1 = stochastic)")
      ->capture_default_str();
  cmd->add_option("--cfg", st->opt.guidance_scale, "Classifier-free guidance scale")->capture_default_str();
  cmd->add_option("--batch", st->opt.batch, "Prompts per sampling batch")->capture_default_str();
  cmd->add_option("--seed", st->opt.seed, "Sampling seed (batch k uses seed + k)")->capture_default_str();
  cmd->add_flag("--json", st->json, "End with one JSON line of the results");
  cmd->add_flag("--no-camera", st->no_camera, "Sample without camera conditioning (the view word only)");
  cmd->add_flag("--quick", st->opt.quick, "A small subset (8 samples, 8 renders × 4 timesteps zero-shot)");
  cmd->add_flag("--list", st->list, "List every sample with the classifier's reading");
  cmd->add_flag("--no-zero-shot", st->no_zero_shot, "Skip the zero-shot classification of real renders");
  cmd->add_flag("--no-progress", st->no_progress, "No progress bars");
  cmd->add_option("--threads", common.threads, "CPU threads (0 = all cores)")->capture_default_str();
  commands.push_back({cmd, [st]() -> int {
                        PriorEvalOptions opt = st->opt;
                        opt.camera = !st->no_camera;
                        opt.zero_shot = !st->no_zero_shot;
                        opt.progress = !st->no_progress;
                        const std::string prior_path = st->prior.empty() ? default_prior_path() : st->prior;
                        const std::string classifier_path =
                            st->classifier.empty() ? default_classifier_path() : st->classifier;
                        auto prior = TinyPrior::load(prior_path);
                        SynthClassifier classifier = load_classifier(classifier_path);
                        const auto& meta = SafetensorsFile::open(prior_path).metadata();
                        const auto step = meta.find("step");
                        std::printf("prior: %s (step %s)\nclassifier: %s\n", prior_path.c_str(),
                                    step == meta.end() ? "?" : step->second.c_str(), classifier_path.c_str());
                        const PriorEvalResult r = evaluate_prior(*prior, classifier, opt);
                        if (st->list) std::printf("%s", format_prior_eval_samples(r).c_str());
                        std::printf("%s", format_prior_eval(r).c_str());
                        if (st->json) std::printf("%s\n", prior_eval_json_line(r).c_str());
                        return 0;
                      }});
}

}  // namespace nd
