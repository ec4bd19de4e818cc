// Enclosed cavities of a voxel occupancy: the empty cells that no path of empty cells (6-connected) joins to
// the grid's border. A NeRF distilled from 2D views is often a shell — what rays see is its outer surface,
// and the density inside can stay below the isosurface — so the solid of the asset is its outer surface
// filled: marching cubes on the filled occupancy exports no invisible inner surfaces, and the volume the
// metrics compare is the solid a viewer sees.
#pragma once
#include <ATen/ATen.h>

namespace nd {

// occupied: [X,Y,Z] bool → [X,Y,Z] bool, occupied plus every enclosed empty cell.
at::Tensor fill_cavities(const at::Tensor& occupied);

}  // namespace nd
