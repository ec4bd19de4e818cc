// Enclosed cavities are filled; anything open to the border stays empty.
#include <gtest/gtest.h>

#include "mesh/fill_cavities.h"

namespace nd {
namespace {

// Cells whose centre is at distance in [r0, r1) from the grid's centre.
at::Tensor shell(int64_t n, double r0, double r1) {
  const at::Tensor c = at::arange(n, at::kFloat) + 0.5f - n / 2.0f;
  const auto g = at::meshgrid({c, c, c}, "ij");
  const at::Tensor r = (g[0] * g[0] + g[1] * g[1] + g[2] * g[2]).sqrt();
  return (r >= r0) & (r < r1);
}

TEST(FillCavities, AClosedShellBecomesABall) {
  const at::Tensor filled = fill_cavities(shell(24, 6, 8));
  EXPECT_TRUE(at::equal(filled, shell(24, 0, 8)));
}

TEST(FillCavities, OpenSpaceStaysEmpty) {
  at::Tensor cup = shell(24, 6, 8);
  cup.narrow(1, 18, 6).fill_(false);  // cut the top off: the inside now reaches the border
  EXPECT_TRUE(at::equal(fill_cavities(cup), cup));
  const at::Tensor empty = at::zeros({5, 6, 7}, at::kBool);
  EXPECT_TRUE(at::equal(fill_cavities(empty), empty));
  const at::Tensor full = at::ones({3, 3, 3}, at::kBool);
  EXPECT_TRUE(at::equal(fill_cavities(full), full));
}

TEST(FillCavities, DiagonalGapsDoNotLeak) {
  // A cavity joined to the outside only across an edge (not a face) stays enclosed (6-connectivity).
  at::Tensor box = at::ones({5, 5, 5}, at::kBool);
  box[2][2][2] = false;
  box[1][1][1] = false;  // diagonal neighbour of the cavity, itself enclosed
  const at::Tensor filled = fill_cavities(box);
  EXPECT_TRUE(filled.all().item<bool>());
}

}  // namespace
}  // namespace nd
