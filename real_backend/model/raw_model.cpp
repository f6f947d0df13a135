#include "real_backend/model/raw_model.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "os/fd.hpp"
#include "policy/errors.hpp"

namespace hearth::real {

namespace {

std::uint64_t align_up(std::uint64_t n, std::uint64_t a) {
  return (n + a - 1) / a * a;
}

std::uint64_t parse_u64(std::string_view text, const std::string& where) {
  std::uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size()) {
    throw InputError(fmt::format("{}: '{}' is not a non-negative integer", where, text));
  }
  return v;
}

std::vector<std::string_view> words(std::string_view line) {
  std::vector<std::string_view> out;
  std::size_t i = 0;
  while (i < line.size()) {
    std::size_t j = line.find(' ', i);
    if (j == std::string_view::npos) j = line.size();
    if (j > i) out.push_back(line.substr(i, j - i));
    i = j + 1;
  }
  return out;
}

void write_all(int fd, const char* data, std::size_t n, std::uint64_t offset,
               const std::string& path) {
  while (n > 0) {
    ssize_t w = ::pwrite(fd, data, n, static_cast<off_t>(offset));
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0)
      throw std::runtime_error(fmt::format("{}: cannot write: {}", path, strerror(errno)));
    data += w;
    n -= static_cast<std::size_t>(w);
    offset += static_cast<std::uint64_t>(w);
  }
}

}  // namespace

std::string_view to_string(DType d) {
  switch (d) {
    case DType::f32:
      return "f32";
    case DType::bf16:
      return "bf16";
    case DType::f16:
      return "f16";
  }
  return "?";
}

std::size_t element_bytes(DType d) {
  return d == DType::f32 ? 4 : 2;
}

DType parse_dtype(std::string_view text) {
  if (text == "f32") return DType::f32;
  if (text == "bf16") return DType::bf16;
  if (text == "f16") return DType::f16;
  throw InputError(fmt::format("unknown dtype '{}' (f32, bf16 or f16)", text));
}

std::uint16_t to_bf16(float value) {
  std::uint32_t u = 0;
  std::memcpy(&u, &value, sizeof u);
  if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<std::uint16_t>((u >> 16) | 0x40);
  u += 0x7fffu + ((u >> 16) & 1u);
  return static_cast<std::uint16_t>(u >> 16);
}

std::uint16_t to_f16(float value) {
  std::uint32_t u = 0;
  std::memcpy(&u, &value, sizeof u);
  const std::uint32_t sign = (u >> 16) & 0x8000u;
  const std::uint32_t magnitude = u & 0x7fffffffu;
  if (magnitude > 0x7f800000u) return static_cast<std::uint16_t>(sign | 0x7e00u);   // NaN
  if (magnitude >= 0x47800000u) return static_cast<std::uint16_t>(sign | 0x7c00u);  // >= 65536
  const int exponent = static_cast<int>(magnitude >> 23) - 127;
  std::uint32_t mantissa = (magnitude & 0x7fffffu) | 0x800000u;  // 24 bits, the leading 1 explicit
  // Normal halves keep 11 significant bits; below 2^-14 the last representable bit is 2^-24.
  int shift = exponent >= -14 ? 13 : 13 + (-14 - exponent);
  if (magnitude == 0 || shift > 24) return static_cast<std::uint16_t>(sign);
  std::uint32_t kept = mantissa >> shift;
  const std::uint32_t rest = mantissa & ((1u << shift) - 1);
  const std::uint32_t half = 1u << (shift - 1);
  if (rest > half || (rest == half && (kept & 1u))) ++kept;
  // kept holds the significand with its leading bit at 2^10 for normals: adding the biased
  // exponent above it carries a rounding overflow into the exponent, up to infinity.
  std::uint32_t bits =
      exponent >= -14 ? ((static_cast<std::uint32_t>(exponent + 14) << 10) + kept) : kept;
  return static_cast<std::uint16_t>(sign | bits);
}

float from_bf16(std::uint16_t bits) {
  std::uint32_t u = static_cast<std::uint32_t>(bits) << 16;
  float f = 0;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

float from_f16(std::uint16_t bits) {
  const std::uint32_t sign = static_cast<std::uint32_t>(bits & 0x8000u) << 16;
  const std::uint32_t exponent = (bits >> 10) & 0x1fu;
  const std::uint32_t mantissa = bits & 0x3ffu;
  float magnitude = 0;
  if (exponent == 0) {
    magnitude = std::ldexp(static_cast<float>(mantissa), -24);
  } else if (exponent == 31) {
    magnitude =
        mantissa ? std::numeric_limits<float>::quiet_NaN() : std::numeric_limits<float>::infinity();
  } else {
    magnitude = std::ldexp(static_cast<float>(mantissa | 0x400u), static_cast<int>(exponent) - 25);
  }
  std::uint32_t u = 0;
  std::memcpy(&u, &magnitude, sizeof u);
  u |= sign;
  float f = 0;
  std::memcpy(&f, &u, sizeof f);
  return f;
}

bool is_raw_model(std::string_view first_bytes) {
  return first_bytes.substr(0, kRawModelMagic.size()) == kRawModelMagic;
}

std::uint64_t raw_model_header_end(std::string_view first) {
  if (first.size() < 16 || !is_raw_model(first)) return 0;
  std::uint64_t length = 0;
  for (int i = 7; i >= 0; --i)
    length = (length << 8) | static_cast<unsigned char>(first[8 + static_cast<std::size_t>(i)]);
  return 16 + length;
}

RawModelLayout parse_raw_model(std::string_view bytes, std::uint64_t file_size,
                               const std::string& what) {
  if (!is_raw_model(bytes)) throw InputError(what + ": not a raw model file");
  std::uint64_t end = raw_model_header_end(bytes);
  if (end == 0 || end > bytes.size() || end > file_size) {
    throw InputError(what + ": the header is cut short");
  }
  std::string_view header = bytes.substr(16, end - 16);
  RawModelLayout layout;
  bool have_offset = false, have_bytes = false, have_source = false;
  int line_number = 0;
  while (!header.empty()) {
    ++line_number;
    std::size_t nl = header.find('\n');
    std::string_view line = header.substr(0, nl);
    header = nl == std::string_view::npos ? std::string_view() : header.substr(nl + 1);
    std::string where = fmt::format("{}: header line {}", what, line_number);
    std::vector<std::string_view> w = words(line);
    if (w.empty()) continue;
    if (w[0] == "data_offset" && w.size() == 2) {
      layout.data_offset = parse_u64(w[1], where);
      have_offset = true;
    } else if (w[0] == "data_bytes" && w.size() == 2) {
      layout.data_bytes = parse_u64(w[1], where);
      have_bytes = true;
    } else if (w[0] == "tensor" && w.size() == 7) {
      RawTensor t;
      t.name = std::string(w[1]);
      t.dtype = parse_dtype(w[2]);
      if (t.dtype == DType::f16) throw InputError(where + ": f16 tensors are not supported here");
      t.offset = parse_u64(w[3], where);
      t.bytes = parse_u64(w[4], where);
      t.buffer = parse_u64(w[5], where) != 0;
      std::uint64_t elements = 1;
      std::string_view dims = w[6];
      while (!dims.empty()) {
        std::size_t comma = dims.find(',');
        std::uint64_t d = parse_u64(dims.substr(0, comma), where);
        t.shape.push_back(static_cast<std::int64_t>(d));
        elements *= d;
        dims = comma == std::string_view::npos ? std::string_view() : dims.substr(comma + 1);
      }
      if (t.shape.empty()) throw InputError(where + ": a tensor needs a shape");
      if (elements * element_bytes(t.dtype) != t.bytes) {
        throw InputError(fmt::format("{}: tensor {} has {} bytes, its shape needs {}", where,
                                     t.name, t.bytes, elements * element_bytes(t.dtype)));
      }
      if (t.offset % kRawTensorAlignment != 0) {
        throw InputError(fmt::format("{}: tensor {} is not aligned", where, t.name));
      }
      layout.tensors.push_back(std::move(t));
    } else if (w[0] == "source" && w.size() == 2) {
      std::uint64_t n = parse_u64(w[1], where);
      if (n > header.size()) throw InputError(where + ": the source is cut short");
      layout.source = std::string(header.substr(0, n));
      header = header.substr(n);
      have_source = true;
    } else {
      throw InputError(fmt::format("{}: cannot read '{}'", where, line));
    }
  }
  if (!have_offset || !have_bytes || !have_source) {
    throw InputError(what + ": the header lacks data_offset, data_bytes or source");
  }
  if (layout.data_offset < end || layout.data_offset % kRawDataAlignment != 0 ||
      layout.data_offset + layout.data_bytes != file_size) {
    throw InputError(
        fmt::format("{}: the data region ({} bytes at {}) does not fit the file ({} bytes)", what,
                    layout.data_bytes, layout.data_offset, file_size));
  }
  for (const RawTensor& t : layout.tensors) {
    if (t.offset + t.bytes > layout.data_bytes) {
      throw InputError(fmt::format("{}: tensor {} ends past the data region", what, t.name));
    }
  }
  return layout;
}

RawModelLayout read_raw_model_layout(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError(path.string() + ": cannot open");
  std::string first(16, '\0');
  in.read(first.data(), 16);
  std::uint64_t end = raw_model_header_end(first);
  if (end == 0) throw InputError(path.string() + ": not a raw model file");
  std::string bytes(end, '\0');
  in.seekg(0);
  in.read(bytes.data(), static_cast<std::streamsize>(end));
  if (!in) throw InputError(path.string() + ": the header is cut short");
  return parse_raw_model(bytes, std::filesystem::file_size(path), path.string());
}

namespace {

std::string header_text(const RawModelLayout& layout) {
  std::string header =
      fmt::format("data_offset {}\ndata_bytes {}\n", layout.data_offset, layout.data_bytes);
  for (const RawTensor& t : layout.tensors) {
    header += fmt::format("tensor {} {} {} {} {} {}\n", t.name, to_string(t.dtype), t.offset,
                          t.bytes, t.buffer ? 1 : 0, fmt::join(t.shape, ","));
  }
  header += fmt::format("source {}\n", layout.source.size());
  header += layout.source;
  return header;
}

}  // namespace

std::string raw_model_prefix(const RawModelLayout& layout) {
  std::string header = header_text(layout);
  std::string out(kRawModelMagic);
  std::uint64_t length = header.size();
  for (int i = 0; i < 8; ++i)
    out += static_cast<char>((length >> (8 * i)) & 0xff);
  out += header;
  if (out.size() > layout.data_offset) {
    throw std::logic_error("raw model header longer than its data offset");
  }
  out.resize(layout.data_offset, '\0');
  return out;
}

RawModelLayout layout_builtin_model(const BuiltinModelPlan& plan, DType dtype) {
  if (dtype == DType::f16) throw InputError("raw model files hold f32 or bf16, not f16");
  RawModelLayout layout;
  layout.source = plan.source;
  std::uint64_t offset = 0;
  for (const BuiltinTensorSpec& spec : plan.tensors) {
    RawTensor t;
    t.name = spec.name;
    t.dtype = dtype;
    t.offset = offset;
    t.bytes = static_cast<std::uint64_t>(spec.elements()) * element_bytes(dtype);
    t.buffer = spec.buffer;
    t.shape = spec.shape;
    offset = align_up(offset + t.bytes, kRawTensorAlignment);
    layout.tensors.push_back(std::move(t));
  }
  layout.data_bytes = offset;
  // The header's length depends on data_offset's digits: make room for the most there can be.
  layout.data_offset = std::numeric_limits<std::uint64_t>::max();
  layout.data_offset = align_up(16 + header_text(layout).size(), kRawDataAlignment);
  return layout;
}

RawWriteStats write_builtin_raw_model(const BuiltinModelOptions& options, DType dtype,
                                      const std::filesystem::path& path, int threads) {
  auto start = std::chrono::steady_clock::now();
  BuiltinModelPlan plan = plan_builtin_model(options);
  RawModelLayout layout = layout_builtin_model(plan, dtype);
  os::Fd out(::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644));
  if (!out.is_open()) {
    throw std::runtime_error(fmt::format("{}: cannot create: {}", path.string(), strerror(errno)));
  }
  const std::uint64_t file_bytes = layout.data_offset + layout.data_bytes;
  if (::ftruncate(out.get(), static_cast<off_t>(file_bytes)) != 0) {
    throw std::runtime_error(fmt::format("{}: cannot size: {}", path.string(), strerror(errno)));
  }
  std::string prefix = raw_model_prefix(layout);
  write_all(out.get(), prefix.data(), prefix.size(), 0, path.string());

  // Blocks of the data region, handed out in order; each thread makes a block's bytes (zeros
  // between tensors) and writes them at their place. At most 32 MiB, and a few per thread.
  const std::uint64_t kBlock = std::clamp<std::uint64_t>(
      align_up(layout.data_bytes / (4 * static_cast<std::uint64_t>(std::max(threads, 1))), 4096),
      64 << 10, 32 << 20);
  const std::uint64_t blocks = (layout.data_bytes + kBlock - 1) / kBlock;
  std::atomic<std::uint64_t> next{0};
  std::mutex error_mutex;
  std::string error;
  auto work = [&] {
    std::vector<char> buffer(kBlock);
    try {
      for (std::uint64_t b = next++; b < blocks; b = next++) {
        const std::uint64_t begin = b * kBlock;
        const std::uint64_t end = std::min(begin + kBlock, layout.data_bytes);
        std::fill(buffer.begin(), buffer.end(), 0);
        for (std::size_t i = 0; i < layout.tensors.size(); ++i) {
          const RawTensor& t = layout.tensors[i];
          if (t.offset >= end || t.offset + t.bytes <= begin) continue;
          const BuiltinTensorSpec& spec = plan.tensors[i];
          const std::uint64_t size = element_bytes(dtype);
          const std::uint64_t from = (std::max(begin, t.offset) - t.offset) / size;
          const std::uint64_t to = (std::min(end, t.offset + t.bytes) - t.offset) / size;
          char* dst = buffer.data() + (t.offset + from * size - begin);
          for (std::uint64_t e = from; e < to; ++e, dst += size) {
            float v = spec.value(options.seed, static_cast<std::int64_t>(e));
            if (dtype == DType::bf16) {
              std::uint16_t h = to_bf16(v);
              std::memcpy(dst, &h, 2);
            } else {
              std::memcpy(dst, &v, 4);
            }
          }
        }
        write_all(out.get(), buffer.data(), end - begin, layout.data_offset + begin, path.string());
      }
    } catch (const std::exception& e) {
      std::lock_guard lock(error_mutex);
      error = e.what();
      next = blocks;
    }
  };
  std::vector<std::thread> pool;
  for (int i = 1; i < std::max(threads, 1); ++i)
    pool.emplace_back(work);
  work();
  for (std::thread& t : pool)
    t.join();
  if (!error.empty()) throw std::runtime_error(error);
  RawWriteStats stats;
  stats.file_bytes = file_bytes;
  stats.parameters = plan.parameters();
  stats.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return stats;
}

}  // namespace hearth::real
