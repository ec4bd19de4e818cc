// Writing outputs without ever leaving a half-written file: write to "<path>.tmp-<pid>", then rename.
#pragma once
#include <functional>
#include <string>

namespace nd {

// Calls write(tmp_path) and renames tmp_path onto `path` only if it returns without throwing;
// on failure the temporary file is removed and `path` keeps whatever it held before.
void write_atomically(const std::string& path, const std::function<void(const std::string& tmp_path)>& write);

// Writes `bytes` to `path` atomically.
void write_file_atomically(const std::string& path, const std::string& bytes);

// Reads a whole file; throws InputError naming the file when it cannot be read.
std::string read_file(const std::string& path);

}  // namespace nd
