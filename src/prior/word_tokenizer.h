// The tiny prior's tokenizer: one token per word of the synth vocabulary (shared/spec/synth-world.md).
//
// Ids: 0 <pad>, 1 <bos>, 2 <eos>, then vocabulary() in its order. A prompt becomes
//   [<bos>, word ids..., <eos>, <pad>...] of length kMaxTokens. Words are split on spaces and commas (a comma
// is a token of its own) and lower-cased. The empty prompt (classifier-free guidance's unconditional branch)
// is [<bos>, <eos>, <pad>...] and only encode_unconditional() makes it: a user's empty prompt is an error.
#pragma once
#include <ATen/ATen.h>

#include <string>
#include <unordered_map>
#include <vector>

namespace nd {

class WordTokenizer {
 public:
  static constexpr int kMaxTokens = 16;
  static constexpr int64_t kPad = 0, kBos = 1, kEos = 2;

  WordTokenizer();

  // Token ids [kMaxTokens] int64. InputError for an empty prompt, for words outside the vocabulary (naming
  // them and listing the vocabulary) and for prompts longer than kMaxTokens − 2 words.
  at::Tensor encode(const std::string& prompt) const;
  at::Tensor encode_unconditional() const;
  // Prompts → [B, kMaxTokens].
  at::Tensor encode_batch(const std::vector<std::string>& prompts) const;
  // Ids back to text (specials dropped), for logs and tests.
  std::string decode(const at::Tensor& ids) const;

  int64_t vocab_size() const { return static_cast<int64_t>(words_.size()); }

 private:
  std::vector<std::string> words_;
  std::unordered_map<std::string, int64_t> ids_;
};

}  // namespace nd
