// The CLIP BPE tokenizer of Stable Diffusion 1.x/2.x: openai's SimpleTokenizer, which equals transformers'
// CLIPTokenizer (with ftfy) and CLIPTokenizerFast on ordinary prompts. Reference: ../shared/golden/README.md
// ("clip-tokenizer/").
//
//   1. normalise: html.unescape twice, strip, collapse whitespace runs to one space, Python's str.lower()
//      (ftfy.fix_text, which openai also runs, is not reproduced: it is the identity on ordinary prompts);
//   2. split with <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
//   3. per piece: UTF-8 bytes → byte-to-unicode characters, "</w>" on the last one, BPE merges by rank;
//   4. ids: [bos] + first (max_length - 2) ids + [eos], padded to max_length with the pad id.
#pragma once
#include <ATen/ATen.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace nd {

class CLIPTokenizer {
 public:
  // vocab_json: {"token": id, ...} (must hold "<|startoftext|>" and "<|endoftext|>");
  // merges_txt: "#version: ..." header line, then one merge "A B" per line in rank order (as transformers,
  // at most 48894 merges are read). InputError naming the file on a missing or malformed file.
  // The pad id is the eos id ("<|endoftext|>", as SD 1.x).
  static CLIPTokenizer load(const std::string& vocab_json, const std::string& merges_txt);
  // A diffusers/transformers `tokenizer/` folder: vocab.json, merges.txt, and the pad token from
  // special_tokens_map.json or tokenizer_config.json ("<|endoftext|>" for SD 1.x, "!" for SD 2.x; eos when
  // neither names one). InputError naming the file when one is missing or malformed, or the pad token is not
  // in the vocabulary.
  static CLIPTokenizer load_folder(const std::string& tokenizer_dir);

  // Content ids of `text` (no bos/eos), untruncated.
  std::vector<int64_t> encode(const std::string& text) const;
  // The BPE strings (byte-to-unicode form, "</w>" marking a word end) behind encode()'s ids.
  std::vector<std::string> bpe_tokens(const std::string& text) const;

  struct Encoded {
    std::vector<int64_t> ids;  // exactly max_length ids: bos, content, eos, padding
    bool truncated = false;    // the content did not fit (content + 2 > max_length); callers warn
  };
  // [bos] + first (max_length - 2) content ids + [eos], padded to max_length with pad_id.
  // pad_id < 0: this tokenizer's pad id (pad_id()). InputError when max_length < 2.
  Encoded encode_padded(const std::string& text, int max_length = 77, int64_t pad_id = -1) const;
  // Several prompts as the text encoder's input: [B, max_length] int64. truncated (optional) receives one
  // flag per prompt.
  at::Tensor encode_batch(const std::vector<std::string>& texts, int max_length = 77,
                          std::vector<bool>* truncated = nullptr) const;

  int64_t bos_id() const { return bos_id_; }
  int64_t eos_id() const { return eos_id_; }
  int64_t pad_id() const { return pad_id_; }
  int64_t vocab_size() const { return static_cast<int64_t>(id_to_token_.size()); }
  // The token string of an id (byte-to-unicode form); InputError when out of range.
  const std::string& token(int64_t id) const;
  // The text that ids stand for: BPE strings mapped back to bytes, "</w>" → " " (trailing space dropped);
  // bos skipped, everything from the first eos on (the padding) ignored.
  std::string decode(const std::vector<int64_t>& ids) const;

  // Step 1 alone (UTF-8 in, UTF-8 out). InputError "prompt: invalid UTF-8 ..." on malformed UTF-8.
  static std::string normalize(const std::string& text);
  // Steps 1 and 2: the pieces the regex finds (UTF-8), before BPE.
  static std::vector<std::string> pre_tokenize(const std::string& text);

 private:
  CLIPTokenizer() = default;
  // BPE of one pre-token (raw UTF-8 bytes): its BPE strings; cached per word.
  std::vector<std::string> bpe(const std::string& word) const;
  int64_t id_of(const std::string& bpe_token) const;

  std::unordered_map<std::string, int64_t> vocab_;
  std::vector<std::string> id_to_token_;
  std::unordered_map<std::string, int32_t> merge_ranks_;  // key: "first second" (the merges.txt line)
  std::string byte_to_unicode_[256];                      // UTF-8 of the character that stands for a byte
  std::unordered_map<std::string, uint8_t> unicode_to_byte_;
  int64_t bos_id_ = 49406, eos_id_ = 49407, pad_id_ = 49407;

  // Words seen before → their BPE strings (the tokenizer is logically const; the cache is shared).
  struct Cache {
    std::mutex mutex;
    std::unordered_map<std::string, std::vector<std::string>> words;
  };
  std::shared_ptr<Cache> cache_ = std::make_shared<Cache>();
};

}  // namespace nd
