#include "apps/config_options.h"

#include "core/atomic_file.h"
#include "core/error.h"

namespace nd {

nlohmann::json config_file_with_flags(const std::string& file, const CLI::App& cmd, const FlagKeys& keys,
                                      const nlohmann::json& flags) {
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(read_file(file));
  } catch (const nlohmann::json::exception& e) {
    throw InputError(file + ": not valid JSON (" + e.what() + ")");
  }
  require(j.is_object(), file + ": expected a JSON object");
  for (const auto& [flag, path] : keys) {
    if (cmd.count(flag) == 0) continue;
    const nlohmann::json::json_pointer ptr(path);
    j[ptr] = flags.at(ptr);
  }
  return j;
}

}  // namespace nd
