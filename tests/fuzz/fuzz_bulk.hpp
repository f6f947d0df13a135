#pragma once
// What fuzz_bulk and the seed maker share: the context both ends of the bulk data connection
// serve and fetch, and the first byte of an input, which says what the rest is.

#include <cstdint>
#include <string>

namespace hearth::fuzz::bulk {

// The first byte of an input.
inline constexpr std::uint8_t kFetcher = 1;    // the rest is the holder's answers to fetch_bulk;
                                               // without it, the fetcher's requests to BulkServer
inline constexpr std::uint8_t kEncrypted = 2;  // the transfer has a key
inline constexpr std::uint8_t kFromDisk = 4;   // the holder reads the range (no host copy)
inline constexpr std::uint8_t kNoHello = 8;    // the holder gets the rest raw, as its hello too

// 10,240 bytes in chunks of 4,096 (the smallest a manifest may have): two whole chunks and a
// short one.
inline constexpr std::uint32_t kChunkBytes = 4096;
inline std::string context() {
  std::string bytes(10240, '\0');
  for (std::size_t i = 0; i < bytes.size(); ++i)
    bytes[i] = static_cast<char>('a' + (i * 7) % 26);
  return bytes;
}

}  // namespace hearth::fuzz::bulk
