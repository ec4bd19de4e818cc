// index.html beside a generated asset: one self-contained page (no network, works from file://) with the
// prompt, metrics.json as a table, views.png, the turntable (turntable.gif, else its first PNG frame) and
// an interactive WebGL view of mesh.glb — plain JS that parses our GLB (POSITION, NORMAL, COLOR_0, indices),
// orbits on mouse drag, zooms on the wheel and shades lambertian with the vertex colors. Every file is
// embedded as base64 data, so the page is the one file to send.
#pragma once
#include <string>

namespace nd {

// Reads what exists of metrics.json, views.png, turntable.gif (or turntable/frame_000.png) and mesh.glb in
// out_dir (a missing one leaves its section out) and writes out_dir/index.html atomically.
void write_viewer_page(const std::string& out_dir, const std::string& prompt);

// RFC 4648 base64 (with padding).
std::string base64_encode(const std::string& bytes);

// Text made safe inside HTML elements and attribute values (& < > " ').
std::string html_escape(const std::string& text);

}  // namespace nd
