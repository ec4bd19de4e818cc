// nerfdream: one binary, one subcommand per task. Bad input ends in one clear line on stderr and exit 2.
#include <c10/util/Exception.h>

#include <cstdio>
#include <exception>

#include "apps/commands.h"
#include "core/error.h"
#include "core/threads.h"

int main(int argc, char** argv) {
  CLI::App app{"nerfdream: text/images → 3D, by distilling a diffusion prior or fitting photos into a NeRF."};
  app.require_subcommand(1);
  app.set_version_flag("--version", "nerfdream 0.1.0");
  nd::CommonOptions common;
  std::vector<nd::Command> commands;
  nd::add_generate_command(app, commands, common);
  nd::add_eval_3d_command(app, commands, common);
  nd::add_fit_command(app, commands, common);
  nd::add_synth_dataset_command(app, commands, common);
  nd::add_inspect_command(app, commands, common);
  nd::add_train_prior_command(app, commands, common);
  nd::add_train_classifier_command(app, commands, common);
  nd::add_eval_prior_command(app, commands, common);
  nd::add_sample_command(app, commands, common);
  nd::add_img2img_command(app, commands, common);
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    // One line, like every other input error.
    std::fprintf(stderr, "nerfdream: error: %s (see --help)\n", e.what());
    return 2;
  }
  try {
    nd::set_threads(common.threads);
    nd::keep_freed_memory();
    for (auto& c : commands)
      if (c.app->parsed()) return c.run();
  } catch (const nd::InputError& e) {
    std::fprintf(stderr, "nerfdream: error: %s\n", e.what());
    return 2;
  } catch (const c10::Error& e) {
    std::fprintf(stderr, "nerfdream: internal error: %s\n", e.what_without_backtrace());
    return 1;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "nerfdream: error: %s\n", e.what());
    return 1;
  }
  return 1;
}
