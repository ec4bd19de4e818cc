// The synth classifier (labels, training, weights) and eval-prior's report on a tiny random prior.
#include <gtest/gtest.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>

#include "core/atomic_file.h"
#include "io/safetensors.h"
#include "prior/prior_eval.h"
#include "prior/synth_classifier.h"
#include "synth/caption.h"
#include "test_support.h"

namespace nd {
namespace {

TEST(SynthClassifierLabels, SinglesStacksNamedObjects) {
  const ClassifierLabels single = caption_labels("a red cube");
  EXPECT_EQ(single.object, 0);
  EXPECT_EQ(single.color, 0);
  EXPECT_EQ(single.top_shape, -1);
  EXPECT_EQ(single.bottom_shape, -1);
  EXPECT_EQ(single.bottom_color, -1);

  // The top part is the first one named; its color is the `color` head's label.
  const ClassifierLabels stack = caption_labels("an orange cone on top of a blue sphere, side view");
  EXPECT_EQ(stack.object, kStackClass);
  EXPECT_EQ(stack.top_shape, 3);     // cone
  EXPECT_EQ(stack.color, 1);         // orange
  EXPECT_EQ(stack.bottom_shape, 1);  // sphere
  EXPECT_EQ(stack.bottom_color, 4);  // blue

  const ClassifierLabels chair = caption_labels("a chair, front view");
  EXPECT_EQ(object_class_names()[chair.object], "chair");
  EXPECT_EQ(chair.color, -1);
  EXPECT_EQ(caption_labels("A Purple  Torus").object, 4);  // any case and spacing
  EXPECT_EQ(caption_labels("A Purple  Torus").color, 5);
  EXPECT_TRUE(test::contains(test::input_error_of([] { caption_labels("a pink cube"); }), "pink"));

  // Every caption of the grammar gets a label set of its kind.
  for (const auto& c : all_captions()) {
    const ClassifierLabels l = caption_labels(c);
    ASSERT_GE(l.object, 0) << c;
    EXPECT_EQ(l.object == kStackClass, l.top_shape >= 0 && l.bottom_shape >= 0 && l.bottom_color >= 0) << c;
    EXPECT_EQ(l.object < kFirstNamedClass || l.object == kStackClass, l.color >= 0) << c;
  }
}

TEST(SynthClassifierLabels, ViewWordsAndSymmetry) {
  EXPECT_EQ(view_label(15, 0), 0);     // front
  EXPECT_EQ(view_label(15, 90), 1);    // side
  EXPECT_EQ(view_label(15, -100), 1);  // side
  EXPECT_EQ(view_label(15, 180), 2);   // back
  EXPECT_EQ(view_label(15, -170), 2);  // back
  EXPECT_EQ(view_label(70, 30), 3);    // overhead
  EXPECT_EQ(view_label(60, 180), 3);

  const int chair = 8, dumbbell = 9, cube = 0;
  EXPECT_EQ(view_match_mask(chair, 0), 0b0001);
  EXPECT_EQ(view_match_mask(chair, 2), 0b0100);
  EXPECT_EQ(view_match_mask(dumbbell, 0), 0b0101);  // front = back; side differs
  EXPECT_EQ(view_match_mask(dumbbell, 1), 0b0010);
  EXPECT_EQ(view_match_mask(cube, 2), 0b0111);
  EXPECT_EQ(view_match_mask(kStackClass, 3), 0b1000);
  EXPECT_EQ(view_match_mask(1, 3), 0b1111);  // a sphere

  // classifier_targets reads caption indices and cameras.
  const auto all = all_captions();
  const int64_t stack = std::find(all.begin(), all.end(), "a red cube on top of a blue sphere") - all.begin();
  const int64_t chair_index = std::find(all.begin(), all.end(), "a chair") - all.begin();
  const ClassifierTargets t =
      classifier_targets(at::tensor(std::vector<int32_t>{int32_t(stack), int32_t(chair_index)}),
                         at::tensor({15.f, 0.f, 3.f, 45.f, 15.f, 180.f, 3.f, 45.f}).view({2, 4}));
  EXPECT_EQ(t.object[0].item<int64_t>(), kStackClass);
  EXPECT_EQ(t.top_shape[0].item<int64_t>(), 0);
  EXPECT_EQ(t.bottom_shape[0].item<int64_t>(), 1);
  EXPECT_EQ(t.bottom_color[0].item<int64_t>(), 4);
  EXPECT_EQ(t.object[1].item<int64_t>(), chair);
  EXPECT_EQ(t.color[1].item<int64_t>(), -1);
  EXPECT_TRUE(t.view_mask[0].to(at::kInt).equal(at::tensor({1, 1, 1, 0})));
  EXPECT_TRUE(t.view_mask[1].to(at::kInt).equal(at::tensor({0, 0, 1, 0})));
}

SynthClassifierConfig small_config() {
  SynthClassifierConfig c;
  c.channels = {8, 16, 16, 24};
  c.reduce = 8;
  c.hidden = 32;
  c.groups = 4;
  return c;
}

TEST(SynthClassifier, TrainsAboveChanceOnATinyDataset) {
  ClassifierTrainOptions o;
  o.model = small_config();
  o.data.size = 1200;
  o.data.seed = 77;
  o.heldout_size = 400;
  o.steps = 300;
  o.batch = 32;
  o.lr = 3e-3;
  o.progress = false;
  const ClassifierTrainResult r = train_synth_classifier(o);
  EXPECT_EQ(r.steps_done, 300);
  std::printf("held-out object %.3f color %.3f view %.3f\n", r.heldout.at("object"), r.heldout.at("color"),
              r.heldout.at("view"));
  // Chance: the most common class (stacks, 40 %) for the object head, 1/8 for colors.
  EXPECT_GT(r.heldout.at("object"), 0.6);
  EXPECT_GT(r.heldout.at("color"), 0.3);
  for (const auto& [name, acc] : r.heldout) {
    EXPECT_GE(acc, 0.0) << name;
    EXPECT_LE(acc, 1.0) << name;
  }
}

TEST(SynthClassifier, SaveLoadRoundTrip) {
  test::TempDir dir;
  const std::string path = dir.path + "/c.safetensors";
  torch::manual_seed(3);
  SynthClassifier model(small_config());
  save_classifier(path, model, {{"note", "test"}});
  SynthClassifier back = load_classifier(path);
  EXPECT_EQ(back->config().channels, small_config().channels);
  EXPECT_EQ(back->config().hidden, 32);
  const at::Tensor x = at::rand({4, 3, 32, 32});
  torch::NoGradGuard no_grad;
  const ClassifierOutput a = model->forward(x), b = back->forward(x);
  EXPECT_EQ(test::max_abs_diff(a.object, b.object), 0.0);
  EXPECT_EQ(test::max_abs_diff(a.view, b.view), 0.0);
  EXPECT_EQ(test::max_abs_diff(a.bottom_color, b.bottom_color), 0.0);
  // 64×64 inputs are area-resized; the prediction has one entry per image.
  EXPECT_EQ(classify(back, at::rand({2, 3, 64, 64})).object.size(0), 2);
}

TEST(SynthClassifier, MalformedWeightsAreInputErrors) {
  test::TempDir dir;
  const std::string garbage = dir.path + "/garbage.safetensors";
  write_file_atomically(garbage, "this is not a safetensors file at all");
  EXPECT_TRUE(test::contains(test::input_error_of([&] { load_classifier(garbage); }), garbage));

  // A safetensors file of another kind.
  const std::string other = dir.path + "/other.safetensors";
  save_safetensors(other, {{"x", at::zeros({2})}}, {{"format", "nerfdream.prior"}});
  EXPECT_TRUE(test::contains(test::input_error_of([&] { load_classifier(other); }), "synth classifier"));

  // A classifier file with a tensor of the wrong shape.
  const std::string bad = dir.path + "/bad.safetensors";
  SynthClassifier model(small_config());
  Checkpoint ckpt;
  ckpt.config = small_config().to_json();
  for (const auto& p : model->named_parameters()) ckpt.tensors[p.key()] = p.value().detach();
  ckpt.tensors["fc.weight"] = at::zeros({3, 3});
  save_checkpoint(bad, ckpt, kSynthClassifierFormat);
  EXPECT_TRUE(test::contains(test::input_error_of([&] { load_classifier(bad); }), "fc.weight"));

  // A bad config.
  ckpt.config["channels"] = "many";
  save_checkpoint(bad, ckpt, kSynthClassifierFormat);
  EXPECT_TRUE(test::contains(test::input_error_of([&] { load_classifier(bad); }), "channels"));
}

TEST(PriorEval, FixedSet) {
  const auto full = prior_eval_set(false);
  EXPECT_EQ(full.size(), (40u + 5u + 16u) * 4u);
  EXPECT_EQ(full[0].prompt(), "a red cube, front view");
  EXPECT_EQ(full[3].prompt(), "a red cube, overhead view");
  const auto stacks = prior_eval_stacks();
  EXPECT_EQ(std::set<std::string>(stacks.begin(), stacks.end()).size(), 16u);
  std::set<int> tops, bottoms, top_colors, bottom_colors;
  for (const auto& s : stacks) {
    const ClassifierLabels l = caption_labels(s);
    EXPECT_NE(l.top_shape, l.bottom_shape) << s;
    EXPECT_NE(l.color, l.bottom_color) << s;
    tops.insert(l.top_shape), bottoms.insert(l.bottom_shape);
    top_colors.insert(l.color), bottom_colors.insert(l.bottom_color);
  }
  EXPECT_EQ(tops.size(), 5u);
  EXPECT_EQ(bottoms.size(), 5u);
  EXPECT_EQ(top_colors.size(), 8u);
  EXPECT_EQ(bottom_colors.size(), 8u);
  // The quick subset covers every view and every kind of caption.
  const auto quick = prior_eval_set(true);
  std::set<int> views, kinds;
  for (const auto& it : quick) {
    views.insert(it.view);
    const int o = caption_labels(it.caption).object;
    kinds.insert(o == kStackClass ? 2 : o >= kFirstNamedClass ? 1 : 0);
  }
  EXPECT_EQ(views.size(), 4u);
  EXPECT_EQ(kinds.size(), 3u);
}

TEST(PriorEval, JsonLineOnATinyRandomPrior) {
  TinyPriorConfig pc;
  pc.unet.channels = {16, 16};
  pc.unet.attention = {false, true};
  pc.unet.groups = 8;
  pc.unet.heads = 2;
  pc.text.width = 16;
  pc.text.layers = 1;
  pc.text.heads = 2;
  torch::manual_seed(0);
  TinyPrior prior(pc);
  SynthClassifier classifier(small_config());
  PriorEvalOptions o;
  o.quick = true;
  o.steps = 2;
  o.batch = 5;  // two batches
  o.progress = false;
  const PriorEvalResult r = evaluate_prior(prior, classifier, o);
  EXPECT_EQ(r.samples.size(), 8u);
  EXPECT_EQ(r.zero_shot_renders, 8);
  const std::string line = prior_eval_json_line(r);
  EXPECT_EQ(line.find('\n'), std::string::npos);
  const auto j = nlohmann::ordered_json::parse(line);
  const std::vector<std::string> first = {"shape_acc", "color_acc", "view_acc", "seconds_per_image"};
  auto it = j.begin();
  for (const auto& key : first) {
    ASSERT_NE(it, j.end());
    EXPECT_EQ(it.key(), key);
    EXPECT_TRUE(it.value().is_number());
    ++it;
  }
  for (const char* key :
       {"shape_acc", "color_acc", "view_acc", "zero_shot_shape_acc", "zero_shot_color_acc"}) {
    EXPECT_GE(j.at(key).get<double>(), 0.0) << key;
    EXPECT_LE(j.at(key).get<double>(), 1.0) << key;
  }
  EXPECT_GT(j.at("seconds_per_image").get<double>(), 0.0);
  EXPECT_TRUE(test::contains(format_prior_eval(r), "zero-shot"));
}

}  // namespace
}  // namespace nd
