#include "synth/caption.h"

#include <algorithm>
#include <cctype>

#include "core/error.h"

namespace nd {

namespace {

bool starts_with_vowel(const std::string& word) {
  return !word.empty() && std::string("aeiou").find(word[0]) != std::string::npos;
}

std::string article_for(const std::string& next_word) { return starts_with_vowel(next_word) ? "an" : "a"; }

std::string join(const std::vector<std::string>& words, const std::string& sep) {
  std::string out;
  for (size_t i = 0; i < words.size(); ++i) out += (i ? sep : "") + words[i];
  return out;
}

Part make_part(Shape shape, const std::string& color, std::array<float, 3> lo, std::array<float, 3> hi,
               int axis = 1) {
  Part p;
  p.shape = shape;
  p.color = color;
  p.albedo = color_albedo(color);
  p.box_min = lo;
  p.box_max = hi;
  p.axis = axis;
  return p;
}

// Lower-cases and splits on spaces; "," is a token of its own even when it touches a word.
std::vector<std::string> tokenize(const std::string& text) {
  std::vector<std::string> tokens;
  std::string cur;
  auto flush = [&] {
    if (!cur.empty()) tokens.push_back(cur);
    cur.clear();
  };
  for (char ch : text) {
    const auto c = static_cast<unsigned char>(ch);
    if (std::isspace(c)) {
      flush();
    } else if (ch == ',') {
      flush();
      tokens.emplace_back(",");
    } else {
      cur.push_back(static_cast<char>(std::tolower(c)));
    }
  }
  flush();
  return tokens;
}

bool is_color(const std::string& w) {
  for (const auto& c : color_table())
    if (w == c.word) return true;
  return false;
}

const ShapeEntry* find_shape(const std::string& w) {
  for (const auto& s : caption_shape_table())
    if (w == s.word) return &s;
  return nullptr;
}

bool contains(const std::vector<std::string>& v, const std::string& w) {
  return std::find(v.begin(), v.end(), w) != v.end();
}

std::vector<std::string> color_words() {
  std::vector<std::string> out;
  for (const auto& c : color_table()) out.emplace_back(c.word);
  return out;
}

std::vector<std::string> shape_words() {
  std::vector<std::string> out;
  for (const auto& s : caption_shape_table()) out.emplace_back(s.word);
  return out;
}

// Recursive-descent parser over the tokens; every error names what was expected and where.
class Parser {
 public:
  Parser(const std::string& text, std::vector<std::string> tokens)
      : text_(text), tokens_(std::move(tokens)) {}

  ParsedCaption parse() {
    if (tokens_.empty())
      throw InputError(
          "caption is empty: expected e.g. \"a red cube\" (a <color> <shape>, a stack or a named "
          "object)");
    ParsedCaption out;
    article();
    const std::string color_or_named = "a color (" + join(color_words(), ", ") + ") or a named object (" +
                                       join(named_object_words(), ", ") + ")";
    const std::string& first = peek(color_or_named);
    if (!is_color(first) && !contains(named_object_words(), first)) fail(color_or_named);
    if (contains(named_object_words(), first)) {
      ++pos_;
      out.object = make_named(first);
    } else {
      auto [color1, shape1] = color_shape();
      if (pos_ < tokens_.size() && tokens_[pos_] == "on") {
        ++pos_;
        expect("top");
        expect("of");
        article();
        auto [color2, shape2] = color_shape();
        out.object = make_stack(color1, shape1, color2, shape2);
      } else {
        out.object = make_single(color1, shape1);
      }
    }
    if (pos_ < tokens_.size()) {
      if (tokens_[pos_] == ",") ++pos_;
      const std::string& v = peek("a view word (" + join(view_words(), ", ") + ")");
      if (!contains(view_words(), v)) fail("a view word (" + join(view_words(), ", ") + ")");
      ++pos_;
      out.view = v;
      expect("view");
      if (pos_ < tokens_.size()) fail("the end of the caption");
    }
    return out;
  }

 private:
  [[noreturn]] void fail(const std::string& expected) const {
    std::string where = pos_ == 0 ? "at the start" : "after \"" + tokens_[pos_ - 1] + "\"";
    std::string got = pos_ < tokens_.size() ? "got \"" + tokens_[pos_] + "\"" : "the caption ends";
    throw InputError("caption \"" + text_ + "\": expected " + expected + " " + where + ", but " + got +
                     " (grammar: a <color> <shape> [on top of a <color> <shape>] | a <named object>, "
                     "optionally followed by \", <view> view\")");
  }

  const std::string& peek(const std::string& expected) const {
    if (pos_ >= tokens_.size()) fail(expected);
    return tokens_[pos_];
  }

  void expect(const std::string& word) {
    if (peek("\"" + word + "\"") != word) fail("\"" + word + "\"");
    ++pos_;
  }

  void article() {
    const std::string& w = peek("\"a\"");
    if (w != "a" && w != "an") fail("\"a\"");
    ++pos_;
    if (w == "an" && pos_ < tokens_.size() && !starts_with_vowel(tokens_[pos_])) {
      --pos_;
      fail("\"a\" (\"an\" goes only before a vowel)");
    }
  }

  std::pair<std::string, Shape> color_shape() {
    const std::string colors = "a color (" + join(color_words(), ", ") + ")";
    const std::string& c = peek(colors);
    if (!is_color(c)) fail(colors);
    ++pos_;
    const std::string shapes = "a shape (" + join(shape_words(), ", ") + ")";
    const ShapeEntry* s = find_shape(peek(shapes));
    if (!s) fail(shapes);
    ++pos_;
    return {c, s->shape};
  }

  std::string text_;
  std::vector<std::string> tokens_;
  size_t pos_ = 0;
};

}  // namespace

const std::vector<ColorEntry>& color_table() {
  static const std::vector<ColorEntry> table = {
      {"red", {0.85f, 0.12f, 0.10f}},   {"orange", {0.95f, 0.50f, 0.08f}}, {"yellow", {0.95f, 0.85f, 0.15f}},
      {"green", {0.15f, 0.65f, 0.20f}}, {"blue", {0.12f, 0.28f, 0.85f}},   {"purple", {0.55f, 0.20f, 0.75f}},
      {"brown", {0.50f, 0.30f, 0.12f}}, {"gray", {0.50f, 0.50f, 0.50f}},
  };
  return table;
}

const std::vector<ShapeEntry>& caption_shape_table() {
  static const std::vector<ShapeEntry> table = {{"cube", Shape::Cube},
                                                {"sphere", Shape::Sphere},
                                                {"cylinder", Shape::Cylinder},
                                                {"cone", Shape::Cone},
                                                {"torus", Shape::Torus}};
  return table;
}

const std::vector<std::string>& named_object_words() {
  static const std::vector<std::string> words = {"tree", "mushroom", "table", "chair", "dumbbell"};
  return words;
}

const std::vector<std::string>& view_words() {
  static const std::vector<std::string> words = {"front", "side", "back", "overhead"};
  return words;
}

std::array<float, 3> color_albedo(const std::string& color) {
  for (const auto& c : color_table())
    if (color == c.word) return c.albedo;
  throw InputError("unknown color \"" + color + "\" (known: " + join(color_words(), ", ") + ")");
}

const char* shape_word(Shape shape) {
  switch (shape) {
    case Shape::Cube:
      return "cube";
    case Shape::Sphere:
      return "sphere";
    case Shape::Cylinder:
      return "cylinder";
    case Shape::Cone:
      return "cone";
    case Shape::Torus:
      return "torus";
    case Shape::Dome:
      return "dome";
  }
  return "?";
}

std::vector<std::string> vocabulary() {
  std::vector<std::string> v = {"a", "an"};
  for (const auto& w : color_words()) v.push_back(w);
  for (const auto& w : shape_words()) v.push_back(w);
  for (const auto& w : named_object_words()) v.push_back(w);
  for (const char* w : {"on", "top", "of"}) v.emplace_back(w);
  for (const auto& w : view_words()) v.push_back(w);
  v.emplace_back("view");
  v.emplace_back(",");
  return v;
}

ParsedCaption parse_caption(const std::string& text) {
  auto tokens = tokenize(text);
  const auto vocab = vocabulary();
  std::vector<std::string> unknown;
  for (const auto& t : tokens)
    if (!contains(vocab, t) && !contains(unknown, t)) unknown.push_back(t);
  if (!unknown.empty()) {
    std::vector<std::string> quoted;
    for (const auto& u : unknown) quoted.push_back("\"" + u + "\"");
    throw InputError("caption \"" + text + "\": unknown word" + (unknown.size() > 1 ? "s " : " ") +
                     join(quoted, ", ") + " (the synth prior knows only: " + join(vocab, " ") + ")");
  }
  return Parser(text, std::move(tokens)).parse();
}

std::vector<std::string> all_captions() {
  std::vector<std::string> singles;
  for (const auto& c : color_table())
    for (const auto& s : caption_shape_table())
      singles.push_back(std::string(c.word) + " " + s.word);  // without article
  std::vector<std::string> out;
  for (const auto& s : singles) out.push_back(article_for(s) + " " + s);
  for (const auto& top : singles)
    for (const auto& bottom : singles)
      out.push_back(article_for(top) + " " + top + " on top of " + article_for(bottom) + " " + bottom);
  for (const auto& n : named_object_words()) out.push_back(article_for(n) + " " + n);
  return out;
}

SynthObject make_single(const std::string& color, Shape shape) {
  SynthObject obj;
  obj.caption = article_for(color) + " " + color + " " + shape_word(shape);
  obj.parts.push_back(make_part(shape, color, {-0.55f, -0.55f, -0.55f}, {0.55f, 0.55f, 0.55f}));
  return obj;
}

SynthObject make_stack(const std::string& color1, Shape shape1, const std::string& color2, Shape shape2) {
  SynthObject obj;
  obj.caption = article_for(color1) + " " + color1 + " " + shape_word(shape1) + " on top of " +
                article_for(color2) + " " + color2 + " " + shape_word(shape2);
  obj.parts.push_back(make_part(shape1, color1, {-0.35f, 0.0f, -0.35f}, {0.35f, 0.7f, 0.35f}));
  obj.parts.push_back(make_part(shape2, color2, {-0.35f, -0.7f, -0.35f}, {0.35f, 0.0f, 0.35f}));
  return obj;
}

SynthObject make_named(const std::string& name) {
  SynthObject obj;
  obj.caption = article_for(name) + " " + name;
  auto& p = obj.parts;
  // Four legs at x in ±[lo,hi], z in ±[lo,hi], y in [y0,y1].
  auto legs = [&](const std::string& color, float lo, float hi, float y0, float y1) {
    for (float sx : {-1.f, 1.f})
      for (float sz : {-1.f, 1.f}) {
        const float x0 = sx > 0 ? lo : -hi, x1 = sx > 0 ? hi : -lo;
        const float z0 = sz > 0 ? lo : -hi, z1 = sz > 0 ? hi : -lo;
        p.push_back(make_part(Shape::Cylinder, color, {x0, y0, z0}, {x1, y1, z1}));
      }
  };
  if (name == "tree") {
    p.push_back(make_part(Shape::Cone, "green", {-0.45f, -0.2f, -0.45f}, {0.45f, 0.8f, 0.45f}));
    p.push_back(make_part(Shape::Cylinder, "brown", {-0.12f, -0.8f, -0.12f}, {0.12f, -0.2f, 0.12f}));
  } else if (name == "mushroom") {
    p.push_back(make_part(Shape::Dome, "red", {-0.6f, 0.0f, -0.6f}, {0.6f, 0.6f, 0.6f}));
    p.push_back(make_part(Shape::Cylinder, "yellow", {-0.18f, -0.7f, -0.18f}, {0.18f, 0.0f, 0.18f}));
  } else if (name == "table") {
    p.push_back(make_part(Shape::Cube, "brown", {-0.7f, 0.1f, -0.7f}, {0.7f, 0.25f, 0.7f}));
    legs("brown", 0.45f, 0.6f, -0.6f, 0.1f);
  } else if (name == "chair") {
    p.push_back(make_part(Shape::Cube, "brown", {-0.45f, -0.1f, -0.45f}, {0.45f, 0.05f, 0.45f}));
    // The backrest is at the back (-Z): the chair faces +Z.
    p.push_back(make_part(Shape::Cube, "brown", {-0.45f, 0.05f, -0.45f}, {0.45f, 0.75f, -0.33f}));
    legs("brown", 0.33f, 0.45f, -0.7f, -0.1f);
  } else if (name == "dumbbell") {
    p.push_back(
        make_part(Shape::Cylinder, "gray", {-0.5f, -0.08f, -0.08f}, {0.5f, 0.08f, 0.08f}, /*axis=*/0));
    p.push_back(make_part(Shape::Sphere, "gray", {-0.83f, -0.28f, -0.28f}, {-0.27f, 0.28f, 0.28f}));
    p.push_back(make_part(Shape::Sphere, "gray", {0.27f, -0.28f, -0.28f}, {0.83f, 0.28f, 0.28f}));
  } else {
    throw InputError("unknown named object \"" + name + "\" (known: " + join(named_object_words(), ", ") +
                     ")");
  }
  return obj;
}

}  // namespace nd
