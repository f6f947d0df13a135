#pragma once
// The GPU type names that hearth's converters and generators write (traces/FORMAT.md, "GPU
// types"). A cluster description names its GPU types the same way; a trace ties to it by name.

#include <string>
#include <string_view>

namespace hearth::traces::gpu {

inline constexpr std::string_view kA100 = "A100-40GB";
inline constexpr std::string_view kV100 = "V100-32GB";
inline constexpr std::string_view kV100_16 = "V100-16GB";
inline constexpr std::string_view kA10 = "A10-24GB";
inline constexpr std::string_view kRtx6000 = "RTX6000-24GB";
inline constexpr std::string_view kT4 = "T4-16GB";
inline constexpr std::string_view kTitanX = "TITANX-12GB";
inline constexpr std::string_view kK80 = "K80-12GB";

// The GPU of the AWS instance family that a published file's name mentions: g4dn -> T4-16GB,
// p2 -> K80-12GB (one GPU per .xlarge), p3 -> V100-16GB, p3dn -> V100-32GB. Empty when the name
// mentions none of them.
std::string of_aws_file(std::string_view path);

}  // namespace hearth::traces::gpu
