// Exact geometry of synth objects: inside tests, ray intersections, surface distances, ground truth.
//
// Each part is its shape's unit box [-0.5,0.5]^3 mapped onto the part's box by a per-axis scale and offset
// (plus, for Part::axis != 1, a swap of Y with that axis). Queries run in the part's local frame: a ray
// keeps its parameter t there when its direction is transformed without renormalising, and normals go back
// with the inverse transpose (scale by 1/size, then normalise). All geometry is computed in double.
#pragma once
#include <ATen/ATen.h>

#include <array>
#include <limits>
#include <vector>

#include "synth/caption.h"

namespace nd {

struct SynthHit {
  double t = 0;                   // distance along the (unit-direction) ray
  std::array<float, 3> normal{};  // world space, unit, outward (faces the ray for hits from outside)
  std::array<float, 3> albedo{};  // the hit part's albedo
  int part = -1;                  // index into SynthObject::parts
};

// An object prepared for many queries (per-part transforms and world bounding boxes).
class SynthScene {
 public:
  explicit SynthScene(const SynthObject& object);

  const SynthObject& object() const { return object_; }

  // True when (x, y, z) is inside (or on) any part.
  bool inside(double x, double y, double z) const;

  // Nearest intersection of origin + t·dir with t in (t_min, t_max); dir must be unit length.
  // Parts whose world box the ray misses are skipped. Returns false on a miss.
  bool intersect(const std::array<double, 3>& origin, const std::array<double, 3>& dir, SynthHit* hit,
                 double t_min = 1e-9, double t_max = std::numeric_limits<double>::infinity()) const;

  // Unsigned distance from p to the surface of part `part` (world units). Exact for parts whose box is
  // square across the shape's axis (every part of the grammar); for other boxes the radial coordinate is
  // rescaled elliptically, which is exact on the surface and approximate elsewhere.
  double surface_distance(int part, const std::array<double, 3>& p) const;

  // Index of the part whose surface is nearest to p (the spec's ground-truth color source).
  int nearest_part(const std::array<double, 3>& p) const;

 private:
  struct Frame {
    Shape shape;
    int axis;
    std::array<double, 3> centre, size, inv_size;  // world box centre and full extents
    std::array<double, 3> lo, hi;                  // world bounding box
  };
  SynthObject object_;
  std::vector<Frame> frames_;
};

// Convenience forms (each builds a SynthScene: prefer SynthScene for many queries).
bool inside(const SynthObject& object, float x, float y, float z);
bool intersect_ray(const SynthObject& object, const std::array<double, 3>& origin,
                   const std::array<double, 3>& dir, SynthHit* hit);

// Occupancy of the res^3 cell centres over [-1,1]^3: bool [res,res,res] indexed [ix][iy][iz], where cell
// (ix, iy, iz) has centre (-1 + (ix+0.5)·2/res, -1 + (iy+0.5)·2/res, -1 + (iz+0.5)·2/res).
at::Tensor occupancy_grid(const SynthObject& object, int res = 64);

// Ground-truth color: points [N,3] float32 (world) → [N,3] float32, the albedo of the part whose surface
// is nearest to each point.
at::Tensor nearest_part_albedo(const SynthObject& object, const at::Tensor& points);

// Real roots of c[0] + c[1]·x + … + c[deg]·x^deg (deg <= 4) in [lo, hi], ascending, written to roots
// (room for deg values); returns their count. Roots are isolated between the critical points (roots of
// the derivative, found the same way) and refined by safeguarded Newton, so close roots are not lost; a
// root where the polynomial only touches zero (a tangent ray) may be missed.
int polynomial_roots(const double* c, int deg, double lo, double hi, double* roots);

}  // namespace nd
