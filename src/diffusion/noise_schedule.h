// Discrete-time diffusion noise schedules (DDPM family), built exactly as diffusers v0.25.1 builds them.
//
// Notation: T training timesteps t = 0..T-1, betas β_t, α_t = 1 − β_t, ᾱ_t = Π_{s<=t} α_s (alphas_cumprod).
// Forward process q(x_t | x_0) = N(√ᾱ_t·x_0, (1 − ᾱ_t)·I):  x_t = √ᾱ_t·x_0 + √(1 − ᾱ_t)·ε.
// Model outputs ("prediction types"):  epsilon ε;  sample x_0;  v_prediction v = √ᾱ_t·ε − √(1 − ᾱ_t)·x_0.
//
// Precision (as diffusers on CPU): betas are float32 (torch.linspace(..., dtype=float32) for the linear
// schedules, float64 maths cast to float32 for the cosine one); α = 1 − β in float32; ᾱ = cumprod(α)
// accumulated in float64 (torch.cumprod on CPU accumulates float32 in double) and stored as float32.
// Every coefficient (√ᾱ, √(1 − ᾱ), ...) is then computed in float32 from the stored ᾱ, as diffusers does.
//
// Timesteps are given either as an int64_t or as an int64 tensor `t` of shape [] or [B]; a [B] tensor
// broadcasts over the first dimension of x (coefficients are viewed as [B,1,...,1]).
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <string>
#include <vector>

namespace nd {

enum class PredictionType { kEpsilon, kVPrediction, kSample };

// "epsilon", "v_prediction", "sample" (diffusers' words; "original_sample" is an old alias of "sample").
// InputError "<field>: unknown prediction type '<word>' ..." otherwise.
PredictionType parse_prediction_type(const std::string& word, const std::string& field = "prediction_type");
const char* prediction_type_name(PredictionType type);

class NoiseSchedule {
 public:
  // betas: [T] (any floating dtype, stored as float32), finite, each in [0, 1]. InputError otherwise.
  explicit NoiseSchedule(const at::Tensor& betas);

  // diffusers "linear": linspace(beta_start, beta_end, T) in float32.
  static NoiseSchedule linear(int64_t num_train_timesteps, double beta_start, double beta_end);
  // diffusers "scaled_linear" (Stable Diffusion's): linspace(√beta_start, √beta_end, T)² in float32.
  static NoiseSchedule scaled_linear(int64_t num_train_timesteps, double beta_start, double beta_end);
  // diffusers "squaredcos_cap_v2" (Nichol & Dhariwal's cosine schedule): β_i = min(1 − f(i+1/T)/f(i/T),
  // max_beta) with f(s) = cos((s + 0.008)/1.008 · π/2)², in float64, then float32.
  static NoiseSchedule squaredcos_cap_v2(int64_t num_train_timesteps, double max_beta = 0.999);
  // betas: [T] → betas rescaled to zero terminal SNR (Lin et al. 2023, diffusers' rescale_zero_terminal_snr):
  // √ᾱ shifted so that √ᾱ_{T−1} = 0 and scaled so that √ᾱ_0 is unchanged. Float32 in and out.
  static at::Tensor rescale_zero_terminal_snr(const at::Tensor& betas);

  int64_t num_train_timesteps() const { return static_cast<int64_t>(alphas_cumprod_vec_.size()); }
  const at::Tensor& betas() const { return betas_; }                    // [T] float32, CPU
  const at::Tensor& alphas_cumprod() const { return alphas_cumprod_; }  // [T] float32, CPU
  float alpha_cumprod(int64_t t) const;                                 // ᾱ_t; t in [0, T)
  // ᾱ at the int64 timesteps `t` ([] or [B]), on `like`'s device and dtype, shaped [B,1,...,1] with
  // like.dim() dims for a [B] `t`, or [] for a 0-d `t`.
  at::Tensor alpha_cumprod_view(const at::Tensor& t, const at::Tensor& like) const;

  // q(x_t | x_0): √ᾱ_t·x0 + √(1 − ᾱ_t)·noise. x0, noise: broadcastable tensors [B,...] (or [1,...]).
  at::Tensor add_noise(const at::Tensor& x0, const at::Tensor& noise, const at::Tensor& t) const;
  at::Tensor add_noise(const at::Tensor& x0, const at::Tensor& noise, int64_t t) const;
  // The v-prediction target √ᾱ_t·noise − √(1 − ᾱ_t)·x0 (diffusers' get_velocity).
  at::Tensor velocity(const at::Tensor& x0, const at::Tensor& noise, const at::Tensor& t) const;
  at::Tensor velocity(const at::Tensor& x0, const at::Tensor& noise, int64_t t) const;

  // Conversions between the three parameterisations, given x_t and t (all tensors broadcastable):
  //   x0 = (x_t − √(1−ᾱ)·ε)/√ᾱ        ε = (x_t − √ᾱ·x0)/√(1−ᾱ)
  //   x0 = √ᾱ·x_t − √(1−ᾱ)·v           ε = √ᾱ·v + √(1−ᾱ)·x_t
  //   v  = (ε − √(1−ᾱ)·x_t)/√ᾱ         v = (√ᾱ·x_t − x0)/√(1−ᾱ)
  // (divisions by √ᾱ need ᾱ > 0, by √(1−ᾱ) need ᾱ < 1).
  // `output` is a model output of prediction type `type`; returns the requested quantity.
  at::Tensor to_x0(PredictionType type, const at::Tensor& output, const at::Tensor& x_t,
                   const at::Tensor& t) const;
  at::Tensor to_epsilon(PredictionType type, const at::Tensor& output, const at::Tensor& x_t,
                        const at::Tensor& t) const;
  at::Tensor to_v(PredictionType type, const at::Tensor& output, const at::Tensor& x_t,
                  const at::Tensor& t) const;
  at::Tensor to_x0(PredictionType type, const at::Tensor& output, const at::Tensor& x_t, int64_t t) const;
  at::Tensor to_epsilon(PredictionType type, const at::Tensor& output, const at::Tensor& x_t,
                        int64_t t) const;
  at::Tensor to_v(PredictionType type, const at::Tensor& output, const at::Tensor& x_t, int64_t t) const;

  // Signal-to-noise ratio ᾱ_t/(1 − ᾱ_t) (float64 from the stored float32 ᾱ); tensor form: float32, t's shape.
  double snr(int64_t t) const;
  at::Tensor snr(const at::Tensor& t) const;

 private:
  struct Coefs {
    at::Tensor sqrt_a;  // √ᾱ_t, [B,1,..,1] or []
    at::Tensor sqrt_b;  // √(1 − ᾱ_t)
  };
  Coefs coefs(const at::Tensor& t, const at::Tensor& like) const;
  void check_t(int64_t t) const;

  at::Tensor betas_;           // [T] float32
  at::Tensor alphas_cumprod_;  // [T] float32
  std::vector<float> alphas_cumprod_vec_;
};

}  // namespace nd
