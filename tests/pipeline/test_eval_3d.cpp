// eval-3d: the view-consistency check on ground-truth chairs, prompt-file validation, and a tiny end-to-end
// evaluation on a random prior.
#include <gtest/gtest.h>

#include <filesystem>

#include "core/atomic_file.h"
#include "pipeline/eval_3d.h"
#include "pipeline/view_consistency.h"
#include "prior/tiny_prior.h"
#include "synth/scene.h"
#include "test_support.h"
#include "tiny_prior_fixture.h"

namespace fs = std::filesystem;

namespace nd {
namespace {

// σ = 50 inside the object on density_lattice's points over [-1,1]^3, else 0.
at::Tensor truth_lattice(const std::string& caption, int res = 64) {
  const SynthScene scene(parse_caption(caption).object);
  at::Tensor d = at::zeros({res, res, res}, at::kFloat);
  auto a = d.accessor<float, 3>();
  auto x = [&](int i) { return -1.0 + 2.0 * i / (res - 1); };
  for (int i = 0; i < res; ++i)
    for (int j = 0; j < res; ++j)
      for (int k = 0; k < res; ++k) a[i][j][k] = scene.inside(x(i), x(j), x(k)) ? 50.f : 0.f;
  return d;
}

TEST(ViewConsistency, TheChairFacesFrontAndItsMirrorDoesNot) {
  const at::Tensor chair = truth_lattice("a chair");
  const double a = front_back_mass(chair, 1.0, kChairBackrestRegion).asymmetry();
  EXPECT_GT(a, 0.99);                           // the backrest is all behind, nothing above the seat in front
  const at::Tensor mirrored = chair.flip({2});  // z → −z: the backrest in front
  EXPECT_LT(front_back_mass(mirrored, 1.0, kChairBackrestRegion).asymmetry(), -0.99);
  // Janus: a backrest on both sides scores about 0, which does not count as facing front.
  const double janus = front_back_mass(at::maximum(chair, mirrored), 1.0, kChairBackrestRegion).asymmetry();
  EXPECT_NEAR(janus, 0.0, 1e-9);
  EXPECT_LT(janus, kFacesFrontMinAsymmetry);
  // Symmetric objects and empty space score 0 in the default band (the upper half).
  EXPECT_NEAR(front_back_mass(truth_lattice("a red sphere on top of a blue cube", 33), 1.0).asymmetry(), 0.0,
              1e-9);
  EXPECT_EQ(front_back_mass(at::zeros({8, 8, 8}), 1.0).asymmetry(), 0.0);
  // The mass is bounded per cell: a very dense small part does not outweigh a large faint one.
  at::Tensor d = at::zeros({33, 33, 33});
  d.select(1, 24).select(1, 2).fill_(1e6);      // one line of cells behind
  d.select(1, 24).narrow(1, 20, 13).fill_(40);  // a block in front
  EXPECT_LT(front_back_mass(d, 1.0).asymmetry(), 0.0);
  EXPECT_NE(test::input_error_of([] { front_back_mass(at::zeros({4, 4, 5}), 1.0); }), "<no InputError>");
}

TEST(ViewConsistency, AFreshFieldIsSymmetric) {
  GenerateConfig c;  // the blob init: a ball at the centre
  c.field.grid.bound = 1.0;
  torch::manual_seed(0);
  NerfField field(c.field);
  double a = 1;
  EXPECT_FALSE(chair_faces_front(*field, &a));
  EXPECT_LT(std::abs(a), 0.1);
}

TEST(Eval3D, PromptFileIsCheckedBeforeAnyRun) {
  test::TempDir dir;
  const std::string f = dir.path + "/prompts.txt";
  write_file_atomically(f, "# singles\na red cube\n\n  a chair  \n");
  EXPECT_EQ(read_eval_prompts(f), (std::vector<std::string>{"a red cube", "a chair"}));

  write_file_atomically(f, "");
  EXPECT_TRUE(test::contains(test::input_error_of([&] { read_eval_prompts(f); }), "no prompts"));
  write_file_atomically(f, "# only a comment\n\n");
  EXPECT_TRUE(test::contains(test::input_error_of([&] { read_eval_prompts(f); }), f + ": no prompts"));
  write_file_atomically(f, "a red cube\n# fine\na crimson cube\na blue sphere\n");
  const std::string e = test::input_error_of([&] { read_eval_prompts(f); });
  EXPECT_TRUE(test::contains(e, f + ":3: ")) << e;
  EXPECT_TRUE(test::contains(e, "crimson")) << e;
  EXPECT_TRUE(test::contains(test::input_error_of([&] { read_eval_prompts(dir.path + "/missing.txt"); }),
                             "missing.txt"));
  // The shipped list is valid.
  EXPECT_EQ(read_eval_prompts(NERFDREAM_SOURCE_DIR "/prompts/eval-3d.txt").size(), 8u);
}

TEST(Eval3D, RunsEveryPromptAndSeedAndRefusesToClobber) {
  test::TempDir dir;
  Eval3DOptions o;
  o.prior_path = test::write_tiny_prior(dir.path);
  o.out_dir = dir.path + "/eval";
  o.progress = false;
  o.view_resolution = 8;
  GenerateConfig c;
  c.method = "sds";
  c.optim.steps = 2;
  c.mesh.resolution = 16;
  std::vector<Eval3DRun> seen;
  const Eval3DSummary s =
      run_eval_3d({"a red cube", "a chair"}, c, o, [&](const Eval3DRun& r) { seen.push_back(r); });
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(s.runs, 2);
  EXPECT_EQ(s.synth_runs, 2);
  EXPECT_EQ(s.chair_runs, 1);
  EXPECT_FALSE(seen[0].chair);
  EXPECT_TRUE(seen[1].chair);
  EXPECT_EQ(seen[1].dir, o.out_dir + "/a-chair/seed-0");
  EXPECT_TRUE(fs::exists(seen[1].dir + "/metrics.json"));
  EXPECT_NEAR(s.mean_iou, (seen[0].result.iou + seen[1].result.iou) / 2, 1e-12);
  const auto j = to_json(seen[1]);
  EXPECT_TRUE(j.contains("iou") && j.contains("faces_front") && j.contains("seconds"));
  EXPECT_EQ(to_json(s)["chair_runs"], 1);

  // Existing run folders: refused before anything runs.
  EXPECT_TRUE(
      test::contains(test::input_error_of([&] { run_eval_3d({"a red cube"}, c, o); }), "--overwrite"));
  o.seeds = 0;
  EXPECT_NE(test::input_error_of([&] { run_eval_3d({"a red cube"}, c, o); }), "<no InputError>");
}

}  // namespace
}  // namespace nd
