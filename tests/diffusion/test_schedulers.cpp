// Schedulers: the diffusers golden files, config parsing, timesteps, and each sampler's step by hand.
#include <ATen/CPUGeneratorImpl.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <filesystem>

#include "core/error.h"
#include "core/threads.h"
#include "diffusion/scheduler.h"
#include "diffusion/scheduler_ddim.h"
#include "diffusion/scheduler_ddpm.h"
#include "diffusion/scheduler_euler.h"
#include "diffusion/scheduler_pndm.h"
#include "io/safetensors.h"

namespace {

namespace fs = std::filesystem;
using nd::PredictionType;
using nd::SchedulerConfig;

const std::string kGolden = NERFDREAM_SOURCE_DIR "/../shared/golden";

double max_abs(const at::Tensor& a, const at::Tensor& b) {
  EXPECT_EQ(a.sizes(), b.sizes());
  return (a.to(at::kDouble) - b.to(at::kDouble)).abs().max().item<double>();
}

std::vector<int64_t> to_vec(const at::Tensor& t) {
  const at::Tensor c = t.to(at::kLong).contiguous();
  return std::vector<int64_t>(c.data_ptr<int64_t>(), c.data_ptr<int64_t>() + c.numel());
}

// Stable Diffusion 1.5's shipped scheduler_config.json.
nlohmann::json sd15_json() {
  return nlohmann::json::parse(R"({
    "_class_name": "PNDMScheduler", "_diffusers_version": "0.6.0", "beta_end": 0.012,
    "beta_schedule": "scaled_linear", "beta_start": 0.00085, "clip_sample": false,
    "num_train_timesteps": 1000, "set_alpha_to_one": false, "skip_prk_steps": true,
    "steps_offset": 1, "trained_betas": null})");
}

// ---------------------------------------------------------------------------------------------------------
// Golden files (diffusers v0.25.1 DDIMScheduler / DDPMScheduler .from_config of each pipeline's config).

const char* const kGoldenFolders[] = {"sd1-tiny", "sd2-tiny"};

bool golden_present() { return fs::exists(kGolden + "/sd1-tiny/golden/scheduler_ddim.safetensors"); }

SchedulerConfig golden_config(const std::string& folder) {
  return SchedulerConfig::load(kGolden + "/" + folder + "/scheduler/scheduler_config.json");
}

// scheduler_ddim.safetensors: schedule, timesteps, 10 independent steps, add_noise and get_velocity; the
// txt2img run's timesteps.
void check_golden_ddim(const std::string& folder) {
  const std::string dir = kGolden + "/" + folder + "/golden/";
  const nd::SafetensorsFile f = nd::SafetensorsFile::open(dir + "scheduler_ddim.safetensors");
  auto s = make_scheduler(golden_config(folder), "DDIMScheduler");
  const double err_sched = std::max(max_abs(s->schedule().betas(), f.load("betas")),
                                    max_abs(s->schedule().alphas_cumprod(), f.load("alphas_cumprod")));
  for (int n : {10, 4, 50}) {
    s->set_timesteps(n);
    EXPECT_EQ(s->timesteps(), to_vec(f.load_as_stored("timesteps_" + std::to_string(n)))) << n;
  }
  s->set_timesteps(4);
  EXPECT_EQ(s->timesteps(),
            to_vec(nd::SafetensorsFile::open(dir + "txt2img_ddim4.safetensors").load_as_stored("timesteps")));

  const at::Tensor model_output = f.load("model_output"), sample = f.load("sample"), noise = f.load("noise");
  s->set_timesteps(10);
  double err_step = 0;
  for (int i = 0; i < 10; ++i) {
    const nd::StepResult r = s->step_full(model_output, s->timesteps()[i], sample);
    const std::string k = "step." + std::to_string(i) + ".";
    err_step = std::max(err_step, max_abs(r.prev_sample, f.load(k + "prev_sample")));
    err_step = std::max(err_step, max_abs(r.pred_original_sample, f.load(k + "pred_original_sample")));
  }
  const at::Tensor t = f.load_as_stored("add_noise.timesteps");
  double err_noise = std::max(max_abs(s->schedule().add_noise(sample, noise, t), f.load("add_noise.out")),
                              max_abs(s->schedule().velocity(sample, noise, t), f.load("get_velocity.out")));
  for (int i = 0; i < t.numel(); ++i)  // through the scheduler interface, one timestep at a time
    err_noise = std::max(err_noise, max_abs(s->add_noise(sample, noise, t[i].item<int64_t>()),
                                            f.load("add_noise.out").slice(0, i, i + 1)));
  std::printf("[golden %s DDIM] max |diff|: schedule %.3g, steps %.3g, add_noise/velocity %.3g\n",
              folder.c_str(), err_sched, err_step, err_noise);
  EXPECT_LE(err_sched, 1e-7);
  EXPECT_LE(err_step, 1e-5);
  EXPECT_LE(err_noise, 1e-5);
}

// scheduler_ddpm.safetensors: 10 independent steps with the stored variance noise.
void check_golden_ddpm(const std::string& folder) {
  const nd::SafetensorsFile f =
      nd::SafetensorsFile::open(kGolden + "/" + folder + "/golden/scheduler_ddpm.safetensors");
  auto s = make_scheduler(golden_config(folder), "DDPMScheduler");
  s->set_timesteps(10);
  EXPECT_EQ(s->timesteps(), to_vec(f.load_as_stored("timesteps_10")));
  const at::Tensor model_output = f.load("model_output"), sample = f.load("sample");
  double err = 0;
  for (int i = 0; i < 10; ++i) {
    const std::string k = "step." + std::to_string(i) + ".";
    const nd::StepResult r =
        s->step_full(model_output, s->timesteps()[i], sample, nullptr, f.load(k + "variance_noise"));
    err = std::max(err, max_abs(r.prev_sample, f.load(k + "prev_sample")));
    err = std::max(err, max_abs(r.pred_original_sample, f.load(k + "pred_original_sample")));
  }
  std::printf("[golden %s DDPM] max |diff| over 10 steps: %.3g\n", folder.c_str(), err);
  EXPECT_LE(err, 1e-5);
}

TEST(GoldenSchedulers, DDIM) {
  if (!golden_present()) GTEST_SKIP() << "golden data not found at " << kGolden;
  for (const char* folder : kGoldenFolders) {
    SCOPED_TRACE(folder);
    check_golden_ddim(folder);
  }
}

TEST(GoldenSchedulers, DDPM) {
  if (!golden_present()) GTEST_SKIP() << "golden data not found at " << kGolden;
  for (const char* folder : kGoldenFolders) {
    SCOPED_TRACE(folder);
    check_golden_ddpm(folder);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Config.

TEST(SchedulerConfig, Parse) {
  {  // ParsesStableDiffusion15

    const SchedulerConfig c = SchedulerConfig::from_json(sd15_json(), "sd15.json");
    EXPECT_EQ(c.class_name, "PNDMScheduler");
    EXPECT_EQ(c.num_train_timesteps, 1000);
    EXPECT_DOUBLE_EQ(c.beta_start, 0.00085);
    EXPECT_EQ(c.beta_schedule, "scaled_linear");
    EXPECT_EQ(c.clip_sample, false);
    EXPECT_EQ(c.set_alpha_to_one, false);
    EXPECT_TRUE(c.skip_prk_steps);
    EXPECT_EQ(c.steps_offset, 1);
    EXPECT_FALSE(c.timestep_spacing.has_value());
    EXPECT_EQ(c.ignored_keys, std::vector<std::string>{"_diffusers_version"});
    EXPECT_EQ(std::string(make_scheduler(c)->name()), "PNDMScheduler");
    // Class defaults fill what the file leaves unset.
    nlohmann::json j = sd15_json();
    j.erase("clip_sample");
    j.erase("set_alpha_to_one");
    const SchedulerConfig d = SchedulerConfig::from_json(j);
    auto ddim = make_scheduler(d, "DDIMScheduler");
    EXPECT_TRUE(*ddim->config().clip_sample);
    EXPECT_EQ(static_cast<nd::DDIMScheduler&>(*ddim).final_alpha_cumprod(), 1.f);
    EXPECT_EQ(*ddim->config().timestep_spacing, nd::TimestepSpacing::kLeading);
    auto pndm = make_scheduler(d);
    EXPECT_EQ(static_cast<nd::PNDMScheduler&>(*pndm).final_alpha_cumprod(),
              pndm->schedule().alpha_cumprod(0));
    EXPECT_EQ(*make_scheduler(d, "euler")->config().timestep_spacing, nd::TimestepSpacing::kLinspace);
  }
  {  // UseDefaultValuesAndNullCountAsAbsent

    nlohmann::json j = sd15_json();
    j["_class_name"] = "DDIMScheduler";
    j["timestep_spacing"] = "leading";
    j["prediction_type"] = "v_prediction";
    j["sigma_min"] = nullptr;
    j["_use_default_values"] = {"timestep_spacing"};
    j["solver_order"] = 2;  // a DPMSolver key: ignored
    const SchedulerConfig c = SchedulerConfig::from_json(j);
    EXPECT_FALSE(c.timestep_spacing.has_value());
    EXPECT_FALSE(c.sigma_min.has_value());
    EXPECT_EQ(c.prediction_type, PredictionType::kVPrediction);
    EXPECT_EQ(c.ignored_keys, (std::vector<std::string>{"_diffusers_version", "solver_order"}));
    // Euler therefore uses its own default spacing, linspace.
    EXPECT_EQ(*make_scheduler(c, "EulerDiscreteScheduler")->config().timestep_spacing,
              nd::TimestepSpacing::kLinspace);
  }
  {  // TrainedBetasAndSchedules

    nlohmann::json j = sd15_json();
    j["num_train_timesteps"] = 4;
    j["trained_betas"] = {0.1, 0.2, 0.3, 0.4};
    j["beta_schedule"] = "whatever";  // ignored with trained_betas, as in diffusers
    auto s = make_scheduler(SchedulerConfig::from_json(j), "ddim");
    EXPECT_NEAR(s->schedule().alpha_cumprod(3), 0.9 * 0.8 * 0.7 * 0.6, 1e-7);
    j = sd15_json();
    j["beta_schedule"] = "squaredcos_cap_v2";
    EXPECT_NEAR(make_scheduler(SchedulerConfig::from_json(j))->schedule().betas()[999].item<float>(), 0.999f,
                1e-7);
    j = sd15_json();
    j["rescale_betas_zero_snr"] = true;
    EXPECT_NEAR(make_scheduler(SchedulerConfig::from_json(j), "ddim")->schedule().alpha_cumprod(999), 0.0,
                1e-12);
  }
}

void expect_input_error(const nlohmann::json& j, const std::string& needle) {
  try {
    SchedulerConfig::from_json(j, "my/scheduler_config.json");
    ADD_FAILURE() << "no InputError for " << j.dump();
  } catch (const nd::InputError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("my/scheduler_config.json"), std::string::npos) << what;
    EXPECT_NE(what.find(needle), std::string::npos) << what;
  }
}

TEST(SchedulerConfig, Errors) {
  {  // ErrorsNameFileAndField

    nlohmann::json j = sd15_json();
    j["_class_name"] = "FooScheduler";
    expect_input_error(j, "_class_name");
    j = sd15_json();
    j["beta_schedule"] = "quadratic";
    expect_input_error(j, "beta_schedule");
    j = sd15_json();
    j["prediction_type"] = "noise";
    expect_input_error(j, "prediction_type");
    j = sd15_json();
    j["timestep_spacing"] = "uniform";
    expect_input_error(j, "timestep_spacing");
    j = sd15_json();
    j["num_train_timesteps"] = "1000";
    expect_input_error(j, "num_train_timesteps");
    j = sd15_json();
    j["clip_sample"] = 1;
    expect_input_error(j, "clip_sample");
    j = sd15_json();
    j["trained_betas"] = {0.1, 0.2};
    expect_input_error(j, "trained_betas");
    j = sd15_json();
    j["_class_name"] = "DDPMScheduler";
    j["variance_type"] = "learned";
    expect_input_error(j, "variance_type");
    expect_input_error(nlohmann::json::array(), "JSON object");
    EXPECT_THROW(SchedulerConfig::load("/nonexistent/scheduler_config.json"), nd::InputError);
  }
  {  // ClassesAndOverrides

    nlohmann::json j = sd15_json();
    j["_class_name"] = "LMSDiscreteScheduler";  // a real diffusers class we do not implement
    const SchedulerConfig c = SchedulerConfig::from_json(j, "lms.json");
    try {
      make_scheduler(c);
      ADD_FAILURE() << "expected InputError";
    } catch (const nd::InputError& e) {
      EXPECT_NE(std::string(e.what()).find("lms.json"), std::string::npos);
      EXPECT_NE(std::string(e.what()).find("LMSDiscreteScheduler"), std::string::npos);
    }
    EXPECT_STREQ(make_scheduler(c, "ddim")->name(), "DDIMScheduler");
    EXPECT_STREQ(make_scheduler(c, "DDPM")->name(), "DDPMScheduler");
    EXPECT_STREQ(make_scheduler(c, "plms")->name(), "PNDMScheduler");
    EXPECT_STREQ(make_scheduler(c, "EulerDiscreteScheduler")->name(), "EulerDiscreteScheduler");
    EXPECT_THROW(make_scheduler(c, "heun"), nd::InputError);
    nlohmann::json nameless = sd15_json();
    nameless.erase("_class_name");
    EXPECT_THROW(make_scheduler(SchedulerConfig::from_json(nameless)), nd::InputError);
    nlohmann::json sample = sd15_json();
    sample["prediction_type"] = "sample";
    EXPECT_THROW(make_scheduler(SchedulerConfig::from_json(sample)), nd::InputError);  // PNDM can't
  }
}

// ---------------------------------------------------------------------------------------------------------
// Timesteps.

TEST(Timesteps, Spacings) {
  {  // Spacings

    using nd::TimestepSpacing;
    EXPECT_EQ(nd::spaced_timesteps(TimestepSpacing::kLeading, 1000, 4, 1),
              (std::vector<int64_t>{751, 501, 251, 1}));
    EXPECT_EQ(nd::spaced_timesteps(TimestepSpacing::kTrailing, 1000, 4, 1),
              (std::vector<int64_t>{999, 749, 499, 249}));
    // linspace(0, 999, 7) = 0, 166.5, 333, 499.5, 666, 832.5, 999 rounds half to even.
    EXPECT_EQ(nd::spaced_timesteps(TimestepSpacing::kLinspace, 1000, 7, 0),
              (std::vector<int64_t>{999, 832, 666, 500, 333, 166, 0}));
    EXPECT_EQ(nd::spaced_timesteps(TimestepSpacing::kLinspace, 1000, 1, 0), (std::vector<int64_t>{0}));
    // trailing, 3 steps: arange(1000, 0, -333.33) = 1000, 666.67, 333.33 → 999, 666, 332.
    EXPECT_EQ(nd::spaced_timesteps(TimestepSpacing::kTrailing, 1000, 3, 0),
              (std::vector<int64_t>{999, 666, 332}));
    // numpy's arange gives 62 entries for n = 61 (diffusers then ends at t = -1); we keep 61.
    const auto t61 = nd::spaced_timesteps(TimestepSpacing::kTrailing, 1000, 61, 0);
    ASSERT_EQ(t61.size(), 61u);
    EXPECT_EQ(t61.front(), 999);
    EXPECT_GE(t61.back(), 0);
    EXPECT_EQ(nd::numpy_arange(1000, 0, -1000.0 / 61, 1000).size(), 62u);
  }
  {  // StepCountAndOffsetErrors

    auto s = make_scheduler(SchedulerConfig::from_json(sd15_json()), "ddim");
    EXPECT_THROW(s->set_timesteps(0), nd::InputError);
    EXPECT_THROW(s->set_timesteps(1001), nd::InputError);
    EXPECT_THROW(s->set_timesteps(1000), nd::InputError);  // 999 + steps_offset 1 = 1000 is no timestep
    EXPECT_NO_THROW(s->set_timesteps(999));
  }
}

TEST(Timesteps, PNDMMatchesDiffusers) {
  {  // PNDMPlms50MatchesDiffusers

    auto s = make_scheduler(SchedulerConfig::from_json(sd15_json()));
    s->set_timesteps(50);
    // _timesteps = 1, 21, ..., 981; PLMS order = [981, 961, 961, 941, 921, ..., 21, 1] (51 model calls).
    std::vector<int64_t> expected = {981, 961, 961};
    for (int64_t t = 941; t >= 1; t -= 20) expected.push_back(t);
    EXPECT_EQ(s->timesteps(), expected);
    EXPECT_EQ(s->timesteps().size(), 51u);
    s->set_timesteps(1);
    EXPECT_EQ(s->timesteps(), (std::vector<int64_t>{1}));
  }
  {  // PNDMPrkMatchesDiffusers

    nlohmann::json j = sd15_json();
    j["skip_prk_steps"] = false;
    auto s = make_scheduler(SchedulerConfig::from_json(j));
    s->set_timesteps(10);
    const auto& pndm = static_cast<const nd::PNDMScheduler&>(*s);
    EXPECT_EQ(pndm.prk_timesteps(),
              (std::vector<int64_t>{901, 851, 851, 801, 801, 751, 751, 701, 701, 651, 651, 601}));
    EXPECT_EQ(pndm.plms_timesteps(), (std::vector<int64_t>{601, 501, 401, 301, 201, 101, 1}));
    EXPECT_EQ(s->timesteps().size(), 19u);
    EXPECT_THROW(s->set_timesteps(3), nd::InputError);
  }
}

// ---------------------------------------------------------------------------------------------------------
// img2img.

TEST(Img2Img, Timesteps) {
  {  // TimestepsAsDiffusers

    auto ddim = make_scheduler(SchedulerConfig::from_json(sd15_json()), "ddim");
    // 50 steps, strength 0.75: init_timestep 37, t_start 13 → timesteps[13:] = 721, 701, ..., 1.
    const std::vector<int64_t> ts = nd::img2img_timesteps(*ddim, 50, 0.75);
    ASSERT_EQ(ts.size(), 37u);
    EXPECT_EQ(ts.front(), 721);
    EXPECT_EQ(ts.back(), 1);
    EXPECT_EQ(nd::img2img_timesteps(*ddim, 50, 1.0).size(), 50u);
    // int(10 · 0.3) = 3 (floating 0.3·10 = 3.0000000000000004 truncates to 3).
    EXPECT_EQ(nd::img2img_timesteps(*ddim, 10, 0.3), (std::vector<int64_t>{201, 101, 1}));
    // PNDM keeps its repeated timestep in the slice (order 1).
    auto pndm = make_scheduler(SchedulerConfig::from_json(sd15_json()));
    const std::vector<int64_t> tp = nd::img2img_timesteps(*pndm, 50, 0.5);
    EXPECT_EQ(tp.size(), 26u);
    EXPECT_EQ(tp.front(), 501);  // [981, 961, 961, 941, ...][25]
  }
  {  // StrengthOutOfRange

    auto s = make_scheduler(SchedulerConfig::from_json(sd15_json()), "ddim");
    for (double bad : {0.0, -0.1, 1.5, std::nan("")}) {
      try {
        nd::img2img_timesteps(*s, 50, bad);
        ADD_FAILURE() << "strength " << bad << " accepted";
      } catch (const nd::InputError& e) {
        EXPECT_NE(std::string(e.what()).find("strength"), std::string::npos);
      }
    }
    EXPECT_THROW(nd::img2img_timesteps(*s, 50, 0.01), nd::InputError);  // int(0.5) = 0 steps left
    EXPECT_THROW(nd::img2img_timesteps(*s, 0, 0.5), nd::InputError);
  }
}

// ---------------------------------------------------------------------------------------------------------
// Steps by hand.

TEST(DDIM, StepByHand) {
  {  // PredictionTypesAgree

    // The same (x0, ε) expressed as each prediction type gives the same DDIM step (η = 0 and η = 1).
    const at::Tensor x0 = at::randn({2, 3, 4}, at::kDouble).clamp(-0.9, 0.9),
                     eps = at::randn({2, 3, 4}, at::kDouble);
    const at::Tensor noise = at::randn({2, 3, 4}, at::kDouble);
    for (double eta : {0.0, 1.0}) {
      std::vector<at::Tensor> prevs;
      for (const char* type : {"epsilon", "v_prediction", "sample"}) {
        nlohmann::json j = sd15_json();
        j["prediction_type"] = type;
        auto s = make_scheduler(SchedulerConfig::from_json(j), "ddim");
        static_cast<nd::DDIMScheduler&>(*s).set_eta(eta);
        s->set_timesteps(20);
        const int64_t t = s->timesteps()[5];
        const at::Tensor xt = s->schedule().add_noise(x0, eps, t);
        const at::Tensor out = std::string(type) == "epsilon"        ? eps
                               : std::string(type) == "v_prediction" ? s->schedule().velocity(x0, eps, t)
                                                                     : x0;
        const nd::StepResult r = s->step_full(out, t, xt, nullptr, noise);
        EXPECT_LT(max_abs(r.pred_original_sample, x0), 1e-6) << type;
        prevs.push_back(r.prev_sample);
      }
      EXPECT_LT(max_abs(prevs[0], prevs[1]), 1e-6);
      EXPECT_LT(max_abs(prevs[0], prevs[2]), 1e-6);
    }
  }
  {  // ClipSampleAndThresholding

    nlohmann::json j = sd15_json();
    j["clip_sample"] = true;
    j["clip_sample_range"] = 0.5;
    auto s = make_scheduler(SchedulerConfig::from_json(j), "ddim");
    s->set_timesteps(10);
    const at::Tensor x = at::randn({1, 4, 8, 8}) * 3, e = at::randn({1, 4, 8, 8});
    const nd::StepResult r = s->step_full(e, 501, x);
    EXPECT_LE(r.pred_original_sample.abs().max().item<float>(), 0.5f);
    // Dynamic thresholding: s = clamp(quantile(|x0|, ratio), 1, max); x0 → clamp(x0, −s, s)/s.
    const at::Tensor a = at::linspace(-4, 4, 101, at::kFloat).reshape({1, 101});
    const at::Tensor th = nd::dynamic_threshold(a, 0.9, 3.0);
    const float q = at::quantile(a.abs(), 0.9).item<float>();  // 3.6, clamped to 3
    EXPECT_GT(q, 3.f);
    EXPECT_LT(max_abs(th, a.clamp(-3, 3) / 3), 1e-7);
    j["thresholding"] = true;
    j["sample_max_value"] = 2.0;
    auto t = make_scheduler(SchedulerConfig::from_json(j), "ddim");
    t->set_timesteps(10);
    EXPECT_LE(t->step_full(e, 501, x).pred_original_sample.abs().max().item<float>(), 1.f + 1e-6f);
  }
}

TEST(DDPM, VarianceTypes) {
  const at::Tensor x = at::randn({1, 2, 4, 4}), e = at::randn({1, 2, 4, 4}), z = at::randn({1, 2, 4, 4});
  nlohmann::json j = sd15_json();
  j["_class_name"] = "DDPMScheduler";
  auto small = make_scheduler(SchedulerConfig::from_json(j));
  small->set_timesteps(10);
  const int64_t t = 501, prev_t = 401;
  const double a = small->schedule().alpha_cumprod(t), ap = small->schedule().alpha_cumprod(prev_t);
  const double beta = 1 - a / ap, var_small = (1 - ap) / (1 - a) * beta;
  const at::Tensor mean = small->step_full(e, t, x, nullptr, at::zeros_like(z)).prev_sample;
  const at::Tensor with_noise = small->step_full(e, t, x, nullptr, z).prev_sample;
  EXPECT_LT(max_abs(with_noise - mean, z * std::sqrt(var_small)), 1e-6);
  // The posterior mean, written out in float64.
  const at::Tensor x0 = (x.to(at::kDouble) - std::sqrt(1 - a) * e.to(at::kDouble)) / std::sqrt(a);
  const at::Tensor mean64 =
      std::sqrt(ap) * beta / (1 - a) * x0 + std::sqrt(1 - beta) * (1 - ap) / (1 - a) * x.to(at::kDouble);
  EXPECT_LT(max_abs(mean, mean64), 1e-5);
  // At t = 0 (the last step of a 1000-step run) no noise is added.
  auto base = make_scheduler(SchedulerConfig::from_json(sd15_json()), "ddpm");
  EXPECT_LT(max_abs(base->step_full(e, 0, x, nullptr, z).prev_sample,
                    base->step_full(e, 0, x, nullptr, at::zeros_like(z)).prev_sample),
            0.0 + 1e-300);
  for (const char* type : {"fixed_large", "fixed_large_log", "fixed_small_log"}) {
    j["variance_type"] = type;
    auto s = make_scheduler(SchedulerConfig::from_json(j));
    s->set_timesteps(10);
    const double std_expected =
        std::string(type) == "fixed_small_log" ? std::sqrt(var_small) : std::sqrt(beta);
    const at::Tensor d = s->step_full(e, t, x, nullptr, z).prev_sample - mean;
    EXPECT_LT(max_abs(d, z * std_expected), 1e-5) << type;
  }
  // learned_range: v = −1 gives the small variance, v = +1 the large one.
  j["variance_type"] = "learned_range";
  auto lr = make_scheduler(SchedulerConfig::from_json(j));
  lr->set_timesteps(10);
  for (double v : {-1.0, 1.0}) {
    const at::Tensor out = at::cat({e, at::full_like(e, v)}, 1);
    const at::Tensor d = lr->step_full(out, t, x, nullptr, z).prev_sample - mean;
    EXPECT_LT(max_abs(d, z * std::sqrt(v < 0 ? var_small : beta)), 1e-5) << v;
  }
}

TEST(Euler, Sigmas) {
  {  // SigmasAndScaleModelInput

    auto s = make_scheduler(SchedulerConfig::from_json(sd15_json()), "euler");
    auto& euler = static_cast<nd::EulerDiscreteScheduler&>(*s);
    const auto sigma_at = [&](int t) {
      const double a = s->schedule().alpha_cumprod(t);
      return std::sqrt((1 - a) / a);
    };
    s->set_timesteps(10);  // linspace: 999, 888, ..., 0 exactly
    ASSERT_EQ(euler.sigmas().size(), 11u);
    for (int i = 0; i < 10; ++i) {
      EXPECT_EQ(s->timesteps()[i], 999 - 111 * i);
      EXPECT_NEAR(euler.sigmas()[i], sigma_at(999 - 111 * i), 2e-6 * sigma_at(999 - 111 * i));
    }
    EXPECT_EQ(euler.sigmas()[10], 0.f);
    EXPECT_NEAR(s->init_noise_sigma(), 14.6146, 1e-3);  // SD's σ_max, diffusers' init_noise_sigma
    // 50 steps: fractional timesteps, σ linearly interpolated between training timesteps.
    s->set_timesteps(50);
    for (int i : {1, 17, 48}) {
      const double tf = s->model_timesteps()[i];
      EXPECT_NEAR(tf, static_cast<float>((49 - i) * (999.0 / 49)), 1e-3);
      EXPECT_EQ(s->timesteps()[i], static_cast<int64_t>(std::nearbyint(tf)));
      const int lo = static_cast<int>(std::floor(tf));
      const double expect = sigma_at(lo) + (sigma_at(lo + 1) - sigma_at(lo)) * (tf - lo);
      EXPECT_NEAR(euler.sigmas()[i], expect, 1e-5 * expect) << i;
    }
    // scale_model_input divides by √(σ² + 1) at the run's current index.
    const at::Tensor x = at::randn({1, 4, 8, 8});
    const float sig0 = euler.sigmas()[0];
    EXPECT_LT(max_abs(s->scale_model_input(x, s->timesteps()[0]), x / std::sqrt(sig0 * sig0 + 1.0)), 1e-6);
    EXPECT_EQ(euler.step_index(), 0);
    // One ε step: x + ε·(σ_1 − σ_0).
    const at::Tensor e = at::randn({1, 4, 8, 8});
    const nd::StepResult r = s->step_full(e, s->timesteps()[0], x);
    EXPECT_LT(max_abs(r.prev_sample, x + e * (euler.sigmas()[1] - sig0)), 1e-5);
    EXPECT_LT(max_abs(r.pred_original_sample, x - e * sig0), 1e-5);
    EXPECT_EQ(euler.step_index(), 1);
    // add_noise: x0 + σ_t·noise; leading spacing: init_noise_sigma = √(σ_max² + 1).
    EXPECT_LT(max_abs(s->add_noise(x, e, s->timesteps()[3]), x + e * euler.sigmas()[3]), 1e-6);
    nlohmann::json j = sd15_json();
    j["timestep_spacing"] = "leading";
    auto lead = make_scheduler(SchedulerConfig::from_json(j), "euler");
    lead->set_timesteps(50);
    EXPECT_EQ(lead->timesteps().front(), 981);
    const float smax = static_cast<nd::EulerDiscreteScheduler&>(*lead).sigmas()[0];
    EXPECT_NEAR(lead->init_noise_sigma(), std::sqrt(smax * smax + 1.0), 1e-5);
  }
  {  // KarrasAndLogLinear

    nlohmann::json j = sd15_json();
    j["use_karras_sigmas"] = true;
    auto s = make_scheduler(SchedulerConfig::from_json(j), "euler");
    auto& euler = static_cast<nd::EulerDiscreteScheduler&>(*s);
    s->set_timesteps(20);
    const auto& sig = euler.sigmas();
    ASSERT_EQ(sig.size(), 21u);
    EXPECT_NEAR(sig[0], euler.train_sigmas().back(), 1e-4);    // σ at t = 999
    EXPECT_NEAR(sig[19], euler.train_sigmas().front(), 1e-6);  // σ at t = 0
    for (int i = 0; i < 19; ++i) EXPECT_GT(sig[i], sig[i + 1]);
    // ρ = 7: σ_i^(1/7) is linear in i.
    const double r0 = std::pow(sig[0], 1 / 7.0), r19 = std::pow(sig[19], 1 / 7.0);
    EXPECT_NEAR(std::pow(sig[7], 1 / 7.0), r0 + (r19 - r0) * 7 / 19, 1e-5);
    // The model timesteps map back to the σ's.
    EXPECT_NEAR(euler.sigma_to_timestep(euler.train_sigmas()[321]), 321.0, 1e-3);
    EXPECT_NEAR(s->model_timesteps()[0], 999.0, 1e-3);
    j = sd15_json();
    j["interpolation_type"] = "log_linear";
    auto l = make_scheduler(SchedulerConfig::from_json(j), "euler");
    l->set_timesteps(10);
    const auto& ls = static_cast<nd::EulerDiscreteScheduler&>(*l).sigmas();
    ASSERT_EQ(ls.size(), 12u);  // n + 1 log-spaced σ's and the final 0, as diffusers
    EXPECT_NEAR(std::log(ls[5]) - std::log(ls[4]), std::log(ls[1]) - std::log(ls[0]), 1e-4);
  }
}

}  // namespace
