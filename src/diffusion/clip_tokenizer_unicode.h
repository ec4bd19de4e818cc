// Unicode data for the CLIP tokenizer (internal to clip_tokenizer.cpp and its tests): the character classes
// of the pre-token regex (\p{L}, \p{N}, \s), Python's str.lower(), and html.unescape's entity tables.
// The tables reproduce Python 3.11 (unicodedata 14.0.0) for lower() and whitespace, and the `regex` module
// (2026.5.9, Unicode 17) for \p{L} and \p{N}: what openai's SimpleTokenizer uses.
#pragma once
#include <cstdint>
#include <string>

namespace nd::clip_unicode {

enum Flag : uint8_t {
  kLetter = 1,          // general category L* (\p{L})
  kNumber = 2,          // general category N* (\p{N})
  kSpace = 4,           // Python str.isspace() (re's \s, str.strip())
  kCased = 8,           // Unicode "Cased": Lowercase or Uppercase or Lt
  kCaseIgnorable = 16,  // Unicode "Case_Ignorable" (Mn Me Cf Lm Sk, MidLetter, MidNumLet, Single_Quote)
};

// The Flag bits of a code point (0 for anything above U+10FFFF).
uint8_t flags(char32_t c);
inline bool is_letter(char32_t c) { return flags(c) & kLetter; }
inline bool is_number(char32_t c) { return flags(c) & kNumber; }
inline bool is_space(char32_t c) { return flags(c) & kSpace; }

// Simple (one-to-one) lowercase mapping of Python's str.lower(); the code point itself when it has none.
// The two context/multi-character cases (U+0130 → "i̇", final sigma) are handled by the caller.
char32_t simple_lower(char32_t c);

// A named character reference of html.unescape: the HTML 4 set (what Python's html.entities.name2codepoint
// lists, with HTML5's values), "apos", and every name HTML5 also accepts without the ';' (legacy).
struct NamedEntity {
  const char* name;  // without '&' and ';'
  char32_t code_point;
  bool legacy;  // also recognised without the trailing ';'
};
// The entity called exactly `name` (case-sensitive), or nullptr.
const NamedEntity* find_entity(const std::string& name);

// html.unescape's replacement for the numeric references &#128; .. &#159; (Windows-1252).
char32_t windows1252(uint32_t num);

}  // namespace nd::clip_unicode
