// Samplers for discrete-time diffusion models: the interface, the factory, and the img2img (SDEdit) helper.
// Each scheduler reproduces its diffusers v0.25.1 class numerically (float32 arithmetic in the same order).
//
// Sampling loop (what diffusers' StableDiffusionPipeline does):
//   auto s = make_scheduler(SchedulerConfig::load("sd/scheduler/scheduler_config.json"));
//   s->set_timesteps(50);
//   at::Tensor x = at::randn({1, 4, 64, 64}, gen) * s->init_noise_sigma();
//   for (size_t i = 0; i < s->timesteps().size(); ++i) {
//     int64_t t = s->timesteps()[i];
//     at::Tensor eps = unet(s->scale_model_input(x, t), s->model_timesteps()[i], text);
//     x = s->step(eps, t, x, &gen);
//   }
// Tensors: model_output and sample share one shape [B, C, H, W] (any shape whose dim 0 is the batch works);
// float32 (or float64), any device; the noise of stochastic steps is drawn on the sample's device.
// Schedulers are stateful (PNDM's history, Euler's step index): one instance per sampling run, and
// set_timesteps() starts a new run.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "diffusion/noise_schedule.h"
#include "diffusion/scheduler_config.h"

namespace nd {

struct StepResult {
  at::Tensor prev_sample;           // x_{t_prev}, the sample's shape
  at::Tensor pred_original_sample;  // the x_0 estimate of this step, the sample's shape
};

class Scheduler {
 public:
  virtual ~Scheduler() = default;
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  virtual const char* name() const = 0;  // the diffusers class name
  // Chooses the inference timesteps (and resets any sampling state). InputError unless
  // 1 <= num_inference_steps <= num_train_timesteps.
  virtual void set_timesteps(int num_inference_steps) = 0;
  // Timesteps of the run, in the order the model is called (descending; PNDM repeats one).
  virtual const std::vector<int64_t>& timesteps() const { return timesteps_; }
  // The value to give the model's time embedding at timesteps()[i]: equal to it, except for Euler, whose
  // timesteps may be fractional (its timesteps() holds them rounded, as identifiers for step()).
  virtual const std::vector<double>& model_timesteps() const { return model_timesteps_; }

  // One denoising step from `sample` at timestep t, given the model's output there. `gen` (may be null: the
  // default generator) draws the noise of stochastic steps (DDPM, DDIM with eta > 0, Euler with churn);
  // `variance_noise` (the sample's shape), when defined, is used instead of drawing.
  virtual StepResult step_full(const at::Tensor& model_output, int64_t t, const at::Tensor& sample,
                               at::Generator* gen = nullptr, const at::Tensor& variance_noise = {}) = 0;
  at::Tensor step(const at::Tensor& model_output, int64_t t, const at::Tensor& sample,
                  at::Generator* gen = nullptr) {
    return step_full(model_output, t, sample, gen).prev_sample;
  }
  // The model's input at timestep t: Euler divides by √(σ² + 1); the others return `sample`.
  virtual at::Tensor scale_model_input(const at::Tensor& sample, int64_t t) { return sample; }
  // Noises clean samples to timestep t of this scheduler's process, as the scheduler's add_noise does
  // (img2img's starting latents): √ᾱ_t·x0 + √(1−ᾱ_t)·noise, or for Euler x0 + σ_t·noise with t one of
  // timesteps(). x0, noise: broadcastable, batch first.
  virtual at::Tensor add_noise(const at::Tensor& x0, const at::Tensor& noise, int64_t t) const {
    return schedule_.add_noise(x0, noise, t);
  }
  // Standard deviation of the initial noise (1, or Euler's largest σ).
  virtual float init_noise_sigma() const { return 1.f; }
  // diffusers' `order`: img2img skips t_start·order entries of timesteps().
  virtual int order() const { return 1; }

  const NoiseSchedule& schedule() const { return schedule_; }
  const SchedulerConfig& config() const { return config_; }
  int num_inference_steps() const { return num_inference_steps_; }  // 0 before set_timesteps()

 protected:
  // config: already resolved for the class (the factory does it); schedule built from it.
  Scheduler(SchedulerConfig config, NoiseSchedule schedule);
  void check_timestep(int64_t t) const;              // TORCH_CHECK t in [0, num_train_timesteps)
  void check_steps(int num_steps) const;             // InputError outside [1, num_train_timesteps]
  void set_timesteps_list(std::vector<int64_t> ts);  // timesteps_ and model_timesteps_ (equal)

  SchedulerConfig config_;
  NoiseSchedule schedule_;
  int num_inference_steps_ = 0;
  std::vector<int64_t> timesteps_;
  std::vector<double> model_timesteps_;
};

// Builds the scheduler named by `override_class` (when not empty) or by config._class_name:
// "DDIMScheduler", "DDPMScheduler", "PNDMScheduler", "EulerDiscreteScheduler" (or, case-insensitive, "ddim",
// "ddpm", "pndm"/"plms", "euler"). The class's own defaults fill the keys the file left unset.
// InputError for another class, naming the source file.
std::unique_ptr<Scheduler> make_scheduler(const SchedulerConfig& config,
                                          const std::string& override_class = "");

// The timesteps of an img2img / SDEdit run, as StableDiffusionImg2ImgPipeline computes them: calls
// scheduler.set_timesteps(num_steps), then keeps timesteps()[t_start·order:] with
// init_timestep = min(int(num_steps·strength), num_steps), t_start = max(num_steps − init_timestep, 0).
// The first entry is the timestep to noise the input to (scheduler.add_noise). InputError when strength is
// outside (0, 1], num_steps < 1, or nothing is left to denoise.
std::vector<int64_t> img2img_timesteps(Scheduler& scheduler, int num_steps, double strength);

// Integer inference timesteps, descending, as DDIM/DDPM/PNDM's set_timesteps compute them:
//   leading:  arange(n)·(T // n) + steps_offset
//   trailing: round(arange(T, 0, −T/n)) − 1   (numpy arange/round-half-even semantics)
//   linspace: round(linspace(0, T − 1, n))
std::vector<int64_t> spaced_timesteps(TimestepSpacing spacing, int64_t num_train_timesteps, int64_t num_steps,
                                      int64_t steps_offset);
// numpy.arange(start, stop, step) for float64 (its length ceil((stop − start)/step) and its
// start + i·(fl(start + step) − start) values), at most `max_len` entries.
std::vector<double> numpy_arange(double start, double stop, double step, int64_t max_len);

// diffusers' dynamic thresholding (Imagen): per batch item, s = clamp(quantile(|x|, ratio), 1, max_value),
// x → clamp(x, −s, s)/s. x: [B, ...].
at::Tensor dynamic_threshold(const at::Tensor& x, double ratio, double max_value);

// Draws N(0, 1) noise of `like`'s shape, dtype and device from `gen` (null: the default generator), or
// returns `given` (checked to have like's shape) when defined.
at::Tensor step_noise(const at::Tensor& like, at::Generator* gen, const at::Tensor& given);

}  // namespace nd
