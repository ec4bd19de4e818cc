// `--config FILE.json` with flags on top, for the commands whose whole run is one JSON config (fit,
// generate): each flag names the config key it sets, and the flags given on the command line replace the
// file's values before the config is read (and validated) once.
#pragma once
#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

namespace nd {

using FlagKeys = std::vector<std::pair<std::string, std::string>>;  // flag → JSON pointer, e.g. /optim/steps

// The file's JSON (InputError naming it when it is not valid JSON) with the value of every flag in `keys`
// that cmd saw copied from `flags` (the config as the flags left it, in JSON).
nlohmann::json config_file_with_flags(const std::string& file, const CLI::App& cmd, const FlagKeys& keys,
                                      const nlohmann::json& flags);

}  // namespace nd
