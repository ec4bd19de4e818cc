// Comma-separated numbers of command-line options ("48,96,128", "0.2,0.2,0.6").
#pragma once
#include <string>
#include <vector>

namespace nd {

// "a,b,c" → {a, b, c}. InputError "<what>: expected comma-separated numbers (integers), got '<text>'" for an
// empty list or an item that is not wholly a number (an integer).
std::vector<double> parse_number_list(const std::string& text, const std::string& what);
std::vector<int> parse_int_list(const std::string& text, const std::string& what);

}  // namespace nd
