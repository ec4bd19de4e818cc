#include "pipeline/generate.h"

#include <cctype>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <optional>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/progress.h"
#include "guidance/sd_latent_guide.h"
#include "guidance/tiny_prior_guide.h"
#include "io/checkpoint.h"
#include "io/image_io.h"
#include "pipeline/asset_export.h"
#include "pipeline/shape_metrics.h"
#include "pipeline/text_to_3d.h"
#include "pipeline/turntable.h"
#include "pipeline/viewer_page.h"
#include "prior/tiny_prior.h"
#include "synth/caption.h"

namespace nd {
namespace fs = std::filesystem;

namespace {

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

// The object of a synth-grammar prompt, or nullopt for other text.
std::optional<SynthObject> synth_object_of(const std::string& prompt) {
  try {
    return parse_caption(prompt).object;
  } catch (const InputError&) {
    return std::nullopt;
  }
}

// 8 azimuths at elevation 15°, albedo and lambertian rows: [2·R, 4·R... ] a 4×4 grid.
at::Tensor views_grid(TextTo3D& run, int res) {
  std::vector<at::Tensor> tiles;
  std::mt19937_64 rng(1);
  for (Shading mode : {Shading::Albedo, Shading::Lambertian})
    for (int i = 0; i < 8; ++i) {
      const View v{15, -180 + 45.0 * i, 3.0, 45};
      ShadingParams s = run.light_for(v, mode, rng);
      s.ambient = 0.3f;
      tiles.push_back(run.render_view(v, res, s));
    }
  return image_grid(tiles, 8);
}

// The diffusion model of a run and what owns it: the tiny prior, or a Stable Diffusion checkpoint.
struct LoadedGuide {
  std::unique_ptr<TinyPrior> prior;
  std::unique_ptr<StableDiffusionPipeline> sd;
  std::unique_ptr<DiffusionGuide> guide;
};

LoadedGuide load_guide(const GenerateConfig& config, const GenerateOptions& o) {
  LoadedGuide g;
  require(o.device == "cpu" || o.device == "cuda", "--device must be cpu or cuda, got '" + o.device + "'");
  if (config.model.empty()) {
    require(o.device == "cpu", "--device cuda: the tiny prior runs on the CPU (use it with --model)");
    g.prior = TinyPrior::load(o.prior_path.empty() ? default_prior_path() : o.prior_path);
    g.guide = std::make_unique<TinyPriorGuide>(*g.prior);
    return g;
  }
  require(o.prior_path.empty(), "--prior and --model exclude each other");
  SdLoadOptions lo = o.sd_load;
  lo.verbose = o.progress;
  g.sd = std::make_unique<StableDiffusionPipeline>(StableDiffusionPipeline::load(config.model, lo));
  if (o.device == "cuda") {
    require(at::hasCUDA(), "--device cuda: this build of LibTorch has no CUDA device");
    g.sd->to(at::Device(at::kCUDA), at::kHalf);  // fp16, as stable-dreamfusion runs SD
  }
  g.guide = std::make_unique<SdLatentGuide>(*g.sd, config.render_resolution ? config.render_resolution : 64,
                                            config.negative_prompt);
  return g;
}

}  // namespace

std::string prompt_slug(const std::string& text) {
  std::string s;
  for (char c : text) {
    if (std::isalnum(static_cast<unsigned char>(c)))
      s += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    else if (!s.empty() && s.back() != '-')
      s += '-';
  }
  while (!s.empty() && s.back() == '-') s.pop_back();
  return s.empty() ? "asset" : s.substr(0, 80);
}

GenerateResult run_generate(const GenerateConfig& config_in, const GenerateOptions& o) {
  const auto t0 = std::chrono::steady_clock::now();
  require(!o.out_dir.empty(), "generate: --out is required");
  const fs::path out(o.out_dir);
  const std::string ckpt_path = (out / "checkpoint.safetensors").string();
  GenerateConfig config = config_in;
  Checkpoint resumed;
  if (o.resume) {
    require(fs::exists(ckpt_path), "--resume: no checkpoint at " + ckpt_path);
    resumed = load_checkpoint(ckpt_path, kGenerateCheckpoint);
    try {
      config = generate_config_from_json(resumed.config);
    } catch (const InputError& e) {
      throw InputError(ckpt_path + ": not a generate checkpoint: " + e.what());
    }
    config.optim.steps = std::max(config.optim.steps, config_in.optim.steps);
  } else {
    require(!config.prompt.empty(), "generate: empty prompt");
    if (fs::exists(out) && !fs::is_empty(out)) {
      require(o.overwrite,
              o.out_dir + " exists and is not empty: pass --overwrite to replace it, or --resume");
    }
  }
  validate(config);

  // Everything that can fail on input fails before the output directory is touched.
  LoadedGuide loaded = load_guide(config, o);
  TextTo3D run(config, *loaded.guide);
  config = run.config();  // render_resolution resolved
  if (o.resume) run.restore(resumed, ckpt_path);
  if (!o.resume && fs::exists(out)) fs::remove_all(out);  // --overwrite
  fs::create_directories(out);
  write_file_atomically((out / "config.json").string(), to_json(config).dump(2) + "\n");

  GenerateResult result;
  ProgressBar bar(config.optim.steps, "generate", o.progress);
  bar.update(run.steps_done());
  const auto train_start = std::chrono::steady_clock::now();
  const int64_t first_step = run.steps_done();
  TextTo3DStep last;
  double sds_mean = 0, loss_mean = 0;
  int64_t mean_count = 0;
  auto save = [&] { save_checkpoint(ckpt_path, run.checkpoint(), kGenerateCheckpoint); };
  while (run.steps_done() < config.optim.steps) {
    if ((o.interrupt && o.interrupt->load()) || (o.stop_at_step > 0 && run.steps_done() >= o.stop_at_step)) {
      result.interrupted = true;
      break;
    }
    last = run.step();
    // Means over the last 10 % of the run: the "final losses" of metrics.json.
    if (run.steps_done() > config.optim.steps * 9 / 10) {
      sds_mean += last.sds;
      loss_mean += last.loss;
      ++mean_count;
    }
    bar.update(run.steps_done(),
               {{"loss", last.loss}, {"opacity", last.mean_opacity}, {"spr", last.samples_per_ray}});
    if (o.checkpoint_every > 0 && run.steps_done() % o.checkpoint_every == 0) save();
  }
  bar.finish();
  result.train_seconds = seconds_since(train_start);
  result.steps = run.steps_done();
  save();

  // --- outputs
  TriangleMesh mesh = extract_mesh(run.field(), config.mesh);
  result.vertices = static_cast<int64_t>(mesh.positions.size());
  result.triangles = static_cast<int64_t>(mesh.triangles.size());
  if (mesh.triangles.empty())
    std::fprintf(stderr,
                 "generate: warning: nothing is denser than the mesh threshold %.3g; mesh files are empty\n",
                 config.mesh.density_threshold);
  write_mesh_files(out.string(), mesh);
  save_png((out / "views.png").string(), views_grid(run, o.view_resolution));
  if (const IterativeDatasetUpdate* idu = run.dataset_update(); idu && !idu->empty())
    save_png((out / "dataset.png").string(), image_grid(idu->images().unbind(0), 8));  // what the model drew
  TurntableOptions turntable;
  turntable.resolution = o.view_resolution;  // the frames share the views' size
  write_turntable(out.string(), render_turntable(run, turntable), turntable);

  nlohmann::json metrics = {
      {"prompt", config.prompt},
      {"method", config.method},
      {"model", loaded.guide->name()},
      {"steps", result.steps},
      {"interrupted", result.interrupted},
      {"train_seconds", result.train_seconds},
      {"steps_per_second", (result.steps - first_step) / std::max(result.train_seconds, 1e-9)},
      {"final_loss", mean_count ? loss_mean / mean_count : last.loss},
      {"final_sds_gradient_mse", mean_count ? sds_mean / mean_count : last.sds},
      {"final_opacity", last.mean_opacity},
      {"mesh", {{"vertices", result.vertices}, {"triangles", result.triangles}}},
  };
  if (auto object = synth_object_of(config.prompt)) {
    const ShapeMetrics m = synth_shape_metrics(run.field(), *object, config.mesh.density_threshold);
    result.synth_prompt = true;
    result.iou = m.iou;
    result.iou_density = m.iou_density;
    result.color_error = m.color_error;
    metrics["iou"] = m.iou;
    metrics["iou_density"] = m.iou_density;
    metrics["occupied_cells"] = {{"predicted", m.predicted_cells}, {"truth", m.true_cells}};  // of 64³
    metrics["color_error"] = m.color_error;
  }
  result.total_seconds = seconds_since(t0);
  metrics["wall_seconds"] = result.total_seconds;
  write_file_atomically((out / "metrics.json").string(), metrics.dump(2) + "\n");
  write_viewer_page(out.string(), config.prompt);  // last: it embeds the files above
  return result;
}

}  // namespace nd
