#pragma once
// Hugging Face's safetensors format: a u64 little-endian header length N, N bytes of JSON
// ({"name": {"dtype": "BF16", "shape": [..], "data_offsets": [begin, end]}, "__metadata__": {..}}),
// then the data region, every tensor's bytes at [begin, end) of it. The header is all there is to
// parse: the data region goes to a device in one piece and each tensor is a view into it, as raw
// model files do (raw_model.hpp).
//
// Files are hostile until checked: the parser refuses a header longer than the file or than
// kMaxSafetensorsHeaderBytes, unknown dtypes, shapes whose bytes differ from the offsets, ranges
// outside the data region or overlapping, and duplicate names, each with the file's name.

#include <cstdint>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "real_backend/model/raw_model.hpp"

namespace hearth::real {

inline constexpr std::uint64_t kMaxSafetensorsHeaderBytes = 100ull << 20;

struct SafetensorsTensor {
  std::string name;
  DType dtype = DType::f32;
  std::vector<std::int64_t> shape;
  std::uint64_t begin = 0;  // within the data region
  std::uint64_t end = 0;
};

struct SafetensorsHeader {
  std::uint64_t data_offset = 0;  // where the data region starts in the file: 8 + header length
  std::uint64_t data_bytes = 0;   // the data region's length: file size - data_offset
  std::vector<SafetensorsTensor> tensors;  // in file order (by begin)
  std::map<std::string, std::string> metadata;
  // The tensor named `name`, or null.
  const SafetensorsTensor* find(std::string_view name) const;
};

// Bytes of the file needed to parse its header (8 + N), from its first 8 bytes. Throws
// InputError naming `what` if N is absurd for a file of `file_size` bytes.
std::uint64_t safetensors_header_end(std::string_view first_8_bytes, std::uint64_t file_size,
                                     const std::string& what);
// The header, from the file's first safetensors_header_end() bytes or more. Throws InputError
// naming `what` and the fault.
SafetensorsHeader parse_safetensors(std::string_view bytes, std::uint64_t file_size,
                                    const std::string& what);
SafetensorsHeader read_safetensors_header(const std::filesystem::path& path);

// A tensor to write: `fill(out)` writes its element_bytes(dtype) * product(shape) bytes. It runs
// on another thread, while the tensor before it is written.
struct TensorToWrite {
  std::string name;
  DType dtype = DType::f32;
  std::vector<std::int64_t> shape;
  std::function<void(char* out)> fill;
};
// Writes a safetensors file (atomically: a temporary beside it, then renamed), tensors in the
// order given, the header padded with spaces to a multiple of 8 as Hugging Face writes it.
void write_safetensors(const std::filesystem::path& path, const std::vector<TensorToWrite>& tensors,
                       const std::map<std::string, std::string>& metadata = {});

}  // namespace hearth::real
