// CLIP BPE tokenizer: the golden cases of ../shared/golden/clip-tokenizer (exact ids and BPE strings), the
// normalisation rules (html.unescape, whitespace, Python's lower()) and malformed files.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "diffusion/clip_tokenizer.h"
#include "diffusion/clip_tokenizer_unicode.h"
#include "io/safetensors.h"

namespace {

namespace fs = std::filesystem;

const std::string kGolden = NERFDREAM_SOURCE_DIR "/../shared/golden";

#define REQUIRE_GOLDEN() \
  if (!fs::exists(kGolden + "/clip-tokenizer/vocab.json")) GTEST_SKIP() << kGolden << " not found"

// One tokenizer for every golden test (loading the 49408-entry vocabulary takes ~0.1 s).
const nd::CLIPTokenizer& golden_tokenizer() {
  static const nd::CLIPTokenizer t =
      nd::CLIPTokenizer::load(kGolden + "/clip-tokenizer/vocab.json", kGolden + "/clip-tokenizer/merges.txt");
  return t;
}

// A scratch directory for the malformed-file tests, removed at the end of the test.
struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() /
           ("nd_clip_tok_" + std::to_string(::testing::UnitTest::GetInstance()->random_seed()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string write(const std::string& name, const std::string& content) const {
    const std::string p = (path / name).string();
    std::ofstream(p, std::ios::binary) << content;
    return p;
  }
};

template <class F>
std::string input_error_of(F&& f) {
  try {
    f();
  } catch (const nd::InputError& e) {
    return e.what();
  }
  return "<no InputError>";
}

TEST(GoldenCLIPTokenizer, AllCases) {
  REQUIRE_GOLDEN();
  const nd::CLIPTokenizer& t = golden_tokenizer();
  std::ifstream f(kGolden + "/clip-tokenizer/cases.json");
  const nlohmann::json cases = nlohmann::json::parse(f);
  ASSERT_EQ(t.bos_id(), cases["bos_id"].get<int64_t>());
  ASSERT_EQ(t.eos_id(), cases["eos_id"].get<int64_t>());
  const int max_length = cases["max_length"].get<int>();
  const int64_t pad_sd1 = cases["pad_id_sd1"].get<int64_t>(), pad_sd2 = cases["pad_id_sd2"].get<int64_t>();
  ASSERT_EQ(cases["cases"].size(), 30u);
  for (const auto& c : cases["cases"]) {
    const std::string prompt = c["prompt"].get<std::string>();
    SCOPED_TRACE("prompt: " + prompt);
    EXPECT_EQ(t.bpe_tokens(prompt), c["bpe_tokens"].get<std::vector<std::string>>());
    const std::vector<int64_t> ids = t.encode(prompt);
    EXPECT_EQ(ids, c["ids_no_special"].get<std::vector<int64_t>>());
    EXPECT_EQ(static_cast<int64_t>(ids.size()), c["n_tokens_no_special"].get<int64_t>());

    const nd::CLIPTokenizer::Encoded sd1 = t.encode_padded(prompt, max_length, pad_sd1);
    const nd::CLIPTokenizer::Encoded sd2 = t.encode_padded(prompt, max_length, pad_sd2);
    const auto length = c["length"].get<size_t>();
    EXPECT_EQ(std::vector<int64_t>(sd1.ids.begin(), sd1.ids.begin() + length),
              c["ids"].get<std::vector<int64_t>>());
    EXPECT_EQ(sd1.ids, c["ids_padded_sd1"].get<std::vector<int64_t>>());
    EXPECT_EQ(sd2.ids, c["ids_padded_sd2"].get<std::vector<int64_t>>());
    EXPECT_EQ(sd1.truncated, c["truncated"].get<bool>());
    EXPECT_EQ(sd2.truncated, c["truncated"].get<bool>());
    EXPECT_EQ(t.encode_padded(prompt).ids, sd1.ids);  // the default pad id is <|endoftext|>
  }
}

TEST(GoldenCLIPTokenizer, AnchorPromptAndDecode) {
  REQUIRE_GOLDEN();
  const nd::CLIPTokenizer& t = golden_tokenizer();
  const std::string prompt = "a photograph of an astronaut riding a horse";
  const nd::CLIPTokenizer::Encoded e = t.encode_padded(prompt);
  const std::vector<int64_t> anchor = {49406, 320, 8853, 539, 550, 18376, 6765, 320, 4558, 49407};
  EXPECT_EQ(std::vector<int64_t>(e.ids.begin(), e.ids.begin() + anchor.size()), anchor);
  EXPECT_EQ(e.ids.size(), 77u);
  EXPECT_FALSE(e.truncated);
  EXPECT_EQ(t.decode(e.ids), prompt);
  EXPECT_EQ(t.decode(t.encode("Café crème, 東京 🍄")), "café crème , 東京 🍄");
  EXPECT_EQ(t.token(320), "a</w>");
  EXPECT_EQ(t.vocab_size(), 49408);
}

// Cases beyond cases.json, with ids from openai's SimpleTokenizer run in Python (regex 2026.5.9): final
// sigma, İ → "i̇", the case-insensitive 's matching ſ, entities, non-ASCII numbers. (The same comparison on
// 30,000 random strings — random code points, entities, specials, contractions — found no difference.)
TEST(GoldenCLIPTokenizer, MoreCasesFromPython) {
  REQUIRE_GOLDEN();
  const nd::CLIPTokenizer& t = golden_tokenizer();
  const std::vector<std::pair<std::string, std::vector<int64_t>>> cases = {
      {"\xce\x9f\xce\x94\xce\xa5\xce\xa3\xce\xa3\xce\x95\xce\xa5\xce\xa3",  // ΟΔΥΣΣΕΥΣ
       {138, 123, 138, 112, 139, 227, 139, 225, 139, 225, 138, 113, 139, 227, 139, 480}},
      {"\xc4\xb0stanbul", {328, 16384, 11231}},  // İstanbul
      {"it'\xc5\xbf", {585, 6, 129, 379}},       // it'ſ: one piece "'ſ"
      {"&lt;lora&gt; caf&eacute;&#x21;", {283, 2179, 320, 285, 15304, 256}},
      {"x\xc2\xb2\xe2\x85\xab\xd9\xa3", {343, 41175, 158, 227, 375, 149, 352}},  // x²Ⅻ٣
  };
  for (const auto& [prompt, ids] : cases) EXPECT_EQ(t.encode(prompt), ids) << prompt;
}

TEST(GoldenCLIPTokenizer, TruncationKeepsFirst75) {
  REQUIRE_GOLDEN();
  const nd::CLIPTokenizer& t = golden_tokenizer();
  std::string prompt;
  for (int i = 0; i < 100; ++i) prompt += "cat ";
  const auto e = t.encode_padded(prompt);
  EXPECT_TRUE(e.truncated);
  ASSERT_EQ(e.ids.size(), 77u);
  EXPECT_EQ(e.ids.front(), 49406);
  EXPECT_EQ(e.ids.back(), 49407);
  for (int i = 1; i < 76; ++i) EXPECT_EQ(e.ids[i], t.encode("cat")[0]);
  // 75 content tokens fit exactly; 76 do not.
  std::string fits;
  for (int i = 0; i < 75; ++i) fits += "cat ";
  EXPECT_FALSE(t.encode_padded(fits).truncated);
  EXPECT_TRUE(t.encode_padded(fits + "cat").truncated);
  EXPECT_EQ(t.encode_padded("a cat", 8, 0).ids, (std::vector<int64_t>{49406, 320, 2368, 49407, 0, 0, 0, 0}));
  EXPECT_THROW(t.encode_padded("a", 1), nd::InputError);
}

TEST(GoldenCLIPTokenizer, FolderPadTokensAndPipelineIds) {
  REQUIRE_GOLDEN();
  for (const std::string sd : {"sd1-tiny", "sd2-tiny"}) {
    SCOPED_TRACE(sd);
    const nd::CLIPTokenizer t = nd::CLIPTokenizer::load_folder(kGolden + "/" + sd + "/tokenizer");
    EXPECT_EQ(t.pad_id(), sd == "sd1-tiny" ? 49407 : 0);
    EXPECT_EQ(t.bos_id(), 49406);
    EXPECT_EQ(t.eos_id(), 49407);
    // The pipelines' text encoder inputs, tokenized from the prompts stored in the file's metadata.
    const nd::SafetensorsFile golden =
        nd::SafetensorsFile::open(kGolden + "/" + sd + "/golden/text_encoder.safetensors");
    const auto prompts =
        nlohmann::json::parse(golden.metadata().at("prompts")).get<std::vector<std::string>>();
    EXPECT_EQ(std::to_string(t.pad_id()), golden.metadata().at("pad_id"));
    std::vector<bool> truncated;
    const at::Tensor ids = t.encode_batch(prompts, 77, &truncated);
    const at::Tensor expected = golden.load("input_ids", at::kLong);
    ASSERT_EQ(ids.sizes(), expected.sizes());
    EXPECT_TRUE(at::equal(ids, expected));
    EXPECT_EQ(truncated, std::vector<bool>(prompts.size(), false));
  }
}

TEST(CLIPTokenizer, NormalizeMatchesPython) {
  // Expected strings from Python 3.11: html.unescape twice, strip, re.sub(r'\s+', ' '), strip, lower().
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"&amp;lt;b&amp;gt;", "<b>"},
      {"&ampfoo &notit; &not;", "&foo \xc2\xacit; \xc2\xac"},
      {"&#x41;&#66;&#X4a", "abj"},
      {"&#128;&#0;&#1;x&#13;y", "\xe2\x82\xac\xef\xbf\xbdx y"},
      {"&hellip; &hellip &Hellip;", "\xe2\x80\xa6 &hellip &hellip;"},
      {"&#99999999999;&#xD800;&#xFFFE;", "\xef\xbf\xbd\xef\xbf\xbd"},
      // ΟΔΥΣΣΕΥΣ ΣΑ Σ: final sigma only after a cased letter and before none.
      {"\xce\x9f\xce\x94\xce\xa5\xce\xa3\xce\xa3\xce\x95\xce\xa5\xce\xa3 \xce\xa3\xce\x91 \xce\xa3",
       "\xce\xbf\xce\xb4\xcf\x85\xcf\x83\xcf\x83\xce\xb5\xcf\x85\xcf\x82 \xcf\x83\xce\xb1 \xcf\x83"},
      {"\xc4\xb0stanbul \xe1\xba\x9e \xc7\x84 \xc7\x85", "i\xcc\x87stanbul \xc3\x9f \xc7\x86 \xc7\x86"},
      {"\xc2\xa0"
       "a\xe3\x80\x80"
       "b\x1c c\xe2\x80\xa9",
       "a b c"},
      {"&#38;amp; &amp;amp;", "& &"},
      {"&lang;&AMP;&AMP &nbsp;x", "\xe2\x9f\xa8&& x"},
      {"&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;", "&aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa;"},
      {"&#;&#x;& ;", "&#;&#x;& ;"},
      {"  \t\n ", ""},
  };
  for (const auto& [in, out] : cases) EXPECT_EQ(nd::CLIPTokenizer::normalize(in), out) << "input: " << in;
  EXPECT_THROW(nd::CLIPTokenizer::normalize("bad \xff byte"), nd::InputError);
  EXPECT_THROW(nd::CLIPTokenizer::normalize("overlong \xc0\xaf"), nd::InputError);
  EXPECT_THROW(nd::CLIPTokenizer::normalize("cut \xe6\x9d"), nd::InputError);
}

TEST(CLIPTokenizer, PreTokenizeRegex) {
  using V = std::vector<std::string>;
  EXPECT_EQ(nd::CLIPTokenizer::pre_tokenize("It's 42!?<|endoftext|>x"),
            (V{"it", "'s", "4", "2", "!?<|", "endoftext", "|>", "x"}));
  EXPECT_EQ(nd::CLIPTokenizer::pre_tokenize("<|ENDOFTEXT|>we'll 'quote'"),
            (V{"<|endoftext|>", "we", "'ll", "'", "quote", "'"}));
  // \p{L}: accents, CJK, Cyrillic are letters; ² and Ⅻ are numbers (one piece each, Ⅻ lowered to ⅻ); emoji
  // are neither.
  EXPECT_EQ(
      nd::CLIPTokenizer::pre_tokenize(
          "na\xc3\xafve \xe6\x9d\xb1\xe4\xba\xac x\xc2\xb2\xe2\x85\xab \xf0\x9f\x8d\x84\xf0\x9f\x9a\x80"),
      (V{"na\xc3\xafve", "\xe6\x9d\xb1\xe4\xba\xac", "x", "\xc2\xb2", "\xe2\x85\xbb",
         "\xf0\x9f\x8d\x84\xf0\x9f\x9a\x80"}));
  namespace cu = nd::clip_unicode;
  EXPECT_TRUE(cu::is_letter(U'\u00e9') && cu::is_letter(U'\u0436') && cu::is_letter(U'\u03bb'));
  EXPECT_TRUE(cu::is_number(U'\u0663') && !cu::is_letter(U'\u0663'));  // Arabic-Indic three
  EXPECT_FALSE(cu::is_letter(U'\U0001F344') || cu::is_number(U'\U0001F344'));
  EXPECT_EQ(cu::simple_lower(U'\u0416'), U'\u0436');  // Ж → ж
  EXPECT_EQ(cu::simple_lower(U'\u0100'), U'\u0101');  // Ā → ā (stride-2 run)
  EXPECT_EQ(cu::simple_lower(U'\u0101'), U'\u0101');
}

// BPE mechanics on a hand-made vocabulary: merges apply by rank, not by position.
TEST(CLIPTokenizer, BpeMergesByRank) {
  TempDir dir;
  nlohmann::json vocab = {{"a", 0},       {"b", 1},  {"c</w>", 2},           {"bc</w>", 3},
                          {"abc</w>", 4}, {"ab", 5}, {"<|startoftext|>", 6}, {"<|endoftext|>", 7}};
  const std::string v = dir.write("vocab.json", vocab.dump());
  const std::string m = dir.write("merges.txt", "#version: 0.2\nb c</w>\na bc</w>\na b\n");
  const nd::CLIPTokenizer t = nd::CLIPTokenizer::load(v, m);
  EXPECT_EQ(t.bpe_tokens("abc"), (std::vector<std::string>{"abc</w>"}));
  EXPECT_EQ(t.encode("abc ABC"), (std::vector<int64_t>{4, 4}));
  EXPECT_EQ(t.bpe_tokens("ab"), (std::vector<std::string>{"a", "b</w>"}));  // "a b" ≠ ("a", "b</w>")
  EXPECT_EQ(t.bpe_tokens("abab"), (std::vector<std::string>{"ab", "a", "b</w>"}));
  EXPECT_EQ(t.encode("zz"), (std::vector<int64_t>{7, 7}));  // unknown symbols → <|endoftext|> (unk)
  EXPECT_EQ(t.pad_id(), 7);
}

TEST(CLIPTokenizer, MalformedFilesNameTheFile) {
  TempDir dir;
  const std::string good_vocab =
      dir.write("vocab.json", R"({"a": 0, "<|startoftext|>": 1, "<|endoftext|>": 2})");
  const std::string good_merges = dir.write("merges.txt", "#version: 0.2\na a\n");
  EXPECT_NO_THROW(nd::CLIPTokenizer::load(good_vocab, good_merges));

  const std::string missing = (dir.path / "nope.json").string();
  EXPECT_NE(input_error_of([&] { nd::CLIPTokenizer::load(missing, good_merges); }).find(missing),
            std::string::npos);
  const std::string missing_merges = (dir.path / "nope.txt").string();
  EXPECT_NE(input_error_of([&] { nd::CLIPTokenizer::load(good_vocab, missing_merges); }).find(missing_merges),
            std::string::npos);

  const std::string not_json = dir.write("bad.json", "{\"a\": 0,");
  EXPECT_NE(input_error_of([&] {
              nd::CLIPTokenizer::load(not_json, good_merges);
            }).find(not_json + ": not valid JSON"),
            std::string::npos);
  const std::string not_object = dir.write("list.json", "[1, 2]");
  EXPECT_NE(input_error_of([&] { nd::CLIPTokenizer::load(not_object, good_merges); }).find(not_object),
            std::string::npos);
  const std::string bad_id =
      dir.write("badid.json", R"({"a": "zero", "<|startoftext|>": 1, "<|endoftext|>": 2})");
  EXPECT_NE(input_error_of([&] { nd::CLIPTokenizer::load(bad_id, good_merges); }).find("token 'a'"),
            std::string::npos);
  const std::string no_special = dir.write("nospecial.json", R"({"a": 0})");
  EXPECT_NE(input_error_of([&] { nd::CLIPTokenizer::load(no_special, good_merges); }).find("<|startoftext|>"),
            std::string::npos);

  const std::string bad_merge = dir.write("badmerge.txt", "#version: 0.2\na a\nabc\n");
  EXPECT_NE(input_error_of([&] { nd::CLIPTokenizer::load(good_vocab, bad_merge); }).find(bad_merge + ":3:"),
            std::string::npos);
  const std::string three = dir.write("three.txt", "#version: 0.2\na b c\n");
  EXPECT_NE(input_error_of([&] { nd::CLIPTokenizer::load(good_vocab, three); }).find(three + ":2:"),
            std::string::npos);
  const std::string empty = dir.write("empty.txt", "#version: 0.2\n");
  EXPECT_NE(input_error_of([&] { nd::CLIPTokenizer::load(good_vocab, empty); }).find(empty),
            std::string::npos);

  // A tokenizer folder whose pad token is not in the vocabulary.
  fs::create_directories(dir.path / "tok");
  fs::copy_file(good_vocab, dir.path / "tok" / "vocab.json");
  fs::copy_file(good_merges, dir.path / "tok" / "merges.txt");
  dir.write("tok/special_tokens_map.json", R"({"pad_token": {"content": "<pad>"}})");
  EXPECT_NE(
      input_error_of([&] { nd::CLIPTokenizer::load_folder((dir.path / "tok").string()); }).find("'<pad>'"),
      std::string::npos);
  dir.write("tok/special_tokens_map.json", R"({"pad_token": "a"})");
  dir.write("tok/tokenizer_config.json", R"({"pad_token": "<|endoftext|>"})");
  EXPECT_EQ(nd::CLIPTokenizer::load_folder((dir.path / "tok").string()).pad_id(), 0);  // the map wins
  dir.write("tok/special_tokens_map.json", "not json");
  EXPECT_NE(input_error_of([&] {
              nd::CLIPTokenizer::load_folder((dir.path / "tok").string());
            }).find("special_tokens_map.json: not valid JSON"),
            std::string::npos);
}

}  // namespace
