// View consistency of a generated asset: does its front face the front? Score distillation with a
// text-only prior tends to paint a front on every side it sees (the "Janus" problem: a chair with a
// backrest on two sides, a face on the back of a head). In the synth world an object's front faces +Z
// (shared/spec/synth-world.md), so for an asymmetric object we compare how much matter sits behind the
// object (z < −gap) with how much sits in front (z > gap), in a height band where the object is asymmetric.
//
// Matter is measured as the opacity of each lattice cell, 1 − exp(−σ·h) (h = the lattice spacing): bounded
// per cell, so a few very dense cells cannot outweigh a whole part, and near zero for the faint haze that
// SDS leaves in empty space. The asymmetry is (back − front) / (back + front) in [−1, 1]:
//   +1  everything in the band is behind (the chair's backrest is at −Z: it faces +Z),
//    0  as much in front as behind (symmetric, or Janus: a backrest on both sides), or nothing in the band,
//   −1  everything is in front (the object faces −Z: it is turned around).
#pragma once
#include <ATen/ATen.h>

#include "field/nerf_field.h"

namespace nd {

// The band compared: heights y in [y_min, y_max], front z > z_gap, back z < −z_gap (world units).
struct FrontBackRegion {
  double y_min = 0.0, y_max = 1.0;  // default: the upper half of the [-1,1]^3 box
  double z_gap = 0.15;              // a slab around z = 0 that counts for neither side
};

// The chair's band: above the seat (its top is at y = 0.05), up to the top of the backrest.
constexpr FrontBackRegion kChairBackrestRegion{0.1, 0.75, 0.15};

// Asymmetry above which an object counts as facing +Z (a Janus chair scores about 0, the chair 1).
constexpr double kFacesFrontMinAsymmetry = 0.25;

struct FrontBackMass {
  double back = 0, front = 0;  // Σ cell opacity behind (z < −gap) and in front (z > gap)
  double asymmetry() const { return back + front > 0 ? (back - front) / (back + front) : 0.0; }
};

// density: σ [R,R,R] on density_lattice's points (x_i = −bound + i·2·bound/(R − 1), indexed [ix][iy][iz]).
FrontBackMass front_back_mass(const at::Tensor& density, double bound, const FrontBackRegion& region = {});

// The same on the field's density at a res³ lattice over its box (no gradients).
FrontBackMass front_back_mass(NerfFieldImpl& field, const FrontBackRegion& region = {}, int res = 64);

// "a chair" faces +Z: its backrest band is at least kFacesFrontMinAsymmetry behind. asymmetry (optional)
// receives the score.
bool chair_faces_front(NerfFieldImpl& field, double* asymmetry = nullptr);

}  // namespace nd
