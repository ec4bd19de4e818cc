// Strict JSON configs: every section is a struct with defaults; reading rejects unknown keys and wrong
// types with one line that names the key path ("field.grid.levels: expected an integer").
#pragma once
#include <memory>
#include <nlohmann/json.hpp>
#include <set>
#include <string>

#include "core/error.h"

namespace nd {

class ConfigReader {
 public:
  // path: the dotted name of this section, for messages ("" at the top level).
  ConfigReader(const nlohmann::json& j, std::string path) : j_(j), path_(std::move(path)) {
    require(j_.is_object(), name("") + ": expected a JSON object");
  }
  // Reads j[key] into value when present; leaves the default otherwise.
  template <class T>
  void get(const char* key, T& value) {
    used_.insert(key);
    auto it = j_.find(key);
    if (it == j_.end()) return;
    try {
      value = it->template get<T>();
    } catch (const nlohmann::json::exception&) {
      throw InputError(name(key) + ": expected " + type_name(value) + ", got " + it->dump());
    }
  }
  // The sub-object j[key], or an empty object when absent.
  ConfigReader section(const char* key) {
    used_.insert(key);
    auto it = j_.find(key);
    static const nlohmann::json kEmpty = nlohmann::json::object();
    return ConfigReader(it == j_.end() ? kEmpty : *it, name(key));
  }
  // Throws InputError naming the first key that no get()/section() asked for.
  void finish() const {
    for (auto it = j_.begin(); it != j_.end(); ++it)
      require(used_.count(it.key()) > 0, name(it.key()) + ": unknown key");
  }

 private:
  std::string name(const std::string& key) const {
    if (path_.empty()) return key.empty() ? "config" : key;
    return key.empty() ? path_ : path_ + "." + key;
  }
  template <class T>
  static const char* type_name(const T&) {
    if constexpr (std::is_same_v<T, bool>) return "true or false";
    if constexpr (std::is_integral_v<T>) return "an integer";
    if constexpr (std::is_floating_point_v<T>) return "a number";
    if constexpr (std::is_same_v<T, std::string>) return "a string";
    return "a value of another type";
  }
  const nlohmann::json& j_;
  std::string path_;
  std::set<std::string> used_;
};

// Reads "format_version" and refuses any but the one this build reads.
inline void read_format_version(ConfigReader& r, int& version, int supported) {
  r.get("format_version", version);
  require(version == supported, "format_version: " + std::to_string(version) +
                                    " is not supported (this build reads " + std::to_string(supported) + ")");
}

// The writing twin of ConfigReader, with the same calls, so that one function template can list a config's
// keys once and serve both directions:
//   template <class IO> void visit(IO& io, MyConfig& c) { io.get("steps", c.steps); auto s = io.section("x");
//   ... } ConfigWriter w; visit(w, config); json = w.json();      ConfigReader r(json, ""); visit(r, config);
class ConfigWriter {
 public:
  ConfigWriter() : j_(std::make_shared<nlohmann::json>(nlohmann::json::object())), node_(j_.get()) {}
  template <class T>
  void get(const char* key, const T& value) {
    (*node_)[key] = value;
  }
  ConfigWriter section(const char* key) {
    (*node_)[key] = nlohmann::json::object();
    return ConfigWriter(j_, &(*node_)[key]);
  }
  void finish() const {}
  const nlohmann::json& json() const { return *j_; }

 private:
  ConfigWriter(std::shared_ptr<nlohmann::json> root, nlohmann::json* node)
      : j_(std::move(root)), node_(node) {}
  std::shared_ptr<nlohmann::json> j_;
  nlohmann::json* node_;
};

}  // namespace nd
