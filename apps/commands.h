// Each subcommand lives in its own cmd_<name>.cpp and registers itself on the CLI11 app.
#pragma once
#include <CLI/CLI.hpp>
#include <functional>
#include <vector>

namespace nd {

struct Command {
  CLI::App* app;
  std::function<int()> run;  // returns the process exit code; throws InputError on bad input
};

// Options every command shares.
struct CommonOptions {
  int threads = 0;  // 0 = all cores
};

void add_fit_command(CLI::App& app, std::vector<Command>& commands, CommonOptions& common);
void add_generate_command(CLI::App& app, std::vector<Command>& commands, CommonOptions& common);
void add_eval_3d_command(CLI::App& app, std::vector<Command>& commands, CommonOptions& common);
void add_train_prior_command(CLI::App& app, std::vector<Command>& commands, CommonOptions& common);
void add_sample_command(CLI::App& app, std::vector<Command>& commands, CommonOptions& common);
void add_img2img_command(CLI::App& app, std::vector<Command>& commands, CommonOptions& common);
void add_synth_dataset_command(CLI::App& app, std::vector<Command>& commands, CommonOptions& common);
void add_train_classifier_command(CLI::App& app, std::vector<Command>& commands, CommonOptions& common);
void add_eval_prior_command(CLI::App& app, std::vector<Command>& commands, CommonOptions& common);
void add_inspect_command(CLI::App& app, std::vector<Command>& commands, CommonOptions& common);

}  // namespace nd
