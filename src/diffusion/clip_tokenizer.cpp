#include "diffusion/clip_tokenizer.h"

#include <algorithm>
#include <cctype>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>
#include <sstream>

#include "core/error.h"
#include "diffusion/clip_tokenizer_unicode.h"

namespace nd {
namespace {

namespace cu = clip_unicode;

const char* const kStartOfText = "<|startoftext|>";
const char* const kEndOfText = "<|endoftext|>";
// transformers reads merges.txt lines [1, 49152 - 256 - 2 + 1): the CLIP vocabulary's merges, no more.
constexpr size_t kMaxMerges = 49152 - 256 - 2;
// Bounds the per-word BPE cache (a long-running process tokenizing arbitrary text).
constexpr size_t kMaxCachedWords = 100000;

// ---------------------------------------------------------------------------------------------- UTF-8

std::u32string decode_utf8(const std::string& s) {
  std::u32string out;
  out.reserve(s.size());
  size_t i = 0;
  auto bad = [&]() { throw InputError("prompt: invalid UTF-8 at byte " + std::to_string(i)); };
  while (i < s.size()) {
    const auto b0 = static_cast<unsigned char>(s[i]);
    int len;
    char32_t c;
    if (b0 < 0x80) {
      len = 1, c = b0;
    } else if (b0 >= 0xC2 && b0 < 0xE0) {
      len = 2, c = b0 & 0x1F;
    } else if (b0 >= 0xE0 && b0 < 0xF0) {
      len = 3, c = b0 & 0x0F;
    } else if (b0 >= 0xF0 && b0 < 0xF5) {
      len = 4, c = b0 & 0x07;
    } else {
      bad();
    }
    if (i + len > s.size()) bad();
    for (int k = 1; k < len; ++k) {
      const auto b = static_cast<unsigned char>(s[i + k]);
      if ((b & 0xC0) != 0x80) bad();
      c = (c << 6) | (b & 0x3F);
    }
    // Overlong forms, surrogates and code points past U+10FFFF are not UTF-8.
    if ((len == 3 && c < 0x800) || (len == 4 && (c < 0x10000 || c > 0x10FFFF)) ||
        (c >= 0xD800 && c <= 0xDFFF))
      bad();
    out.push_back(c);
    i += len;
  }
  return out;
}

void append_utf8(std::string& out, char32_t c) {
  if (c < 0x80) {
    out += static_cast<char>(c);
  } else if (c < 0x800) {
    out += static_cast<char>(0xC0 | (c >> 6));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else if (c < 0x10000) {
    out += static_cast<char>(0xE0 | (c >> 12));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (c >> 18));
    out += static_cast<char>(0x80 | ((c >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((c >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (c & 0x3F));
  }
}

std::string encode_utf8(const std::u32string& s) {
  std::string out;
  out.reserve(s.size());
  for (char32_t c : s) append_utf8(out, c);
  return out;
}

// ------------------------------------------------------------------------------------ html.unescape

bool is_ascii_digit(char32_t c) { return c >= '0' && c <= '9'; }
bool is_ascii_hex(char32_t c) {
  return is_ascii_digit(c) || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}
int hex_value(char32_t c) { return is_ascii_digit(c) ? c - '0' : (c | 0x20) - 'a' + 10; }

// Python's html._replace_charref for a numeric reference (num saturated at 0x110000).
void append_numeric_charref(std::u32string& out, uint32_t num) {
  if (num == 0) return out.push_back(0xFFFD);
  if (num == 0x0D) return out.push_back(U'\r');
  if (num >= 0x80 && num < 0xA0) return out.push_back(cu::windows1252(num));
  if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) return out.push_back(0xFFFD);
  const bool invalid = (num >= 0x1 && num <= 0x8) || num == 0xB || (num >= 0xE && num <= 0x1F) ||
                       num == 0x7F || (num >= 0xFDD0 && num <= 0xFDEF) || (num & 0xFFFE) == 0xFFFE;
  if (!invalid) out.push_back(num);
}

// The entity whose name is s[begin, end) (ASCII only), or nullptr.
const cu::NamedEntity* entity_at(const std::u32string& s, size_t begin, size_t end) {
  std::string name;
  for (size_t k = begin; k < end; ++k) {
    if (s[k] >= 0x80) return nullptr;
    name += static_cast<char>(s[k]);
  }
  return cu::find_entity(name);
}

// Python's html.unescape: the regex  &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)  replaced by
// _replace_charref. Named references come from the table in clip_tokenizer_unicode.cpp (the HTML 4 set).
std::u32string html_unescape(const std::u32string& s) {
  std::u32string out;
  out.reserve(s.size());
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    if (s[i] != U'&') {
      out.push_back(s[i++]);
      continue;
    }
    const size_t j = i + 1;
    if (j < n && s[j] == U'#') {
      const bool hex = j + 1 < n && (s[j + 1] == U'x' || s[j + 1] == U'X');
      size_t k = hex ? j + 2 : j + 1;
      if (k >= n || !(hex ? is_ascii_hex(s[k]) : is_ascii_digit(s[k]))) {
        out.push_back(s[i++]);  // "&#" without digits: left as it is
        continue;
      }
      uint32_t num = 0;
      for (; k < n && (hex ? is_ascii_hex(s[k]) : is_ascii_digit(s[k])); ++k)
        num = std::min<uint32_t>(0x110000, num * (hex ? 16 : 10) + (hex ? hex_value(s[k]) : s[k] - U'0'));
      if (k < n && s[k] == U';') ++k;
      append_numeric_charref(out, num);
      i = k;
      continue;
    }
    auto in_name = [](char32_t c) {
      return c != U'\t' && c != U'\n' && c != U'\f' && c != U' ' && c != U'<' && c != U'&' && c != U'#' &&
             c != U';';
    };
    size_t m = j;
    while (m < n && m - j < 32 && in_name(s[m])) ++m;
    if (m == j) {
      out.push_back(s[i++]);
      continue;
    }
    const bool semicolon = m < n && s[m] == U';';
    const size_t end = semicolon ? m + 1 : m;  // the match: s[j, end)
    const cu::NamedEntity* e = entity_at(s, j, m);
    if (e && (semicolon || e->legacy)) {
      out.push_back(e->code_point);
      i = end;
      continue;
    }
    // The longest prefix (>= 2 characters) that is an entity allowed without ';' (html5 dict semantics).
    bool replaced = false;
    for (size_t x = end - j - 1; x >= 2 && !replaced; --x) {
      const cu::NamedEntity* p = entity_at(s, j, j + x);
      if (p && p->legacy) {
        out.push_back(p->code_point);
        out.append(s, j + x, end - (j + x));
        replaced = true;
      }
    }
    if (!replaced) out.append(s, i, end - i);
    i = end;
  }
  return out;
}

// ------------------------------------------------------------------------------------- normalisation

std::u32string strip_and_collapse(const std::u32string& s) {
  std::u32string out;
  out.reserve(s.size());
  bool pending_space = false;
  for (char32_t c : s) {
    if (cu::is_space(c)) {
      pending_space = !out.empty();
    } else {
      if (pending_space) out.push_back(U' ');
      pending_space = false;
      out.push_back(c);
    }
  }
  return out;
}

// Python's str.lower(): the simple mapping, plus U+0130 → "i̇" and the final-sigma rule of CPython's
// handle_capital_sigma: Σ becomes ς after a cased letter (case-ignorables skipped) unless a cased letter
// follows (case-ignorables skipped).
std::u32string python_lower(const std::u32string& s) {
  std::u32string out;
  out.reserve(s.size());
  const size_t n = s.size();
  for (size_t i = 0; i < n; ++i) {
    const char32_t c = s[i];
    if (c == 0x130) {
      out += U"i\u0307";
    } else if (c == 0x3A3) {
      size_t j = i;
      while (j > 0 && (cu::flags(s[j - 1]) & cu::kCaseIgnorable)) --j;
      bool final_sigma = j > 0 && (cu::flags(s[j - 1]) & cu::kCased);
      if (final_sigma) {
        size_t k = i + 1;
        while (k < n && (cu::flags(s[k]) & cu::kCaseIgnorable)) ++k;
        final_sigma = k == n || !(cu::flags(s[k]) & cu::kCased);
      }
      out.push_back(final_sigma ? 0x3C2 : 0x3C3);
    } else {
      out.push_back(cu::simple_lower(c));
    }
  }
  return out;
}

std::u32string normalize_u32(const std::string& text) {
  std::u32string s = decode_utf8(text);
  s = html_unescape(html_unescape(s));
  return python_lower(strip_and_collapse(s));
}

// ------------------------------------------------------------------------------------ pre-tokenizing

// The regex is case-insensitive; after lower() only U+017F (ſ, simple case fold 's') still needs it.
bool eq_ignore_case(char32_t c, char32_t lower_ascii) {
  return cu::simple_lower(c) == lower_ascii || (lower_ascii == U's' && c == 0x17F);
}

// Length of `lit` (lowercase ASCII) matched case-insensitively at s[i], or 0.
size_t match_literal(const std::u32string& s, size_t i, const char* lit) {
  size_t k = 0;
  for (; lit[k]; ++k)
    if (i + k >= s.size() || !eq_ignore_case(s[i + k], static_cast<unsigned char>(lit[k]))) return 0;
  return k;
}

// re.findall of the CLIP pattern: at each position the first alternative that matches wins; whitespace
// matches nothing and is skipped.
std::vector<std::u32string> split_pieces(const std::u32string& s) {
  static const char* const kAlternatives[] = {kStartOfText, kEndOfText, "'s",  "'t", "'re",
                                              "'ve",        "'m",       "'ll", "'d"};
  std::vector<std::u32string> pieces;
  const size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    size_t len = 0;
    for (const char* lit : kAlternatives)
      if ((len = match_literal(s, i, lit)) > 0) break;
    if (len == 0) {
      const uint8_t f = cu::flags(s[i]);
      if (f & cu::kLetter) {
        while (i + len < n && cu::is_letter(s[i + len])) ++len;
      } else if (f & cu::kNumber) {
        len = 1;
      } else if (!(f & cu::kSpace)) {
        while (i + len < n && !(cu::flags(s[i + len]) & (cu::kLetter | cu::kNumber | cu::kSpace))) ++len;
      }
    }
    if (len == 0) {
      ++i;
      continue;
    }
    pieces.emplace_back(s, i, len);
    i += len;
  }
  return pieces;
}

// ----------------------------------------------------------------------------------------- loading

std::string read_file(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) throw InputError(path + ": cannot open file");
  std::ostringstream ss;
  ss << f.rdbuf();
  if (f.bad()) throw InputError(path + ": read error");
  return ss.str();
}

nlohmann::json read_json(const std::string& path) {
  const std::string text = read_file(path);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    throw InputError(path + ": not valid JSON (" + e.what() + ")");
  }
}

bool file_exists(const std::string& path) { return std::ifstream(path).good(); }

// A special token entry of tokenizer_config.json / special_tokens_map.json: "str" or {"content": "str"}.
bool special_token_string(const nlohmann::json& j, const char* key, const std::string& path,
                          std::string& out) {
  auto it = j.find(key);
  if (it == j.end() || it->is_null()) return false;
  if (it->is_string()) {
    out = it->get<std::string>();
    return true;
  }
  if (it->is_object() && it->contains("content") && (*it)["content"].is_string()) {
    out = (*it)["content"].get<std::string>();
    return true;
  }
  throw InputError(path + ": " + key + ": expected a string or {\"content\": string}");
}

}  // namespace

CLIPTokenizer CLIPTokenizer::load(const std::string& vocab_json, const std::string& merges_txt) {
  CLIPTokenizer t;

  // The byte-to-unicode table of openai's bytes_to_unicode(): printable Latin-1 bytes stand for themselves,
  // the other 68 bytes map to U+0100, U+0101, ... in byte order.
  int next = 0;
  for (int b = 0; b < 256; ++b) {
    const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
    std::string u;
    append_utf8(u, printable ? static_cast<char32_t>(b) : static_cast<char32_t>(256 + next++));
    t.byte_to_unicode_[b] = u;
    t.unicode_to_byte_[u] = static_cast<uint8_t>(b);
  }

  const nlohmann::json vocab = read_json(vocab_json);
  if (!vocab.is_object() || vocab.empty())
    throw InputError(vocab_json + ": expected a JSON object {\"token\": id, ...}");
  int64_t max_id = -1;
  for (auto it = vocab.begin(); it != vocab.end(); ++it) {
    if (!it->is_number_integer() || it->get<int64_t>() < 0 || it->get<int64_t>() >= (1 << 24))
      throw InputError(vocab_json + ": token '" + it.key() + "': expected an id in [0, 2^24), got " +
                       it->dump());
    t.vocab_[it.key()] = it->get<int64_t>();
    max_id = std::max(max_id, it->get<int64_t>());
  }
  t.id_to_token_.assign(max_id + 1, std::string());
  for (const auto& [token, id] : t.vocab_) t.id_to_token_[id] = token;
  for (const char* special : {kStartOfText, kEndOfText})
    if (!t.vocab_.count(special)) throw InputError(vocab_json + ": no entry for " + special);
  t.bos_id_ = t.vocab_.at(kStartOfText);
  t.eos_id_ = t.pad_id_ = t.vocab_.at(kEndOfText);

  std::string merges = read_file(merges_txt);
  while (!merges.empty() && std::isspace(static_cast<unsigned char>(merges.back()))) merges.pop_back();
  std::istringstream lines(merges);
  std::string line;
  size_t line_no = 0;
  while (std::getline(lines, line) && t.merge_ranks_.size() < kMaxMerges) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line_no == 1 && line.rfind('#', 0) == 0) continue;  // "#version: 0.2"
    const size_t space = line.find(' ');
    if (space == std::string::npos || space == 0 || space + 1 == line.size() ||
        line.find(' ', space + 1) != std::string::npos)
      throw InputError(merges_txt + ":" + std::to_string(line_no) + ": expected a merge 'A B', got '" + line +
                       "'");
    t.merge_ranks_.emplace(line, static_cast<int32_t>(t.merge_ranks_.size()));
  }
  if (t.merge_ranks_.empty()) throw InputError(merges_txt + ": no merges");
  return t;
}

CLIPTokenizer CLIPTokenizer::load_folder(const std::string& dir) {
  CLIPTokenizer t = load(dir + "/vocab.json", dir + "/merges.txt");
  // transformers: tokenizer_config.json first, special_tokens_map.json overrides it.
  std::string bos = kStartOfText, eos = kEndOfText, pad;
  std::string pad_source;
  for (const std::string name : {"tokenizer_config.json", "special_tokens_map.json"}) {
    const std::string path = dir + "/" + name;
    if (!file_exists(path)) continue;
    const nlohmann::json j = read_json(path);
    if (!j.is_object()) throw InputError(path + ": expected a JSON object");
    special_token_string(j, "bos_token", path, bos);
    special_token_string(j, "eos_token", path, eos);
    if (special_token_string(j, "pad_token", path, pad)) pad_source = path;
  }
  auto id = [&](const std::string& token, const std::string& what, const std::string& source) {
    auto it = t.vocab_.find(token);
    if (it == t.vocab_.end())
      throw InputError(source + ": " + what + " '" + token + "' is not in " + dir + "/vocab.json");
    return it->second;
  };
  t.bos_id_ = id(bos, "bos_token", dir);
  t.eos_id_ = id(eos, "eos_token", dir);
  t.pad_id_ = pad.empty() ? t.eos_id_ : id(pad, "pad_token", pad_source);
  return t;
}

std::string CLIPTokenizer::normalize(const std::string& text) { return encode_utf8(normalize_u32(text)); }

std::vector<std::string> CLIPTokenizer::pre_tokenize(const std::string& text) {
  std::vector<std::string> out;
  for (const std::u32string& piece : split_pieces(normalize_u32(text))) out.push_back(encode_utf8(piece));
  return out;
}

std::vector<std::string> CLIPTokenizer::bpe(const std::string& word) const {
  if (word == kStartOfText || word == kEndOfText) return {word};
  {
    std::lock_guard<std::mutex> lock(cache_->mutex);
    auto it = cache_->words.find(word);
    if (it != cache_->words.end()) return it->second;
  }
  // One symbol per byte (its byte-to-unicode character); the last one carries the end-of-word mark.
  std::vector<std::string> symbols;
  symbols.reserve(word.size());
  for (unsigned char b : word) symbols.push_back(byte_to_unicode_[b]);
  if (symbols.empty()) return {};
  symbols.back() += "</w>";

  // Repeatedly merge every occurrence (left to right) of the adjacent pair with the lowest rank.
  std::string key;
  while (symbols.size() > 1) {
    int32_t best_rank = std::numeric_limits<int32_t>::max();
    size_t best = 0;
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      key.assign(symbols[i]).append(" ").append(symbols[i + 1]);
      auto it = merge_ranks_.find(key);
      if (it != merge_ranks_.end() && it->second < best_rank) best_rank = it->second, best = i;
    }
    if (best_rank == std::numeric_limits<int32_t>::max()) break;
    const std::string first = symbols[best], second = symbols[best + 1];
    std::vector<std::string> merged;
    merged.reserve(symbols.size());
    for (size_t i = 0; i < symbols.size();) {
      if (i + 1 < symbols.size() && symbols[i] == first && symbols[i + 1] == second) {
        merged.push_back(first + second);
        i += 2;
      } else {
        merged.push_back(std::move(symbols[i]));
        i += 1;
      }
    }
    symbols = std::move(merged);
  }

  std::lock_guard<std::mutex> lock(cache_->mutex);
  if (cache_->words.size() >= kMaxCachedWords) cache_->words.clear();
  cache_->words.emplace(word, symbols);
  return symbols;
}

int64_t CLIPTokenizer::id_of(const std::string& bpe_token) const {
  auto it = vocab_.find(bpe_token);
  return it == vocab_.end() ? eos_id_ : it->second;  // transformers' unk token is <|endoftext|>
}

std::vector<std::string> CLIPTokenizer::bpe_tokens(const std::string& text) const {
  std::vector<std::string> out;
  for (const std::string& piece : pre_tokenize(text))
    for (std::string& s : bpe(piece)) out.push_back(std::move(s));
  return out;
}

std::vector<int64_t> CLIPTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  for (const std::string& s : bpe_tokens(text)) ids.push_back(id_of(s));
  return ids;
}

CLIPTokenizer::Encoded CLIPTokenizer::encode_padded(const std::string& text, int max_length,
                                                    int64_t pad_id) const {
  if (max_length < 2)
    throw InputError("max_length: must be >= 2 (bos and eos), got " + std::to_string(max_length));
  const std::vector<int64_t> content = encode(text);
  const size_t keep = std::min(content.size(), static_cast<size_t>(max_length - 2));
  Encoded e;
  e.truncated = content.size() + 2 > static_cast<size_t>(max_length);
  e.ids.reserve(max_length);
  e.ids.push_back(bos_id_);
  e.ids.insert(e.ids.end(), content.begin(), content.begin() + keep);
  e.ids.push_back(eos_id_);
  e.ids.resize(max_length, pad_id < 0 ? pad_id_ : pad_id);
  return e;
}

at::Tensor CLIPTokenizer::encode_batch(const std::vector<std::string>& texts, int max_length,
                                       std::vector<bool>* truncated) const {
  at::Tensor ids = at::empty({static_cast<int64_t>(texts.size()), max_length}, at::kLong);
  if (truncated) truncated->assign(texts.size(), false);
  for (size_t b = 0; b < texts.size(); ++b) {
    const Encoded e = encode_padded(texts[b], max_length);
    std::copy(e.ids.begin(), e.ids.end(), ids.data_ptr<int64_t>() + b * max_length);
    if (truncated) (*truncated)[b] = e.truncated;
  }
  return ids;
}

const std::string& CLIPTokenizer::token(int64_t id) const {
  if (id < 0 || id >= vocab_size()) throw InputError("token id " + std::to_string(id) + ": out of range");
  return id_to_token_[id];
}

std::string CLIPTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string symbols;
  for (int64_t id : ids) {
    if (id == eos_id_) break;  // what follows is padding
    if (id != bos_id_) symbols += token(id);
  }
  std::string bytes;
  const std::u32string chars = decode_utf8(symbols);
  for (size_t i = 0; i < chars.size(); ++i) {
    if (chars.compare(i, 4, U"</w>") == 0) {
      bytes += ' ';
      i += 3;
      continue;
    }
    std::string u;
    append_utf8(u, chars[i]);
    auto it = unicode_to_byte_.find(u);
    if (it != unicode_to_byte_.end()) bytes += static_cast<char>(it->second);
  }
  while (!bytes.empty() && bytes.back() == ' ') bytes.pop_back();
  return bytes;
}

}  // namespace nd
