#include "synth/scene.h"

#include <ATen/Parallel.h>

#include <algorithm>
#include <cmath>

namespace nd {

namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kTorusMajor = 0.35, kTorusMinor = 0.15;  // in the unit box

using Vec3 = std::array<double, 3>;

// Nearest candidate hit in (t_min, best_t) of a primitive in its local frame.
struct LocalHit {
  double t_min, t;  // t starts at the caller's t_max
  Vec3 n{};
  bool found = false;
  void consider(double cand, const Vec3& normal) {
    if (cand > t_min && cand < t) {
      t = cand;
      n = normal;
      found = true;
    }
  }
};

// Roots of A t² + 2 B t + C = 0 (B is the half coefficient); numerically stable form. Returns the count.
int solve_quadratic(double a, double b, double c, double* r) {
  if (std::abs(a) < 1e-14) {
    if (std::abs(b) < 1e-300) return 0;
    r[0] = -c / (2 * b);
    return 1;
  }
  const double disc = b * b - a * c;
  if (disc < 0) return 0;
  const double q = -(b + std::copysign(std::sqrt(disc), b));
  if (q == 0) {  // b = 0 and c = 0: double root at 0
    r[0] = 0;
    return 1;
  }
  r[0] = q / a;
  r[1] = c / q;
  return 2;
}

Vec3 at_t(const Vec3& o, const Vec3& d, double t) {
  return {o[0] + t * d[0], o[1] + t * d[1], o[2] + t * d[2]};
}

void hit_cube(const Vec3& o, const Vec3& d, LocalHit& h) {
  double t0 = -kInf, t1 = kInf;
  int a0 = -1, a1 = -1;
  for (int i = 0; i < 3; ++i) {
    if (d[i] == 0) {
      if (std::abs(o[i]) > 0.5) return;
      continue;
    }
    double near = (-0.5 - o[i]) / d[i], far = (0.5 - o[i]) / d[i];
    if (near > far) std::swap(near, far);
    if (near > t0) t0 = near, a0 = i;
    if (far < t1) t1 = far, a1 = i;
  }
  if (t0 > t1) return;
  if (a0 >= 0) {
    Vec3 n{0, 0, 0};
    n[a0] = d[a0] > 0 ? -1 : 1;  // entering through the face that looks back at the ray
    h.consider(t0, n);
  }
  if (a1 >= 0) {
    Vec3 n{0, 0, 0};
    n[a1] = d[a1] > 0 ? 1 : -1;
    h.consider(t1, n);
  }
}

void hit_sphere(const Vec3& o, const Vec3& d, LocalHit& h) {
  double r[2];
  const int n =
      solve_quadratic(d[0] * d[0] + d[1] * d[1] + d[2] * d[2], o[0] * d[0] + o[1] * d[1] + o[2] * d[2],
                      o[0] * o[0] + o[1] * o[1] + o[2] * o[2] - 0.25, r);
  for (int i = 0; i < n; ++i) h.consider(r[i], at_t(o, d, r[i]));
}

// Flat disc of radius 0.5 at height y (normal ny) around the Y axis.
void hit_disc(const Vec3& o, const Vec3& d, double y, double ny, LocalHit& h) {
  if (d[1] == 0) return;
  const double t = (y - o[1]) / d[1];
  const Vec3 p = at_t(o, d, t);
  if (p[0] * p[0] + p[2] * p[2] <= 0.25) h.consider(t, {0, ny, 0});
}

void hit_cylinder(const Vec3& o, const Vec3& d, LocalHit& h) {
  double r[2];
  const int n = solve_quadratic(d[0] * d[0] + d[2] * d[2], o[0] * d[0] + o[2] * d[2],
                                o[0] * o[0] + o[2] * o[2] - 0.25, r);
  for (int i = 0; i < n; ++i) {
    const Vec3 p = at_t(o, d, r[i]);
    if (std::abs(p[1]) <= 0.5) h.consider(r[i], {p[0], 0, p[2]});
  }
  hit_disc(o, d, 0.5, 1, h);
  hit_disc(o, d, -0.5, -1, h);
}

void hit_cone(const Vec3& o, const Vec3& d, LocalHit& h) {
  // x² + z² = k², k = (0.5 - y) / 2 = h0 - t·dy/2.
  const double h0 = (0.5 - o[1]) / 2;
  double r[2];
  const int n =
      solve_quadratic(d[0] * d[0] + d[2] * d[2] - d[1] * d[1] / 4, o[0] * d[0] + o[2] * d[2] + h0 * d[1] / 2,
                      o[0] * o[0] + o[2] * o[2] - h0 * h0, r);
  for (int i = 0; i < n; ++i) {
    const Vec3 p = at_t(o, d, r[i]);
    if (p[1] >= -0.5 && p[1] <= 0.5) h.consider(r[i], {2 * p[0], (0.5 - p[1]) / 2, 2 * p[2]});
  }
  hit_disc(o, d, -0.5, -1, h);
}

void hit_dome(const Vec3& o, const Vec3& d, LocalHit& h) {
  // Ellipsoid 4x² + (y+0.5)² + 4z² = 1 becomes the unit sphere in q = (2x, y+0.5, 2z).
  const Vec3 q{2 * o[0], o[1] + 0.5, 2 * o[2]}, dq{2 * d[0], d[1], 2 * d[2]};
  double r[2];
  const int n = solve_quadratic(dq[0] * dq[0] + dq[1] * dq[1] + dq[2] * dq[2],
                                q[0] * dq[0] + q[1] * dq[1] + q[2] * dq[2],
                                q[0] * q[0] + q[1] * q[1] + q[2] * q[2] - 1, r);
  for (int i = 0; i < n; ++i) {
    const Vec3 p = at_t(o, d, r[i]);
    if (p[1] >= -0.5) h.consider(r[i], {4 * p[0], p[1] + 0.5, 4 * p[2]});
  }
  hit_disc(o, d, -0.5, -1, h);
}

void hit_torus(const Vec3& o, const Vec3& d, LocalHit& h) {
  // Clip to the torus' box first, then solve the quartic from the entry point with a unit direction, so
  // that its coefficients are O(1) and well conditioned. The box has a margin so that its faces, where the
  // torus touches them, are never roots at the interval ends (their sign would be rounding noise).
  constexpr double kMargin = 1e-3;
  const double ext[3] = {kTorusMajor + kTorusMinor + kMargin, kTorusMinor + kMargin,
                         kTorusMajor + kTorusMinor + kMargin};
  double t0 = h.t_min, t1 = h.t;
  for (int i = 0; i < 3; ++i) {
    if (d[i] == 0) {
      if (std::abs(o[i]) > ext[i]) return;
      continue;
    }
    double near = (-ext[i] - o[i]) / d[i], far = (ext[i] - o[i]) / d[i];
    if (near > far) std::swap(near, far);
    t0 = std::max(t0, near);
    t1 = std::min(t1, far);
  }
  if (!(t0 <= t1)) return;
  const double len = std::sqrt(d[0] * d[0] + d[1] * d[1] + d[2] * d[2]);
  const Vec3 dn{d[0] / len, d[1] / len, d[2] / len};
  const Vec3 p0 = at_t(o, d, t0);
  const double R2 = kTorusMajor * kTorusMajor, r2 = kTorusMinor * kTorusMinor;
  const double b = p0[0] * dn[0] + p0[1] * dn[1] + p0[2] * dn[2];
  const double cc = p0[0] * p0[0] + p0[1] * p0[1] + p0[2] * p0[2] + R2 - r2;
  // (|p|² + R² - r²)² - 4R²(x² + z²) along p = p0 + u·dn.
  const double c[5] = {cc * cc - 4 * R2 * (p0[0] * p0[0] + p0[2] * p0[2]),
                       4 * b * cc - 8 * R2 * (p0[0] * dn[0] + p0[2] * dn[2]),
                       4 * b * b + 2 * cc - 4 * R2 * (dn[0] * dn[0] + dn[2] * dn[2]), 4 * b, 1};
  double roots[4];
  const int n = polynomial_roots(c, 4, 0, (t1 - t0) * len, roots);
  for (int i = 0; i < n; ++i) {
    const double t = t0 + roots[i] / len;
    if (t <= h.t_min) continue;
    const Vec3 p = at_t(o, d, t);
    const double rho = std::sqrt(p[0] * p[0] + p[2] * p[2]);
    const double k = rho > 0 ? kTorusMajor / rho : 0;
    h.consider(t, {p[0] - k * p[0], p[1], p[2] - k * p[2]});
    break;  // roots are ascending
  }
}

bool inside_local(Shape shape, const Vec3& p) {
  const double x = p[0], y = p[1], z = p[2];
  switch (shape) {
    case Shape::Cube:
      return std::abs(x) <= 0.5 && std::abs(y) <= 0.5 && std::abs(z) <= 0.5;
    case Shape::Sphere:
      return x * x + y * y + z * z <= 0.25;
    case Shape::Cylinder:
      return std::abs(y) <= 0.5 && x * x + z * z <= 0.25;
    case Shape::Cone: {
      const double k = (0.5 - y) / 2;
      return std::abs(y) <= 0.5 && x * x + z * z <= k * k;
    }
    case Shape::Torus: {
      const double rho = std::sqrt(x * x + z * z) - kTorusMajor;
      return rho * rho + y * y <= kTorusMinor * kTorusMinor;
    }
    case Shape::Dome:
      return y >= -0.5 && 4 * x * x + (y + 0.5) * (y + 0.5) + 4 * z * z <= 1;
  }
  return false;
}

double segment_distance(double px, double py, double ax, double ay, double bx, double by) {
  const double vx = bx - ax, vy = by - ay, wx = px - ax, wy = py - ay;
  const double len2 = vx * vx + vy * vy;
  const double s = len2 > 0 ? std::clamp((wx * vx + wy * vy) / len2, 0.0, 1.0) : 0.0;
  return std::hypot(wx - s * vx, wy - s * vy);
}

// Unsigned distance from (y0, y1) to the ellipse x0²/e0² + x1²/e1² = 1 (D. Eberly, "Distance from a Point
// to an Ellipse", robust bisection on the Lagrange parameter).
double ellipse_distance(double e0, double e1, double y0, double y1) {
  y0 = std::abs(y0);
  y1 = std::abs(y1);
  if (e0 < e1) {
    std::swap(e0, e1);
    std::swap(y0, y1);
  }
  if (y1 > 0) {
    if (y0 > 0) {
      const double z0 = y0 / e0, z1 = y1 / e1;
      double g = z0 * z0 + z1 * z1 - 1;
      if (g == 0) return 0;
      const double r0 = (e0 / e1) * (e0 / e1), n0 = r0 * z0;
      double s0 = z1 - 1, s1 = g < 0 ? 0 : std::hypot(n0, z1) - 1, s = 0;
      for (int i = 0; i < 200; ++i) {
        s = 0.5 * (s0 + s1);
        if (s == s0 || s == s1) break;
        const double a = n0 / (s + r0), b = z1 / (s + 1);
        g = a * a + b * b - 1;
        if (g > 0)
          s0 = s;
        else if (g < 0)
          s1 = s;
        else
          break;
      }
      const double x0 = r0 * y0 / (s + r0), x1 = y1 / (s + 1);
      return std::hypot(x0 - y0, x1 - y1);
    }
    return std::abs(y1 - e1);
  }
  const double numer0 = e0 * y0, denom0 = e0 * e0 - e1 * e1;
  if (numer0 < denom0) {
    const double xde0 = numer0 / denom0;
    const double x0 = e0 * xde0, x1 = e1 * std::sqrt(std::max(0.0, 1 - xde0 * xde0));
    return std::hypot(x0 - y0, x1);
  }
  return std::abs(y0 - e0);
}

double eval_poly(const double* c, int deg, double x) {
  double v = c[deg];
  for (int i = deg - 1; i >= 0; --i) v = v * x + c[i];
  return v;
}

// The root of a polynomial that is monotonic on [a, b] with fa, fb of opposite signs.
double refine_root(const double* c, const double* dc, int deg, double a, double b, double fa) {
  double x = 0.5 * (a + b);
  for (int it = 0; it < 100; ++it) {
    const double fx = eval_poly(c, deg, x);
    if (fx == 0) return x;
    if ((fx < 0) == (fa < 0))
      a = x;
    else
      b = x;
    const double dfx = eval_poly(dc, deg - 1, x);
    double next = dfx != 0 ? x - fx / dfx : 0.5 * (a + b);
    if (!(next > a && next < b)) next = 0.5 * (a + b);  // Newton left the bracket: bisect
    if (std::abs(next - x) <= 1e-14 * (1 + std::abs(x)) || b - a <= 1e-15 * (1 + std::abs(x))) return next;
    x = next;
  }
  return x;
}

}  // namespace

int polynomial_roots(const double* c_in, int deg, double lo, double hi, double* roots) {
  TORCH_CHECK(deg >= 0 && deg <= 4, "polynomial_roots: degree must be in [0, 4]");
  while (deg > 0 && c_in[deg] == 0) --deg;
  if (deg == 0 || !(lo <= hi)) return 0;
  double c[5];
  std::copy(c_in, c_in + deg + 1, c);
  if (deg == 1) {
    const double r = -c[0] / c[1];
    if (r >= lo && r <= hi) {
      roots[0] = r;
      return 1;
    }
    return 0;
  }
  double dc[4];
  for (int i = 1; i <= deg; ++i) dc[i - 1] = i * c[i];
  // Between consecutive critical points the polynomial is monotonic: at most one root each.
  double bounds[5];
  bounds[0] = lo;
  const int nc = polynomial_roots(dc, deg - 1, lo, hi, bounds + 1);
  bounds[nc + 1] = hi;
  int n = 0;
  double fa = eval_poly(c, deg, lo);
  if (fa == 0) roots[n++] = lo;
  for (int i = 0; i <= nc; ++i) {
    const double a = bounds[i], b = bounds[i + 1];
    const double fb = eval_poly(c, deg, b);
    if (fb == 0) {
      if (n == 0 || roots[n - 1] != b) roots[n++] = b;
    } else if (fa != 0 && (fa < 0) != (fb < 0) && b > a) {
      roots[n++] = refine_root(c, dc, deg, a, b, fa);
    }
    fa = fb;
    if (n == deg) break;
  }
  return n;
}

SynthScene::SynthScene(const SynthObject& object) : object_(object) {
  for (const auto& part : object_.parts) {
    TORCH_CHECK(part.axis >= 0 && part.axis <= 2, "synth part axis must be 0, 1 or 2");
    Frame f;
    f.shape = part.shape;
    f.axis = part.axis;
    for (int i = 0; i < 3; ++i) {
      TORCH_CHECK(part.box_max[i] > part.box_min[i], "synth part box must have positive extents");
      f.lo[i] = part.box_min[i];
      f.hi[i] = part.box_max[i];
      f.centre[i] = 0.5 * (f.lo[i] + f.hi[i]);
      f.size[i] = f.hi[i] - f.lo[i];
      f.inv_size[i] = 1.0 / f.size[i];
    }
    frames_.push_back(f);
  }
}

bool SynthScene::inside(double x, double y, double z) const {
  const Vec3 p{x, y, z};
  for (const auto& f : frames_) {
    if (x < f.lo[0] || x > f.hi[0] || y < f.lo[1] || y > f.hi[1] || z < f.lo[2] || z > f.hi[2]) continue;
    Vec3 q;
    for (int i = 0; i < 3; ++i) q[i] = (p[i] - f.centre[i]) * f.inv_size[i];
    std::swap(q[1], q[f.axis]);
    if (inside_local(f.shape, q)) return true;
  }
  return false;
}

bool SynthScene::intersect(const Vec3& origin, const Vec3& dir, SynthHit* hit, double t_min,
                           double t_max) const {
  double best = t_max;
  int best_part = -1;
  Vec3 best_n{};
  for (size_t k = 0; k < frames_.size(); ++k) {
    const Frame& f = frames_[k];
    // Cull by the part's world box: skip unless the ray meets it before the best hit so far.
    double t0 = t_min, t1 = best;
    for (int i = 0; i < 3 && t0 <= t1; ++i) {
      if (dir[i] == 0) {
        if (origin[i] < f.lo[i] || origin[i] > f.hi[i]) t0 = kInf;
        continue;
      }
      const double inv = 1.0 / dir[i];
      double near = (f.lo[i] - origin[i]) * inv, far = (f.hi[i] - origin[i]) * inv;
      if (near > far) std::swap(near, far);
      t0 = std::max(t0, near);
      t1 = std::min(t1, far);
    }
    if (!(t0 <= t1)) continue;
    Vec3 o, d;
    for (int i = 0; i < 3; ++i) {
      o[i] = (origin[i] - f.centre[i]) * f.inv_size[i];
      d[i] = dir[i] * f.inv_size[i];  // not renormalised: t is the same in both frames
    }
    std::swap(o[1], o[f.axis]);
    std::swap(d[1], d[f.axis]);
    LocalHit h{t_min, best};
    switch (f.shape) {
      case Shape::Cube:
        hit_cube(o, d, h);
        break;
      case Shape::Sphere:
        hit_sphere(o, d, h);
        break;
      case Shape::Cylinder:
        hit_cylinder(o, d, h);
        break;
      case Shape::Cone:
        hit_cone(o, d, h);
        break;
      case Shape::Torus:
        hit_torus(o, d, h);
        break;
      case Shape::Dome:
        hit_dome(o, d, h);
        break;
    }
    if (!h.found) continue;
    best = h.t;
    best_part = static_cast<int>(k);
    // Normal back to world: undo the swap, then the inverse transpose of the scale.
    Vec3 n = h.n;
    std::swap(n[1], n[f.axis]);
    for (int i = 0; i < 3; ++i) n[i] *= f.inv_size[i];
    best_n = n;
  }
  if (best_part < 0) return false;
  const double len = std::sqrt(best_n[0] * best_n[0] + best_n[1] * best_n[1] + best_n[2] * best_n[2]);
  hit->t = best;
  hit->part = best_part;
  for (int i = 0; i < 3; ++i) {
    hit->normal[i] = static_cast<float>(len > 0 ? best_n[i] / len : 0);
    hit->albedo[i] = object_.parts[best_part].albedo[i];
  }
  return true;
}

double SynthScene::surface_distance(int part, const Vec3& p) const {
  const Frame& f = frames_.at(part);
  // Relative position and half extents in the shape's frame (Y = the shape's axis), in world units.
  Vec3 q, half;
  for (int i = 0; i < 3; ++i) {
    q[i] = p[i] - f.centre[i];
    half[i] = 0.5 * f.size[i];
  }
  std::swap(q[1], q[f.axis]);
  std::swap(half[1], half[f.axis]);
  if (f.shape == Shape::Cube) {
    const double dx = std::abs(q[0]) - half[0], dy = std::abs(q[1]) - half[1], dz = std::abs(q[2]) - half[2];
    const double outside = std::sqrt(std::pow(std::max(dx, 0.0), 2) + std::pow(std::max(dy, 0.0), 2) +
                                     std::pow(std::max(dz, 0.0), 2));
    return outside > 0 ? outside : -std::max({dx, dy, dz});
  }
  // Solids of revolution: distance in the (rho, y) half plane to the profile curve.
  const double a = 0.5 * (half[0] + half[2]), b = half[1];
  const double rho = a * std::hypot(q[0] / half[0], q[2] / half[2]);
  const double y = q[1];
  switch (f.shape) {
    case Shape::Sphere:
      return ellipse_distance(a, b, rho, y);
    case Shape::Cylinder: {
      const double dr = rho - a, dy = std::abs(y) - b;
      const double outside = std::hypot(std::max(dr, 0.0), std::max(dy, 0.0));
      return outside > 0 ? outside : -std::max(dr, dy);
    }
    case Shape::Cone:
      return std::min(segment_distance(rho, y, 0, -b, a, -b), segment_distance(rho, y, a, -b, 0, b));
    case Shape::Torus:
      return ellipse_distance(2 * kTorusMinor * a, 2 * kTorusMinor * b, rho - 2 * kTorusMajor * a, y);
    case Shape::Dome: {
      double d = segment_distance(rho, y, 0, -b, a, -b);
      if (y >= -b) d = std::min(d, ellipse_distance(a, 2 * b, rho, y + b));
      return d;
    }
    case Shape::Cube:
      break;
  }
  return kInf;
}

int SynthScene::nearest_part(const Vec3& p) const {
  int best = -1;
  double best_d = kInf;
  for (size_t k = 0; k < frames_.size(); ++k) {
    const double d = surface_distance(static_cast<int>(k), p);
    if (d < best_d) best_d = d, best = static_cast<int>(k);
  }
  return best;
}

bool inside(const SynthObject& object, float x, float y, float z) {
  return SynthScene(object).inside(x, y, z);
}

bool intersect_ray(const SynthObject& object, const Vec3& origin, const Vec3& dir, SynthHit* hit) {
  return SynthScene(object).intersect(origin, dir, hit);
}

at::Tensor occupancy_grid(const SynthObject& object, int res) {
  TORCH_CHECK(res > 0, "occupancy_grid: res must be positive");
  const SynthScene scene(object);
  auto grid = at::empty({res, res, res}, at::kBool);
  bool* out = grid.data_ptr<bool>();
  const double step = 2.0 / res;
  at::parallel_for(0, res, 1, [&](int64_t begin, int64_t end) {
    for (int64_t ix = begin; ix < end; ++ix) {
      const double x = -1 + (ix + 0.5) * step;
      for (int iy = 0; iy < res; ++iy) {
        const double y = -1 + (iy + 0.5) * step;
        for (int iz = 0; iz < res; ++iz)
          out[(ix * res + iy) * res + iz] = scene.inside(x, y, -1 + (iz + 0.5) * step);
      }
    }
  });
  return grid;
}

at::Tensor nearest_part_albedo(const SynthObject& object, const at::Tensor& points) {
  TORCH_CHECK(points.dim() == 2 && points.size(1) == 3, "nearest_part_albedo: points must be [N,3]");
  TORCH_CHECK(!object.parts.empty(), "nearest_part_albedo: the object has no parts");
  const SynthScene scene(object);
  auto pts = points.to(at::kDouble).contiguous();
  const int64_t n = pts.size(0);
  auto out = at::empty({n, 3}, at::kFloat);
  const double* p = pts.data_ptr<double>();
  float* o = out.data_ptr<float>();
  at::parallel_for(0, n, 256, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) {
      const int k = scene.nearest_part({p[3 * i], p[3 * i + 1], p[3 * i + 2]});
      for (int c = 0; c < 3; ++c) o[3 * i + c] = object.parts[k].albedo[c];
    }
  });
  return out;
}

}  // namespace nd
