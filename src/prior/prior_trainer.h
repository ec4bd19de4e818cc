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
