// `nerfdream generate "a red mushroom"`: text → NeRF (score distillation or the iterative dataset update,
// on the tiny prior or a Stable Diffusion checkpoint) → mesh files, views and metrics (pipeline/generate.h).
#include <cctype>
#include <cstdio>
#include <filesystem>

#include "apps/commands.h"
#include "apps/config_options.h"
#include "core/error.h"
#include "core/interrupt.h"
#include "pipeline/generate.h"

namespace nd {
namespace {

// The config key each flag sets (for --config files, which flags then override).
const FlagKeys kFlagKeys = {
    {"prompt", "/prompt"},
    {"--method", "/method"},
    {"--model", "/model"},
    {"--negative", "/negative_prompt"},
    {"--render-res", "/render_resolution"},
    {"--idu-views", "/idu/views"},
    {"--idu-steps-per-view", "/idu/steps_per_view"},
    {"--idu-strength", "/idu/strength"},
    {"--idu-refine-strength", "/idu/refine_strength"},
    {"--idu-cfg", "/idu/guidance_scale"},
    {"--steps", "/optim/steps"},
    {"--seed", "/seed"},
    {"--cfg", "/guidance/guidance_scale"},
    {"--t-min", "/guidance/t_min"},
    {"--t-max", "/guidance/t_max"},
    {"--t-max-end", "/guidance/t_max_end"},
    {"--views-per-step", "/views_per_step"},
    {"--lr-grid", "/optim/lr_grid"},
    {"--lr-mlp", "/optim/lr_mlp"},
    {"--albedo-warmup", "/shading/albedo_warmup_steps"},
    {"--opacity-weight", "/regularizers/opacity"},
    {"--entropy-weight", "/regularizers/entropy"},
    {"--orientation-weight", "/regularizers/orientation"},
    {"--mesh-res", "/mesh/resolution"},
    {"--mesh-threshold", "/mesh/density_threshold"},
    {"--simplify", "/mesh/simplify_ratio"},
    {"--max-triangles", "/mesh/max_triangles"},
};

}  // namespace

void add_generate_command(CLI::App& app, std::vector<Command>& commands, CommonOptions& common) {
  auto* cmd =
      app.add_subcommand("generate", "Text → 3D: distil the diffusion prior into a NeRF, export a mesh.");
  struct State {
    GenerateConfig cfg;
    GenerateOptions opt;
    std::string config_file, resume;
    bool no_camera = false, no_progress = false;
  };
  auto st = std::make_shared<State>();
  auto& c = st->cfg;
  cmd->add_option("prompt", c.prompt,
                  "What to make, e.g. \"a red mushroom\" (the tiny prior knows the synth world's words)");
  cmd->add_option("-o,--out", st->opt.out_dir, "Output directory (default: outputs/<prompt>)");
  cmd->add_flag("--overwrite", st->opt.overwrite, "Replace an existing output directory");
  cmd->add_option("--resume", st->resume, "Continue the run in this directory from its checkpoint");
  cmd->add_option("--config", st->config_file, "JSON config (flags override it)");
  cmd->add_option("--prior", st->opt.prior_path,
                  "Tiny prior weights (default: the shipped models/tiny-prior)");
  cmd->add_option(
         "--method", c.method,
         "sds (score distillation) | idu (iterative dataset update: sample, fit, SDEdit the next view)")
      ->capture_default_str();
  cmd->add_option(
      "--model", c.model,
      "A Stable Diffusion checkpoint (diffusers folder or original-layout .safetensors): latent SDS "
      "instead of the tiny prior (stable-dreamfusion uses --cfg 100)");
  cmd->add_option("--negative", c.negative_prompt, "Negative prompt (--model)");
  cmd->add_option("--tokenizer", st->opt.sd_load.tokenizer_dir, "Tokenizer folder for a single-file --model");
  cmd->add_option("--model-config", st->opt.sd_load.config_dir,
                  "Folder of component configs for a single-file --model");
  cmd->add_option("--device", st->opt.device, "Where --model runs: cpu | cuda (fp16)")->capture_default_str();
  cmd->add_option("--render-res", c.render_resolution,
                  "Rendered view size (0: the model's; 32 tiny prior, 64 SD, upsampled to 512 for its VAE)")
      ->capture_default_str();
  cmd->add_option("--idu-views", c.idu.views, "idu: views collected around the orbit")->capture_default_str();
  cmd->add_option("--idu-steps-per-view", c.idu.steps_per_view, "idu: fitting steps between two new views")
      ->capture_default_str();
  cmd->add_option("--idu-strength", c.idu.strength, "idu: SDEdit strength of a new view")
      ->capture_default_str();
  cmd->add_option("--idu-refine-strength", c.idu.refine_strength,
                  "idu: SDEdit strength when a view is refreshed in the refinement (0: never)")
      ->capture_default_str();
  cmd->add_option("--idu-cfg", c.idu.guidance_scale, "idu: guidance scale of the prior's samples")
      ->capture_default_str();
  cmd->add_option("--steps", c.optim.steps, "Optimisation steps")->capture_default_str();
  cmd->add_option("--seed", c.seed, "Seed (the run is deterministic for a seed and thread count)")
      ->capture_default_str();
  cmd->add_option("--cfg", c.guidance.guidance_scale, "Classifier-free guidance scale")
      ->capture_default_str();
  cmd->add_option("--t-min", c.guidance.t_min, "Smallest diffusion time, fraction of T")
      ->capture_default_str();
  cmd->add_option("--t-max", c.guidance.t_max, "Largest diffusion time at the start")->capture_default_str();
  cmd->add_option("--t-max-end", c.guidance.t_max_end, "Largest diffusion time at the end (annealed)")
      ->capture_default_str();
  cmd->add_flag("--no-camera-cond", st->no_camera,
                "Text-only guidance (DreamFusion); default passes the camera");
  cmd->add_option("--views-per-step", c.views_per_step, "Views rendered per step")->capture_default_str();
  cmd->add_option("--lr-grid", c.optim.lr_grid, "Hash-grid learning rate")->capture_default_str();
  cmd->add_option("--lr-mlp", c.optim.lr_mlp, "MLP learning rate")->capture_default_str();
  cmd->add_option("--albedo-warmup", c.shading.albedo_warmup_steps, "Albedo-only steps at the start")
      ->capture_default_str();
  cmd->add_option("--opacity-weight", c.regularizers.opacity, "Opacity sparsity weight")
      ->capture_default_str();
  cmd->add_option("--entropy-weight", c.regularizers.entropy, "Opacity entropy weight")
      ->capture_default_str();
  cmd->add_option("--orientation-weight", c.regularizers.orientation, "Orientation loss weight")
      ->capture_default_str();
  cmd->add_option("--mesh-res", c.mesh.resolution, "Marching-cubes resolution")->capture_default_str();
  cmd->add_option("--mesh-threshold", c.mesh.density_threshold, "Isosurface density")->capture_default_str();
  cmd->add_option("--simplify", c.mesh.simplify_ratio, "Keep this fraction of the triangles (1 = all)")
      ->capture_default_str();
  cmd->add_option("--max-triangles", c.mesh.max_triangles, "Simplify to at most about this many (0 = no cap)")
      ->capture_default_str();
  cmd->add_option("--checkpoint-every", st->opt.checkpoint_every, "Steps between checkpoints")
      ->capture_default_str();
  cmd->add_flag("--no-progress", st->no_progress, "No progress bar");
  cmd->add_option("--threads", common.threads, "CPU threads (0 = all cores)")->capture_default_str();
  commands.push_back(
      {cmd, [st, cmd]() -> int {
         GenerateConfig cfg = st->cfg;
         GenerateOptions opt = st->opt;
         if (!st->config_file.empty())
           cfg = generate_config_from_json(
               config_file_with_flags(st->config_file, *cmd, kFlagKeys, to_json(cfg)));
         if (st->no_camera) cfg.guidance.camera_conditioning = false;
         if (!st->resume.empty()) {
           opt.resume = true;
           opt.out_dir = st->resume;
         } else {
           require(!cfg.prompt.empty(), "generate: give a prompt, e.g. nerfdream generate \"a red cube\"");
           if (opt.out_dir.empty()) opt.out_dir = "outputs/" + prompt_slug(cfg.prompt);
         }
         validate(cfg);
         opt.progress = !st->no_progress;
         opt.interrupt = interrupt_on_sigint();
         const GenerateResult r = run_generate(cfg, opt);
         std::fprintf(stderr, "%s: %lld steps in %.1f s (%.1f s in all)",
                      r.interrupted ? "interrupted" : "done", (long long)r.steps, r.train_seconds,
                      r.total_seconds);
         if (r.synth_prompt) std::fprintf(stderr, "; IoU %.3f, color error %.3f", r.iou, r.color_error);
         std::fprintf(stderr,
                      "; mesh %lld vertices, %lld triangles\nwrote "
                      "%s/{mesh.glb,mesh.obj,mesh.ply,views.png,metrics.json,checkpoint.safetensors}\n",
                      (long long)r.vertices, (long long)r.triangles, opt.out_dir.c_str());
         return r.interrupted ? 130 : 0;
       }});
}

}  // namespace nd
