// `nerfdream train-prior`: trains the tiny prior on its synth dataset.
//
// Each step: a batch of dataset items (mirrored left-right with azimuth negated half the time: every synth
// object is symmetric under x → −x), captions dropped to the empty prompt with p = caption_dropout and
// cameras dropped with p = view_dropout (so classifier-free guidance and camera-free sampling work),
// t ~ U{0..T−1}, x_t = √ᾱ x0 + √(1−ᾱ) ε, loss = mean over the batch of w(t)·‖model(x_t) − target‖² with
// Min-SNR-γ weights (Hang et al. 2023: w = min(SNR, γ)/SNR for ε, min(SNR, γ)/(SNR + 1) for v), Adam with
// linear warm-up, global gradient-norm clipping, and an EMA copy of the weights that is what gets saved.
//
// Outputs in out_dir: checkpoint.safetensors (model, EMA, optimizer and generator state: --resume continues
// exactly), prior.safetensors (EMA weights: what `sample` and `generate` load), config.json,
// samples/step_<N>.png grids, train_log.jsonl (one line per log interval).
#pragma once
#include <atomic>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "prior/prior_dataset.h"
#include "prior/tiny_prior.h"

namespace nd {

struct PriorTrainOptions {
  TinyPriorConfig model;
  PriorDatasetOptions data;
  std::string data_path;  // when set: load the dataset from it, or make it and save it there
  int64_t steps = 20000;  // total, counting steps done before a resume
  int batch = 64;
  double lr = 6e-4;
  int64_t warmup_steps = 500;
  double grad_clip = 1.0;
  double ema_decay = 0.999;
  double caption_dropout = 0.1;
  double view_dropout = 0.15;
  double min_snr_gamma = 5.0;
  // > 0: at high noise (SNR < 1) the loss weighs the x0 error fully, down to SNR = 1 / x0_weight_max,
  // instead of the min-SNR weight that fades with the SNR (see prior_loss_weights).
  double x0_weight_max = 0;
  double high_noise_fraction = 0;  // this share of each batch draws t from the upper half of the schedule
  std::vector<std::string> only_captions;  // non-empty: train on these captions' images only
  bool mirror = true;
  uint64_t seed = 0;
  int64_t log_every = 100, checkpoint_every = 1000, sample_every = 2000;
  double max_minutes = 0;  // > 0: stop (with a checkpoint) after this much training time
  std::string out_dir;
  bool resume = false;    // continue from out_dir/checkpoint.safetensors
  std::string init_from;  // start from these prior weights (e.g. the shipped ones): model and EMA, fresh
                          // optimizer, step count from their metadata — to train on in a later stretch
  const std::atomic<bool>* interrupt = nullptr;  // set by SIGINT: checkpoint and stop
  bool progress = true;

  nlohmann::json to_json() const;  // the training options (model and data configs included)
};

// Per-timestep weights of the squared error of the model's output (ε or v), from the SNR of each
// timestep. Min-SNR-γ weighs the x0 error by min(SNR, γ): at high noise that weight fades with the SNR,
// and what is decided there — the layout of the image, which way an object faces — is learned slowly (at
// t = 900 the chair's front/back difference is 0.2 % of what it is in the data after 10k steps).
// x0_weight_max W > 0 raises the x0 weight to max(min(SNR, γ), min(1, W·SNR)): full weight down to
// SNR = 1/W; i.e. an ε weight of min(1/SNR, W) where SNR < 1. W = 0: min-SNR-γ alone.
at::Tensor prior_loss_weights(const at::Tensor& snr, double min_snr_gamma, double x0_weight_max,
                              bool epsilon_prediction);

// Training timesteps in [0, T): uniform, except that a share `high_noise_fraction` of them (chosen at
// random) comes from the upper half [T/2, T).
at::Tensor sample_train_timesteps(int64_t num_timesteps, int64_t batch, double high_noise_fraction,
                                  at::Generator& gen);

struct PriorTrainResult {
  int64_t steps_done = 0;  // in this run
  int64_t step = 0;        // total after this run
  double seconds = 0;      // training time of this run (dataset generation excluded)
  double images_per_second = 0;
  double final_loss = 0;  // mean of the last log interval
  bool interrupted = false;
};

PriorTrainResult train_prior(const PriorTrainOptions& options);

}  // namespace nd
