#include "prior/word_tokenizer.h"

#include <cctype>

#include "core/error.h"
#include "synth/caption.h"

namespace nd {
namespace {

std::vector<std::string> split_words(const std::string& text) {
  std::vector<std::string> words;
  std::string word;
  auto flush = [&] {
    if (!word.empty()) words.push_back(word);
    word.clear();
  };
  for (char c : text) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      flush();
    } else if (c == ',') {
      flush();
      words.emplace_back(",");
    } else {
      word += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    }
  }
  flush();
  return words;
}

}  // namespace

WordTokenizer::WordTokenizer() {
  words_ = {"<pad>", "<bos>", "<eos>"};
  for (const auto& w : vocabulary()) words_.push_back(w);
  for (size_t i = 0; i < words_.size(); ++i) ids_[words_[i]] = static_cast<int64_t>(i);
}

at::Tensor WordTokenizer::encode(const std::string& prompt) const {
  const auto words = split_words(prompt);
  require(!words.empty(), "empty prompt: describe an object, e.g. \"a red cube\"");
  std::string unknown;
  for (const auto& w : words)
    if (!ids_.count(w) || ids_.at(w) <= kEos) unknown += (unknown.empty() ? "'" : ", '") + w + "'";
  if (!unknown.empty()) {
    std::string known;
    for (const auto& w : vocabulary()) known += (known.empty() ? "" : " ") + w;
    throw InputError("the tiny prior does not know " + unknown + " in \"" + prompt +
                     "\"; its vocabulary is: " + known);
  }
  require(words.size() <= kMaxTokens - 2, "prompt too long for the tiny prior (" +
                                              std::to_string(words.size()) + " words, at most " +
                                              std::to_string(kMaxTokens - 2) + "): \"" + prompt + "\"");
  at::Tensor ids = at::full({kMaxTokens}, kPad, at::kLong);
  auto a = ids.accessor<int64_t, 1>();
  a[0] = kBos;
  for (size_t i = 0; i < words.size(); ++i) a[i + 1] = ids_.at(words[i]);
  a[words.size() + 1] = kEos;
  return ids;
}

at::Tensor WordTokenizer::encode_unconditional() const {
  at::Tensor ids = at::full({kMaxTokens}, kPad, at::kLong);
  ids[0] = kBos;
  ids[1] = kEos;
  return ids;
}

at::Tensor WordTokenizer::encode_batch(const std::vector<std::string>& prompts) const {
  std::vector<at::Tensor> rows;
  for (const auto& p : prompts) rows.push_back(encode(p));
  return at::stack(rows);
}

std::string WordTokenizer::decode(const at::Tensor& ids) const {
  std::string text;
  const at::Tensor flat = ids.to(at::kLong).contiguous().view(-1);
  for (int64_t i = 0; i < flat.numel(); ++i) {
    const int64_t id = flat[i].item<int64_t>();
    if (id <= kEos || id >= vocab_size()) continue;
    const std::string& w = words_[id];
    if (!text.empty() && w != ",") text += ' ';
    text += w;
  }
  return text;
}

}  // namespace nd
