#include "core/number_list.h"

#include <sstream>

#include "core/error.h"

namespace nd {
namespace {

template <class T, class Parse>
std::vector<T> parse_list(const std::string& text, const std::string& what, const char* kind, Parse parse) {
  std::vector<T> out;
  std::stringstream in(text);
  std::string item;
  const std::string error = what + ": expected comma-separated " + kind + ", got '" + text + "'";
  while (std::getline(in, item, ',')) {
    size_t used = 0;
    try {
      out.push_back(parse(item, &used));
    } catch (const std::exception&) {
      throw InputError(error);
    }
    require(used == item.size(), error);
  }
  require(!out.empty(), error);
  return out;
}

}  // namespace

std::vector<double> parse_number_list(const std::string& text, const std::string& what) {
  return parse_list<double>(text, what, "numbers",
                            [](const std::string& s, size_t* used) { return std::stod(s, used); });
}

std::vector<int> parse_int_list(const std::string& text, const std::string& what) {
  return parse_list<int>(text, what, "integers",
                         [](const std::string& s, size_t* used) { return std::stoi(s, used); });
}

}  // namespace nd
