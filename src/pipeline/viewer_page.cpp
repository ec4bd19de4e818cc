#include "pipeline/viewer_page.h"

#include <cstdio>
#include <filesystem>
#include <nlohmann/json.hpp>

#include "core/atomic_file.h"

namespace nd {
namespace fs = std::filesystem;

namespace {

// The mesh viewer: parse the GLB, upload it, orbit/zoom, lambert × vertex color. GLSL 100 runs on
// WebGL 1 and 2; 32-bit indices need WebGL 2 or OES_element_index_uint (everywhere in practice).
constexpr const char* kViewerScript = R"JS(
"use strict";
function base64Bytes(s) {
  const bin = atob(s), bytes = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
  return bytes.buffer;
}

// A GLB as nerfdream writes it: header, JSON chunk, BIN chunk; tightly packed accessors.
// Returns {position, normal, color, colorSize, indices, min, max} of the first primitive, or null.
function parseGlb(buf) {
  const dv = new DataView(buf);
  if (dv.getUint32(0, true) !== 0x46546c67) throw new Error("not a GLB file");
  const jsonLength = dv.getUint32(12, true);
  const gltf = JSON.parse(new TextDecoder().decode(new Uint8Array(buf, 20, jsonLength)));
  const bin = 20 + jsonLength + 8;
  if (!gltf.meshes || !gltf.meshes.length) return null;
  const prim = gltf.meshes[0].primitives[0];
  const types = {5121: Uint8Array, 5123: Uint16Array, 5125: Uint32Array, 5126: Float32Array};
  const sizes = {SCALAR: 1, VEC2: 2, VEC3: 3, VEC4: 4};
  function read(index) {
    if (index === undefined) return null;
    const acc = gltf.accessors[index], view = gltf.bufferViews[acc.bufferView];
    const Type = types[acc.componentType], start = bin + (view.byteOffset || 0) + (acc.byteOffset || 0);
    const count = acc.count * sizes[acc.type];
    return {data: new Type(buf.slice(start, start + count * Type.BYTES_PER_ELEMENT)), acc: acc};
  }
  const a = prim.attributes, pos = read(a.POSITION), col = read(a.COLOR_0), nrm = read(a.NORMAL);
  let indices = read(prim.indices);
  indices = indices ? indices.data : Uint32Array.from({length: pos.acc.count}, (_, i) => i);
  return {
    position: pos.data, normal: nrm ? nrm.data : vertexNormals(pos.data, indices),
    color: col ? col.data : null, colorSize: col ? sizes[col.acc.type] : 3,
    indices: indices, min: pos.acc.min, max: pos.acc.max,
  };
}

// Area-weighted vertex normals, for files without NORMAL.
function vertexNormals(p, idx) {
  const n = new Float32Array(p.length);
  for (let t = 0; t < idx.length; t += 3) {
    const [i, j, k] = [idx[t] * 3, idx[t + 1] * 3, idx[t + 2] * 3];
    const u = [p[j] - p[i], p[j + 1] - p[i + 1], p[j + 2] - p[i + 2]];
    const v = [p[k] - p[i], p[k + 1] - p[i + 1], p[k + 2] - p[i + 2]];
    const c = [u[1] * v[2] - u[2] * v[1], u[2] * v[0] - u[0] * v[2], u[0] * v[1] - u[1] * v[0]];
    for (const q of [i, j, k]) for (let d = 0; d < 3; d++) n[q + d] += c[d];
  }
  return n;  // the shader normalises
}

// Column-major 4x4 matrices, as WebGL takes them.
function perspective(fovY, aspect, near, far) {
  const f = 1 / Math.tan(fovY / 2), d = near - far;
  return [f / aspect, 0, 0, 0, 0, f, 0, 0, 0, 0, (far + near) / d, -1, 0, 0, 2 * far * near / d, 0];
}
function sub(a, b) { return [a[0] - b[0], a[1] - b[1], a[2] - b[2]]; }
function cross(a, b) { return [a[1] * b[2] - a[2] * b[1], a[2] * b[0] - a[0] * b[2], a[0] * b[1] - a[1] * b[0]]; }
function dot(a, b) { return a[0] * b[0] + a[1] * b[1] + a[2] * b[2]; }
function normalize(a) { const l = Math.hypot(a[0], a[1], a[2]) || 1; return [a[0] / l, a[1] / l, a[2] / l]; }
function lookAt(eye, target) {
  const z = normalize(sub(eye, target)), x = normalize(cross([0, 1, 0], z)), y = cross(z, x);
  return [x[0], y[0], z[0], 0, x[1], y[1], z[1], 0, x[2], y[2], z[2], 0, -dot(x, eye), -dot(y, eye), -dot(z, eye), 1];
}
function multiply(a, b) {  // a · b
  const m = new Array(16).fill(0);
  for (let c = 0; c < 4; c++) for (let r = 0; r < 4; r++) for (let k = 0; k < 4; k++) m[c * 4 + r] += a[k * 4 + r] * b[c * 4 + k];
  return m;
}

const VERTEX_SHADER = `
attribute vec3 position, normal, color;
uniform mat4 mvp;
varying vec3 vNormal, vColor;
void main() { vNormal = normal; vColor = color; gl_Position = mvp * vec4(position, 1.0); }`;
const FRAGMENT_SHADER = `
precision mediump float;
uniform vec3 light;
varying vec3 vNormal, vColor;
void main() {
  float diffuse = abs(dot(normalize(vNormal), light));  // two-sided: marching-cubes meshes may be open
  vec3 linear = vColor * (0.3 + 0.7 * diffuse);
  gl_FragColor = vec4(pow(linear, vec3(1.0 / 2.2)), 1.0);  // COLOR_0 is linear; the screen is not
}`;

function startViewer(canvas, mesh) {
  const gl = canvas.getContext("webgl2") || canvas.getContext("webgl");
  if (!gl) throw new Error("WebGL is not available");
  const webgl2 = typeof WebGL2RenderingContext !== "undefined" && gl instanceof WebGL2RenderingContext;
  if (mesh.indices instanceof Uint32Array && !webgl2 && !gl.getExtension("OES_element_index_uint"))
    throw new Error("this browser cannot draw 32-bit indices");
  function shader(type, src) {
    const s = gl.createShader(type);
    gl.shaderSource(s, src);
    gl.compileShader(s);
    if (!gl.getShaderParameter(s, gl.COMPILE_STATUS)) throw new Error(gl.getShaderInfoLog(s));
    return s;
  }
  const prog = gl.createProgram();
  gl.attachShader(prog, shader(gl.VERTEX_SHADER, VERTEX_SHADER));
  gl.attachShader(prog, shader(gl.FRAGMENT_SHADER, FRAGMENT_SHADER));
  gl.linkProgram(prog);
  gl.useProgram(prog);
  function attribute(name, data, size) {
    const loc = gl.getAttribLocation(prog, name);
    gl.bindBuffer(gl.ARRAY_BUFFER, gl.createBuffer());
    gl.bufferData(gl.ARRAY_BUFFER, data, gl.STATIC_DRAW);
    gl.enableVertexAttribArray(loc);
    gl.vertexAttribPointer(loc, size, gl.FLOAT, false, 0, 0);
  }
  attribute("position", mesh.position, 3);
  attribute("normal", mesh.normal, 3);
  const loc = gl.getAttribLocation(prog, "color");
  if (mesh.color && mesh.color instanceof Float32Array) attribute("color", mesh.color, mesh.colorSize);
  else gl.vertexAttrib3f(loc, 0.7, 0.7, 0.7);
  gl.bindBuffer(gl.ELEMENT_ARRAY_BUFFER, gl.createBuffer());
  gl.bufferData(gl.ELEMENT_ARRAY_BUFFER, mesh.indices, gl.STATIC_DRAW);
  const indexType = {1: gl.UNSIGNED_BYTE, 2: gl.UNSIGNED_SHORT, 4: gl.UNSIGNED_INT}[mesh.indices.BYTES_PER_ELEMENT];
  gl.enable(gl.DEPTH_TEST);

  const center = [0, 1, 2].map((i) => (mesh.min[i] + mesh.max[i]) / 2);
  const view = {azimuth: 0.5, elevation: 0.26, distance: 3};  // radians; the turntable's 3 units away
  function draw() {
    const e = view.elevation, a = view.azimuth;
    const dir = [Math.cos(e) * Math.sin(a), Math.sin(e), Math.cos(e) * Math.cos(a)];
    const eye = [0, 1, 2].map((i) => center[i] + view.distance * dir[i]);
    const right = normalize(cross([0, 1, 0], dir)), up = cross(dir, right);
    const light = normalize([0, 1, 2].map((i) => 1.5 * dir[i] + right[i] + up[i]));  // camera's upper right
    const mvp = multiply(perspective(Math.PI / 4, canvas.width / canvas.height, 0.05, 50), lookAt(eye, center));
    gl.viewport(0, 0, canvas.width, canvas.height);
    gl.clearColor(1, 1, 1, 1);
    gl.clear(gl.COLOR_BUFFER_BIT | gl.DEPTH_BUFFER_BIT);
    gl.uniformMatrix4fv(gl.getUniformLocation(prog, "mvp"), false, new Float32Array(mvp));
    gl.uniform3fv(gl.getUniformLocation(prog, "light"), light);
    gl.drawElements(gl.TRIANGLES, mesh.indices.length, indexType, 0);
  }
  let drag = null;
  canvas.addEventListener("mousedown", (ev) => { drag = [ev.clientX, ev.clientY]; });
  window.addEventListener("mouseup", () => { drag = null; });
  window.addEventListener("mousemove", (ev) => {
    if (!drag) return;
    view.azimuth -= (ev.clientX - drag[0]) * 0.01;
    view.elevation = Math.max(-1.5, Math.min(1.5, view.elevation + (ev.clientY - drag[1]) * 0.01));
    drag = [ev.clientX, ev.clientY];
    requestAnimationFrame(draw);
  });
  canvas.addEventListener("wheel", (ev) => {
    ev.preventDefault();
    view.distance = Math.max(0.5, Math.min(20, view.distance * Math.exp(ev.deltaY * 0.001)));
    requestAnimationFrame(draw);
  }, {passive: false});
  draw();
}

const status = document.getElementById("viewer-status");
try {
  const mesh = parseGlb(base64Bytes(MESH_GLB_BASE64));
  if (!mesh) status.textContent = "The mesh is empty (nothing was denser than the threshold).";
  else startViewer(document.getElementById("viewer"), mesh);
} catch (e) {
  status.textContent = "Cannot show the mesh: " + e.message;
}
)JS";

constexpr const char* kStyle = R"CSS(
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 1100px; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.1em; margin-top: 1.5em; }
table { border-collapse: collapse; } td { border-bottom: 1px solid #ddd; padding: 2px 12px 2px 0; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
canvas { border: 1px solid #ccc; cursor: grab; } img { max-width: 100%; image-rendering: pixelated; }
.hint { color: #777; font-size: 0.9em; }
)CSS";

std::string read_if_exists(const fs::path& path) { return fs::exists(path) ? read_file(path.string()) : ""; }

// A JSON value as table text: numbers with 4 significant digits.
std::string cell_text(const nlohmann::json& v) {
  if (v.is_number_float()) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%.4g", v.get<double>());
    return buf;
  }
  return v.is_string() ? v.get<std::string>() : v.dump();
}

// metrics.json flattened into rows: nested keys joined with '.'.
void metric_rows(const nlohmann::json& j, const std::string& prefix, std::string& html) {
  for (const auto& [key, value] : j.items()) {
    const std::string name = prefix.empty() ? key : prefix + "." + key;
    if (value.is_object()) {
      metric_rows(value, name, html);
      continue;
    }
    html += "<tr><td>" + html_escape(name) + "</td><td class=\"num\">" + html_escape(cell_text(value)) +
            "</td></tr>\n";
  }
}

std::string image_tag(const std::string& bytes, const std::string& mime, const std::string& alt) {
  return "<img alt=\"" + html_escape(alt) + "\" src=\"data:" + mime + ";base64," + base64_encode(bytes) +
         "\">\n";
}

}  // namespace

std::string base64_encode(const std::string& bytes) {
  static const char* kAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (size_t i = 0; i < bytes.size(); i += 3) {
    const size_t n = std::min<size_t>(3, bytes.size() - i);
    uint32_t v = 0;
    for (size_t k = 0; k < 3; ++k) v = v << 8 | (k < n ? static_cast<unsigned char>(bytes[i + k]) : 0u);
    for (size_t k = 0; k < 4; ++k) out += k <= n ? kAlphabet[(v >> (18 - 6 * k)) & 63] : '=';
  }
  return out;
}

std::string html_escape(const std::string& text) {
  std::string out;
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

void write_viewer_page(const std::string& out_dir, const std::string& prompt) {
  const fs::path dir(out_dir);
  std::string html = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>" +
                     html_escape(prompt) + " · nerfdream</title>\n<style>" + kStyle +
                     "</style>\n</head>\n<body>\n";
  html += "<h1>" + html_escape(prompt) + "</h1>\n";

  const std::string glb = read_if_exists(dir / "mesh.glb");
  if (!glb.empty()) {
    html +=
        "<h2>Mesh</h2>\n<canvas id=\"viewer\" width=\"512\" height=\"512\"></canvas>\n"
        "<p class=\"hint\" id=\"viewer-status\">Drag to orbit, scroll to zoom. mesh.glb, as exported.</p>\n";
  }
  const std::string gif = read_if_exists(dir / "turntable.gif");
  const std::string frame = gif.empty() ? read_if_exists(dir / "turntable" / "frame_000.png") : "";
  if (!gif.empty())
    html += "<h2>Turntable</h2>\n" + image_tag(gif, "image/gif", "turntable");
  else if (!frame.empty())
    html += "<h2>Turntable (first frame)</h2>\n" + image_tag(frame, "image/png", "turntable");
  const std::string views = read_if_exists(dir / "views.png");
  if (!views.empty()) {
    html +=
        "<h2>Views</h2>\n<p class=\"hint\">8 azimuths from the back (−180°) in 45° steps; albedo above, "
        "lambertian below.</p>\n" +
        image_tag(views, "image/png", "views");
  }
  const std::string metrics = read_if_exists(dir / "metrics.json");
  if (!metrics.empty()) {
    html += "<h2>Metrics</h2>\n";
    try {
      std::string rows;
      metric_rows(nlohmann::json::parse(metrics), "", rows);
      html += "<table>\n" + rows + "</table>\n";
    } catch (const nlohmann::json::exception&) {
      html += "<pre>" + html_escape(metrics) + "</pre>\n";
    }
  }
  if (!glb.empty())
    html +=
        "<script>\nconst MESH_GLB_BASE64 = \"" + base64_encode(glb) + "\";\n" + kViewerScript + "</script>\n";
  html += "</body>\n</html>\n";
  write_file_atomically((dir / "index.html").string(), html);
}

}  // namespace nd
