#include "diffusion/scheduler.h"

#include <algorithm>
#include <cctype>
#include <cmath>

#include "core/error.h"
#include "diffusion/scheduler_ddim.h"
#include "diffusion/scheduler_ddpm.h"
#include "diffusion/scheduler_euler.h"
#include "diffusion/scheduler_pndm.h"

namespace nd {

Scheduler::Scheduler(SchedulerConfig config, NoiseSchedule schedule)
    : config_(std::move(config)), schedule_(std::move(schedule)) {
  // Before set_timesteps(): every training timestep, descending (diffusers' constructors do the same).
  std::vector<int64_t> ts(schedule_.num_train_timesteps());
  for (size_t i = 0; i < ts.size(); ++i) ts[i] = static_cast<int64_t>(ts.size() - 1 - i);
  set_timesteps_list(std::move(ts));
}

void Scheduler::check_timestep(int64_t t) const {
  TORCH_CHECK(t >= 0 && t < schedule_.num_train_timesteps(), name(), ": timestep ", t, " outside [0, ",
              schedule_.num_train_timesteps(), ")");
}

void Scheduler::check_steps(int num_steps) const {
  require(num_steps >= 1 && num_steps <= schedule_.num_train_timesteps(),
          std::string(name()) + ": num_inference_steps " + std::to_string(num_steps) + " must be in [1, " +
              std::to_string(schedule_.num_train_timesteps()) + "] (num_train_timesteps of " +
              config_.source + ")");
}

void Scheduler::set_timesteps_list(std::vector<int64_t> ts) {
  for (int64_t t : ts)
    require(t >= 0 && t < schedule_.num_train_timesteps(),
            config_.source + ": steps_offset " + std::to_string(config_.steps_offset) + " with " +
                std::to_string(num_inference_steps_) + " steps gives timestep " + std::to_string(t) +
                ", outside [0, " + std::to_string(schedule_.num_train_timesteps()) + ")");
  timesteps_ = std::move(ts);
  model_timesteps_.assign(timesteps_.begin(), timesteps_.end());
}

std::vector<double> numpy_arange(double start, double stop, double step, int64_t max_len) {
  TORCH_CHECK(step != 0, "numpy_arange: step must not be 0");
  const double len_f = std::ceil((stop - start) / step);
  const int64_t len = len_f > 0 ? std::min<int64_t>(static_cast<int64_t>(len_f), max_len) : 0;
  std::vector<double> out(len);
  if (len == 0) return out;
  // numpy fills arange from its first two entries: delta = (start + step) − start.
  const double delta = (start + step) - start;
  for (int64_t i = 0; i < len; ++i) out[i] = i == 0 ? start : start + i * delta;
  return out;
}

std::vector<int64_t> spaced_timesteps(TimestepSpacing spacing, int64_t num_train_timesteps, int64_t num_steps,
                                      int64_t steps_offset) {
  const int64_t T = num_train_timesteps, n = num_steps;
  TORCH_CHECK(n >= 1 && n <= T, "spaced_timesteps: need 1 <= num_steps <= num_train_timesteps");
  std::vector<int64_t> ts(n);
  switch (spacing) {
    case TimestepSpacing::kLeading: {
      const int64_t ratio = T / n;
      for (int64_t i = 0; i < n; ++i) ts[i] = (n - 1 - i) * ratio + steps_offset;
      break;
    }
    case TimestepSpacing::kTrailing: {
      // diffusers: np.round(np.arange(T, 0, -T/n)) - 1. For some n (61, 103, ...) numpy's arange length
      // rounds up to n + 1 and diffusers then ends with a bogus t = -1; we keep the first n.
      const std::vector<double> a = numpy_arange(static_cast<double>(T), 0.0, -static_cast<double>(T) / n, n);
      TORCH_CHECK(static_cast<int64_t>(a.size()) == n,
                  "spaced_timesteps: trailing spacing gave too few steps");
      for (int64_t i = 0; i < n; ++i) ts[i] = static_cast<int64_t>(std::nearbyint(a[i])) - 1;
      break;
    }
    case TimestepSpacing::kLinspace: {
      // np.linspace(0, T-1, n): i·((T−1)/(n−1)), the last entry exactly T−1; np.round rounds half to even.
      const double step = n > 1 ? static_cast<double>(T - 1) / (n - 1) : 0.0;
      for (int64_t i = 0; i < n; ++i) {
        const double v = (n > 1 && i == n - 1) ? static_cast<double>(T - 1) : i * step;
        ts[n - 1 - i] = static_cast<int64_t>(std::nearbyint(v));
      }
      break;
    }
  }
  return ts;
}

at::Tensor dynamic_threshold(const at::Tensor& x, double ratio, double max_value) {
  TORCH_CHECK(x.dim() >= 1, "dynamic_threshold: x must have a batch dimension");
  const at::ScalarType dtype = x.scalar_type();
  at::Tensor flat = x;
  if (dtype != at::kFloat && dtype != at::kDouble) flat = flat.to(at::kFloat);  // quantile needs float
  flat = flat.reshape({x.size(0), -1});
  at::Tensor s = at::quantile(flat.abs(), ratio, /*dim=*/1, /*keepdim=*/true);
  s = s.clamp(1.0, max_value);
  flat = at::maximum(at::minimum(flat, s), -s) / s;
  return flat.reshape(x.sizes()).to(dtype);
}

at::Tensor step_noise(const at::Tensor& like, at::Generator* gen, const at::Tensor& given) {
  if (given.defined()) {
    TORCH_CHECK(given.sizes() == like.sizes(), "scheduler step: variance_noise has shape ", given.sizes(),
                ", expected ", like.sizes());
    return given.to(like.device(), like.scalar_type());
  }
  c10::optional<at::Generator> g;
  if (gen) g = *gen;
  return at::randn(like.sizes(), g, like.options());
}

namespace {
std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}
}  // namespace

std::unique_ptr<Scheduler> make_scheduler(const SchedulerConfig& config, const std::string& override_class) {
  const std::string requested = override_class.empty() ? config.class_name : override_class;
  const std::string key = lower(requested);
  if (key == "ddimscheduler" || key == "ddim") return std::make_unique<DDIMScheduler>(config);
  if (key == "ddpmscheduler" || key == "ddpm") return std::make_unique<DDPMScheduler>(config);
  if (key == "pndmscheduler" || key == "pndm" || key == "plms")
    return std::make_unique<PNDMScheduler>(config);
  if (key == "eulerdiscretescheduler" || key == "euler")
    return std::make_unique<EulerDiscreteScheduler>(config);
  if (requested.empty())
    throw InputError(config.source + ": _class_name: missing; choose a scheduler (ddim, ddpm, pndm, euler)");
  throw InputError((override_class.empty() ? config.source + ": _class_name: " : std::string("scheduler: ")) +
                   "'" + requested +
                   "' is not implemented (available: DDIMScheduler, DDPMScheduler, PNDMScheduler, "
                   "EulerDiscreteScheduler; or ddim, ddpm, pndm, euler)");
}

std::vector<int64_t> img2img_timesteps(Scheduler& scheduler, int num_steps, double strength) {
  require(std::isfinite(strength) && strength > 0 && strength <= 1,
          "strength: must be in (0, 1], got " + std::to_string(strength));
  require(num_steps >= 1, "num_steps: must be >= 1, got " + std::to_string(num_steps));
  scheduler.set_timesteps(num_steps);
  // Python: min(int(num_inference_steps * strength), num_inference_steps) truncates toward zero.
  const int64_t init_timestep = std::min<int64_t>(static_cast<int64_t>(num_steps * strength), num_steps);
  const int64_t t_start = std::max<int64_t>(num_steps - init_timestep, 0);
  const std::vector<int64_t>& all = scheduler.timesteps();
  const int64_t begin = std::min<int64_t>(t_start * scheduler.order(), static_cast<int64_t>(all.size()));
  std::vector<int64_t> out(all.begin() + begin, all.end());
  require(!out.empty(), "strength: " + std::to_string(strength) + " × " + std::to_string(num_steps) +
                            " steps leaves no denoising step (raise strength or the step count)");
  return out;
}

}  // namespace nd
