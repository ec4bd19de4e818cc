#include <gtest/gtest.h>

#include "core/error.h"
#include "synth/caption.h"

namespace nd {
namespace {

std::string error_of(const std::string& text) {
  try {
    parse_caption(text);
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(Caption, AllCaptionsRoundTrip) {
  const auto captions = all_captions();
  EXPECT_EQ(captions.size(), 40u + 40u * 40u + 5u);
  for (const auto& c : captions) {
    const auto parsed = parse_caption(c);
    ASSERT_EQ(parsed.object.caption, c);
    EXPECT_TRUE(parsed.view.empty());
    EXPECT_FALSE(parsed.object.parts.empty());
  }
}

TEST(Caption, SingleAndStackBoxes) {
  auto single = parse_caption("a red cube").object;
  ASSERT_EQ(single.parts.size(), 1u);
  EXPECT_EQ(single.parts[0].shape, Shape::Cube);
  EXPECT_EQ(single.parts[0].color, "red");
  EXPECT_FLOAT_EQ(single.parts[0].albedo[0], 0.85f);
  EXPECT_FLOAT_EQ(single.parts[0].box_min[1], -0.55f);
  EXPECT_FLOAT_EQ(single.parts[0].box_max[2], 0.55f);

  auto stack = parse_caption("a blue torus on top of a gray cone").object;
  ASSERT_EQ(stack.parts.size(), 2u);
  EXPECT_EQ(stack.parts[0].shape, Shape::Torus);  // the top part first
  EXPECT_EQ(stack.parts[0].color, "blue");
  EXPECT_FLOAT_EQ(stack.parts[0].box_min[1], 0.0f);
  EXPECT_FLOAT_EQ(stack.parts[0].box_max[1], 0.7f);
  EXPECT_EQ(stack.parts[1].shape, Shape::Cone);
  EXPECT_FLOAT_EQ(stack.parts[1].box_min[1], -0.7f);
  EXPECT_FLOAT_EQ(stack.parts[1].box_max[0], 0.35f);
}

TEST(Caption, TolerantOfCaseSpacesArticlesAndSuffix) {
  EXPECT_EQ(parse_caption("an orange cube").object.caption, "an orange cube");
  EXPECT_EQ(parse_caption("a orange cube").object.caption, "an orange cube");
  EXPECT_EQ(parse_caption("  A   Red\tCUBE ").object.caption, "a red cube");
  auto p = parse_caption("a red cube, front view");
  EXPECT_EQ(p.object.caption, "a red cube");
  EXPECT_EQ(p.view, "front");
  EXPECT_EQ(parse_caption("a tree ,overhead view").view, "overhead");
  EXPECT_EQ(parse_caption("A Green Sphere On Top Of An Orange Cylinder,   back VIEW").view, "back");
  EXPECT_EQ(parse_caption("a chair side view").view, "side");
  EXPECT_EQ(parse_caption("a mushroom").object.parts[0].shape, Shape::Dome);
}

TEST(Caption, UnknownWordsAreNamedWithTheVocabulary) {
  const std::string e = error_of("a crimson cube on top of a blob");
  EXPECT_NE(e.find("\"crimson\""), std::string::npos) << e;
  EXPECT_NE(e.find("\"blob\""), std::string::npos) << e;
  EXPECT_NE(e.find("purple"), std::string::npos) << e;  // lists the vocabulary
  EXPECT_NE(e.find("dumbbell"), std::string::npos) << e;
  EXPECT_EQ(e.find('\n'), std::string::npos);                             // one line
  EXPECT_NE(error_of("a red dome").find("\"dome\""), std::string::npos);  // dome is a named-object part only
}

TEST(Caption, UngrammaticalCaptionsSayWhatWasExpected) {
  EXPECT_NE(error_of("").find("empty"), std::string::npos);
  EXPECT_NE(error_of("   ").find("empty"), std::string::npos);
  std::string e = error_of("a red");
  EXPECT_NE(e.find("expected a shape"), std::string::npos) << e;
  EXPECT_NE(e.find("ends"), std::string::npos) << e;
  e = error_of("a cube on top");
  EXPECT_NE(e.find("expected a color"), std::string::npos) << e;
  EXPECT_NE(e.find("\"cube\""), std::string::npos) << e;
  EXPECT_NE(error_of("red cube").find("expected \"a\""), std::string::npos);
  EXPECT_NE(error_of("an red cube").find("vowel"), std::string::npos);
  EXPECT_NE(error_of("a red cube on top of").find("expected \"a\""), std::string::npos);
  EXPECT_NE(error_of("a red cube on a blue cone").find("expected \"top\""), std::string::npos);
  EXPECT_NE(error_of("a red cube, front").find("expected \"view\""), std::string::npos);
  EXPECT_NE(error_of("a red cube, view").find("expected a view word"), std::string::npos);
  EXPECT_NE(error_of("a red cube front view front view").find("end of the caption"), std::string::npos);
  EXPECT_NE(error_of("a tree on top of a red cube").find("view word"), std::string::npos);
}

TEST(Caption, VocabularyAndTables) {
  const auto v = vocabulary();
  for (const char* w : {"a", "an", "red", "gray", "cube", "torus", "tree", "dumbbell", "on", "top", "of",
                        "front", "overhead", "view", ","})
    EXPECT_NE(std::find(v.begin(), v.end(), w), v.end()) << w;
  EXPECT_EQ(color_table().size(), 8u);
  EXPECT_EQ(caption_shape_table().size(), 5u);
  EXPECT_FLOAT_EQ(color_albedo("brown")[1], 0.30f);
  EXPECT_THROW(color_albedo("white"), InputError);
}

}  // namespace
}  // namespace nd
