#include "traces/gpu_types.hpp"

namespace hearth::traces::gpu {

std::string of_aws_file(std::string_view path) {
  const auto slash = path.find_last_of('/');
  const auto name = slash == std::string_view::npos ? path : path.substr(slash + 1);
  // Words of the name, split at '-', '_' and '.': "aws-spot-instances-p2-xlarge.csv" has "p2".
  std::string word;
  for (std::size_t i = 0; i <= name.size(); ++i) {
    const bool boundary = i == name.size() || name[i] == '-' || name[i] == '_' || name[i] == '.';
    if (!boundary) {
      word += name[i];
      continue;
    }
    if (word == "g4dn") return std::string(kT4);
    if (word == "p2") return std::string(kK80);
    if (word == "p3") return std::string(kV100_16);
    if (word == "p3dn") return std::string(kV100);
    word.clear();
  }
  return {};
}

}  // namespace hearth::traces::gpu
