#pragma once
// A model file laid out to reach a GPU in one piece: a header, then every tensor's bytes at an
// aligned offset of one contiguous data region. The runtime copies the region into one device
// buffer (with the fast loader, real_backend/model/fast_loader.hpp, where there is a GPU) and makes
// each tensor a view into it, so that no tensor is copied twice and nothing is parsed on the way.
// `hearth model builtin --format raw` writes the built-in model this way.
//
// Layout: the magic "HEARTHM1", the header's length in bytes (u64, little-endian), the header,
// zeros up to data_offset (a multiple of 4096), then the data region to the end of the file.
// The header is text:
//   data_offset N
//   data_bytes N
//   tensor NAME DTYPE OFFSET BYTES BUFFER D0,D1,...   one per tensor, OFFSET within the region
//   source N                                           then N bytes: the TorchScript methods
// DTYPE is f32 or bf16 (f16 is refused: the built-in model never needs it); BUFFER is 1 for a
// constant, 0 for a parameter.

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "real_backend/model/builtin_model.hpp"

namespace hearth::real {

enum class DType { f32, bf16, f16 };
std::string_view to_string(DType d);  // "f32", "bf16", "f16"
std::size_t element_bytes(DType d);
// Throws InputError for anything but "f32", "bf16" or "f16".
DType parse_dtype(std::string_view text);

struct RawTensor {
  std::string name;
  DType dtype = DType::f32;
  std::uint64_t offset = 0;  // from the data region's start; a multiple of kRawTensorAlignment
  std::uint64_t bytes = 0;
  bool buffer = false;
  std::vector<std::int64_t> shape;
};

struct RawModelLayout {
  std::uint64_t data_offset = 0;
  std::uint64_t data_bytes = 0;
  std::vector<RawTensor> tensors;
  std::string source;
};

inline constexpr std::string_view kRawModelMagic = "HEARTHM1";
inline constexpr std::uint64_t kRawDataAlignment = 4096;  // the region's start: O_DIRECT reads
inline constexpr std::uint64_t kRawTensorAlignment = 256;

bool is_raw_model(std::string_view first_bytes);
// Bytes of the file needed to parse its layout (magic, length and header), from its first 16.
std::uint64_t raw_model_header_end(std::string_view first_16_bytes);
// The layout, from the file's first raw_model_header_end() bytes or more. `file_size` is the
// whole file's. Throws InputError naming `what` (the file) and the fault.
RawModelLayout parse_raw_model(std::string_view bytes, std::uint64_t file_size,
                               const std::string& what);
RawModelLayout read_raw_model_layout(const std::filesystem::path& path);
// Everything before the data region (magic, length, header, padding): data_offset bytes.
std::string raw_model_prefix(const RawModelLayout& layout);

// Lays out the built-in model's tensors in `dtype`.
RawModelLayout layout_builtin_model(const BuiltinModelPlan& plan, DType dtype);

struct RawWriteStats {
  std::uint64_t file_bytes = 0;
  std::int64_t parameters = 0;
  double seconds = 0;
};
// Writes the built-in model as a raw model file, `threads` threads making and writing disjoint
// parts of the data region at once; memory use is a few blocks per thread, whatever the model's
// size. Values are those of make_builtin_model(options), rounded to bf16 (to nearest, ties to
// even) if asked. Throws InputError for bad options, std::runtime_error if the file cannot be
// written.
RawWriteStats write_builtin_raw_model(const BuiltinModelOptions& options, DType dtype,
                                      const std::filesystem::path& path, int threads);

// float to bfloat16 bits, rounding to nearest with ties to even (NaN stays a quiet NaN).
std::uint16_t to_bf16(float value);
// float to IEEE half bits, rounding to nearest with ties to even: overflow gives infinity, tiny
// values become subnormals or zero, NaN stays a quiet NaN.
std::uint16_t to_f16(float value);
// The exact float of bfloat16 or half bits.
float from_bf16(std::uint16_t bits);
float from_f16(std::uint16_t bits);

}  // namespace hearth::real
