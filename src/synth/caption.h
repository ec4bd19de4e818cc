// The synth world's objects and the caption grammar that names them (shared/spec/synth-world.md).
//
// Grammar (case-insensitive, any spacing, commas may touch words):
//   caption := article object [ [","] view_word "view" ]
//   object  := named | color shape [ "on" "top" "of" article color shape ]
//   article := "a" | "an"            ("an" only before a word that starts with a vowel)
//   named   := tree | mushroom | table | chair | dumbbell
//   shape   := cube | sphere | cylinder | cone | torus     (dome is a part of named objects only)
//   color   := red | orange | yellow | green | blue | purple | brown | gray
//   view_word := front | side | back | overhead
// Canonical captions (SynthObject::caption, all_captions()) are lower case, single-spaced, and use "an"
// before a vowel: "a red cube", "an orange cone on top of a blue sphere", "a tree".
#pragma once
#include <array>
#include <string>
#include <vector>

namespace nd {

enum class Shape { Cube, Sphere, Cylinder, Cone, Torus, Dome };

// One solid: the shape's unit box [-0.5,0.5]^3 scaled and moved onto [box_min, box_max] (world units).
struct Part {
  Shape shape = Shape::Cube;
  std::string color;              // a color word of the spec
  std::array<float, 3> albedo{};  // linear RGB in [0,1]
  std::array<float, 3> box_min{}, box_max{};
  // The world axis the shape's own Y axis (its axis of symmetry) lies along: 0 = X, 1 = Y, 2 = Z.
  // Only the dumbbell's bar uses 0 (a cylinder along X); the mapping swaps Y with that axis.
  int axis = 1;
};

struct SynthObject {
  std::string caption;  // canonical caption, no view suffix
  std::vector<Part> parts;
};

struct ParsedCaption {
  SynthObject object;
  std::string view;  // "" or one of front|side|back|overhead
};

struct ColorEntry {
  const char* word;
  std::array<float, 3> albedo;
};
struct ShapeEntry {
  const char* word;
  Shape shape;
};

// The spec's tables, in spec order.
const std::vector<ColorEntry>& color_table();
const std::vector<ShapeEntry>& caption_shape_table();  // the five caption shapes (no dome)
const std::vector<std::string>& named_object_words();  // tree mushroom table chair dumbbell
const std::vector<std::string>& view_words();          // front side back overhead

// Albedo of a color word; throws InputError for an unknown word.
std::array<float, 3> color_albedo(const std::string& color);
const char* shape_word(Shape shape);  // "cube", …, "dome"

// Parses a caption (see the grammar above). Throws InputError for unknown words (naming all of them and
// listing the vocabulary) and for ungrammatical text (saying what was expected where).
ParsedCaption parse_caption(const std::string& text);

// Every object of the grammar, canonical, no view suffix: 40 singles, 40×40 stacks, 5 named objects.
std::vector<std::string> all_captions();

// Every word a caption may contain: articles, colors, shapes, named objects, "on" "top" "of", the view
// words, "view" and ",".
std::vector<std::string> vocabulary();

// The objects themselves (the spec's boxes), for callers that do not start from text.
SynthObject make_single(const std::string& color, Shape shape);
SynthObject make_stack(const std::string& color1, Shape shape1, const std::string& color2, Shape shape2);
SynthObject make_named(const std::string& name);

}  // namespace nd
