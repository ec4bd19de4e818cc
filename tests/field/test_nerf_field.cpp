#include <gtest/gtest.h>
#include <torch/csrc/autograd/autograd.h>

#include "core/error.h"
#include "core/threads.h"
#include "field/nerf_field.h"

namespace nd {
namespace {

FieldConfig small_config() {
  FieldConfig c;
  c.grid.levels = 6;
  c.grid.log2_table_size = 12;
  c.grid.finest_resolution_per_bound = 128;
  return c;
}

TEST(NerfField, FusedMatchesReferenceForwardAndBackward) {
  set_threads(0);
  torch::manual_seed(0);
  for (bool view_dependent : {false, true}) {
    FieldConfig c = small_config();
    c.view_dependent = view_dependent;
    NerfField fused(c);
    // Bigger table values than the 1e-4 init so that the grid actually matters.
    {
      torch::NoGradGuard g;
      for (auto& p : fused->grid_parameters()) p.uniform_(-1, 1);
    }
    c.fused = false;
    NerfField ref(c);
    {
      torch::NoGradGuard g;
      auto src = fused->named_parameters();
      for (auto& item : ref->named_parameters()) item.value().copy_(src[item.key()]);
    }
    auto x = at::rand({500, 3}) * 2 - 1;
    auto d = at::randn({500, 3});
    d = d / d.norm(2, 1, true);
    auto a = fused->forward(x, d), b = ref->forward(x, d);
    EXPECT_LT((a.sigma - b.sigma).abs().max().item<float>(), 1e-4);
    EXPECT_LT((a.rgb - b.rgb).abs().max().item<float>(), 1e-5);
    (a.sigma.sum() + a.rgb.pow(2).sum()).backward();
    (b.sigma.sum() + b.rgb.pow(2).sum()).backward();
    auto pa = fused->named_parameters(), pb = ref->named_parameters();
    for (auto& item : pa) {
      auto ga = item.value().grad(), gb = pb[item.key()].grad();
      ASSERT_TRUE(ga.defined() && gb.defined()) << item.key();
      const float scale = std::max(1.0f, gb.abs().max().item<float>());
      EXPECT_LT((ga - gb).abs().max().item<float>() / scale, 1e-4) << item.key();
    }
  }
}

TEST(NerfField, BlobsShapeTheInitialDensity) {
  for (const char* kind : {"dreamfusion", "magic3d"}) {
    FieldConfig c = small_config();
    c.blob = kind;
    c.blob_density = 10;
    c.blob_radius = 0.5;
    NerfField f(c);
    torch::NoGradGuard g;
    auto sigma = f->density(at::tensor({0.0f, 0.0f, 0.0f, 0.9f, 0.0f, 0.0f}).view({2, 3}));
    EXPECT_GT(sigma[0].item<float>(), 100 * sigma[1].item<float>()) << kind;
  }
}

TEST(NerfField, NormalsPointOutwardOfABlob) {
  FieldConfig c = small_config();
  c.blob = "dreamfusion";
  c.blob_density = 5;
  c.blob_radius = 0.2;
  NerfField f(c);
  torch::NoGradGuard g;
  auto x = at::randn({64, 3});
  x = 0.25 * x / x.norm(2, 1, true);
  auto n = f->normals(x);
  auto cosine = (n * x / x.norm(2, 1, true)).sum(1);
  EXPECT_GT(cosine.min().item<float>(), 0.99f);
}

TEST(NerfField, ConfigJsonRoundTripAndErrors) {
  FieldConfig c = small_config();
  c.blob = "magic3d";
  auto j = to_json(c);
  EXPECT_EQ(to_json(field_config_from_json(j)), j);
  j["blob"] = "cloud";
  EXPECT_THROW(field_config_from_json(j), InputError);
  j = to_json(c);
  j["grid"]["colour"] = 1;
  EXPECT_THROW(field_config_from_json(j), InputError);
}

}  // namespace
}  // namespace nd
