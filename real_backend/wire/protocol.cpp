#include "real_backend/wire/protocol.hpp"

#include <fmt/format.h>

#include <bit>
#include <cstring>
#include <iterator>
#include <type_traits>

#include "policy/enum_names.hpp"
#include "real_backend/wire/bulk.hpp"

namespace hearth::real {

static_assert(std::endian::native == std::endian::little, "the wire format is little-endian");

namespace {

constexpr const char* kTaskKindNames[] = {"classify", "generate", "noop"};

}  // namespace

const char* to_string(TaskKind kind) {
  return enum_name(kind, kTaskKindNames);
}

std::optional<TaskKind> task_kind_named(std::string_view name) {
  return enum_named<TaskKind>(name, kTaskKindNames);
}

namespace {

// The fields of each message (defined below), in wire order; one list serves both directions.
template <class A, class M>
void fields(A& a, M& m);

template <class E>
constexpr std::uint8_t enum_limit() {
  if constexpr (std::is_same_v<E, Tier>) return kTierCount;
  if constexpr (std::is_same_v<E, TaskKind>) return std::size(kTaskKindNames);
  if constexpr (std::is_same_v<E, StageSource>) return 4;
}

class Writer {
 public:
  std::string bytes;

  template <class... T>
  void operator()(const T&... values) {
    (put(values), ...);
  }

 private:
  template <class T>
  void put(const T& v) {
    if constexpr (std::is_enum_v<T>) {
      put(static_cast<std::uint8_t>(v));
    } else if constexpr (std::is_arithmetic_v<T>) {
      char raw[sizeof(T)];
      std::memcpy(raw, &v, sizeof(T));
      bytes.append(raw, sizeof(T));
    } else if constexpr (std::is_same_v<T, std::string>) {
      put(static_cast<std::uint32_t>(v.size()));
      bytes.append(v);
    } else if constexpr (std::is_same_v<T, std::vector<std::int32_t>>) {
      put(static_cast<std::uint32_t>(v.size()));
      bytes.append(reinterpret_cast<const char*>(v.data()), v.size() * sizeof(std::int32_t));
    } else if constexpr (requires { v.begin(); }) {
      put(static_cast<std::uint32_t>(v.size()));
      for (const auto& e : v)
        put(e);
    } else {
      fields(*this, v);
    }
  }
};

class Reader {
 public:
  explicit Reader(std::string_view bytes) : rest_(bytes) {}

  template <class... T>
  void operator()(T&... values) {
    (get(values), ...);
  }
  void expect_end() const {
    if (!rest_.empty())
      throw ProtocolError(fmt::format("{} unexpected trailing bytes", rest_.size()));
  }

 private:
  const char* take(std::size_t n) {
    if (n > rest_.size()) {
      throw ProtocolError(
          fmt::format("message ends early (wanted {} bytes, {} left)", n, rest_.size()));
    }
    const char* p = rest_.data();
    rest_.remove_prefix(n);
    return p;
  }
  std::uint32_t count(std::size_t element_bytes) {
    std::uint32_t n = 0;
    get(n);
    if (static_cast<std::uint64_t>(n) * element_bytes > rest_.size()) {
      throw ProtocolError(fmt::format("length {} exceeds the {} bytes left", n, rest_.size()));
    }
    return n;
  }

  template <class T>
  void get(T& v) {
    if constexpr (std::is_enum_v<T>) {
      std::uint8_t raw = 0;
      get(raw);
      if (raw >= enum_limit<T>()) throw ProtocolError(fmt::format("bad enum value {}", raw));
      v = static_cast<T>(raw);
    } else if constexpr (std::is_same_v<T, bool>) {
      std::uint8_t raw = 0;
      get(raw);
      if (raw > 1) throw ProtocolError(fmt::format("bad boolean {}", raw));
      v = raw == 1;
    } else if constexpr (std::is_arithmetic_v<T>) {
      std::memcpy(&v, take(sizeof(T)), sizeof(T));
    } else if constexpr (std::is_same_v<T, std::string>) {
      std::uint32_t n = count(1);
      v.assign(take(n), n);
    } else if constexpr (std::is_same_v<T, std::vector<std::int32_t>>) {
      std::uint32_t n = count(sizeof(std::int32_t));
      v.resize(n);
      const char* from = take(n * sizeof(std::int32_t));
      if (n > 0) std::memcpy(v.data(), from, n * sizeof(std::int32_t));  // data() may be null
    } else if constexpr (requires { v.emplace_back(); }) {
      std::uint32_t n = count(sizeof(std::uint32_t));  // every element takes at least 4 bytes
      v.clear();
      v.reserve(n);
      for (std::uint32_t i = 0; i < n; ++i)
        get(v.emplace_back());
    } else {
      fields(*this, v);
    }
  }

  std::string_view rest_;
};

template <class A, class M>
void fields(A& a, M& m) {
  using T = std::remove_const_t<M>;
  if constexpr (std::is_same_v<T, ContextInfo>) {
    auto& i = m.inference;  // const when encoding
    a(m.name, m.size_bytes, m.hash, m.shared_path, i.has_model, i.task, i.labels, i.label_tokens,
      i.max_new_tokens, i.stop_tokens, i.stop_strings, i.temperature, i.top_p, i.max_batch, m.files,
      m.chunk_bytes, m.chunk_digests);
    if constexpr (std::is_same_v<A, Reader>) {
      if (!m.files.empty()) {
        if (std::string e = manifest_error(m.files, m.size_bytes, m.hash); !e.empty())
          throw ProtocolError(fmt::format("context {}: {}", m.name, e));
      }
      if (std::string e = chunk_digests_error(m); !e.empty())
        throw ProtocolError(fmt::format("context {}: {}", m.name, e));
    }
  } else if constexpr (std::is_same_v<T, PackedFile>) {
    a(m.name, m.offset, m.size, m.hash);
  } else if constexpr (std::is_same_v<T, Hello>) {
    a(m.version, m.name, m.gpu_type, m.device, m.gpu_memory_bytes, m.host_memory_bytes,
      m.disk_bytes, m.speed, m.peer_endpoint, m.pid);
  } else if constexpr (std::is_same_v<T, StageReady>) {
    a(m.stage, m.seconds);
  } else if constexpr (std::is_same_v<T, StageFailed>) {
    a(m.stage, m.reason);
  } else if constexpr (std::is_same_v<T, TaskFinished>) {
    a(m.attempt, m.results);
  } else if constexpr (std::is_same_v<T, TaskFailed>) {
    a(m.attempt, m.reason);
  } else if constexpr (std::is_same_v<T, Notice>) {
    a(m.grace_s);
  } else if constexpr (std::is_same_v<T, Welcome>) {
    a(m.worker, m.session, m.heartbeat_s, m.transfer_encryption, m.transfer_streams);
  } else if constexpr (std::is_same_v<T, Stage>) {
    a(m.stage, m.context, m.tier, m.source, m.peer_endpoint, m.info, m.peer_ticket, m.peer_key);
  } else if constexpr (std::is_same_v<T, AbortStage>) {
    a(m.stage);
  } else if constexpr (std::is_same_v<T, Evict>) {
    a(m.context, m.tier);
  } else if constexpr (std::is_same_v<T, Task>) {
    a(m.attempt, m.context, m.inputs, m.seeds);
  } else if constexpr (std::is_same_v<T, Cancel>) {
    a(m.attempt);
  } else if constexpr (std::is_same_v<T, Reset>) {
    a(m.reason);
  } else if constexpr (std::is_same_v<T, Fetch>) {
    a(m.context, m.offset, m.length);
  } else if constexpr (std::is_same_v<T, Chunk>) {
    a(m.context, m.offset, m.data, m.error);
  } else if constexpr (std::is_same_v<T, OpenBulk>) {
    a(m.context, m.ticket, m.key);
  } else if constexpr (std::is_same_v<T, BulkOpened>) {
    a(m.context, m.port, m.error);
  } else if constexpr (std::is_same_v<T, AdmitTransfer>) {
    a(m.context, m.ticket, m.key);
  } else {
    static_assert(std::is_empty_v<T>, "a message without fields");
  }
}

template <std::size_t I = 0>
Message make_alternative(std::size_t index, Reader& in) {
  if constexpr (I < std::variant_size_v<Message>) {
    if (index == I) {
      std::variant_alternative_t<I, Message> m;
      fields(in, m);
      return m;
    }
    return make_alternative<I + 1>(index, in);
  } else {
    throw ProtocolError(fmt::format("unknown message type {}", index + 1));
  }
}

}  // namespace

std::string encode(const Message& message) {
  Writer out;
  out(static_cast<std::uint8_t>(message.index() + 1));
  std::visit([&](const auto& m) { fields(out, m); }, message);
  return std::move(out.bytes);
}

Message decode(std::string_view bytes) {
  Reader in(bytes);
  std::uint8_t type = 0;
  in(type);
  if (type == 0) throw ProtocolError("unknown message type 0");
  Message m = make_alternative(type - 1u, in);
  in.expect_end();
  return m;
}

const char* message_name(const Message& message) {
  static constexpr const char* names[] = {
      "hello",     "heartbeat",   "stage_ready",   "stage_failed", "task_finished", "task_failed",
      "notice",    "bye",         "welcome",       "stage",        "abort_stage",   "evict",
      "task",      "cancel",      "reset",         "shutdown",     "fetch",         "chunk",
      "open_bulk", "bulk_opened", "admit_transfer"};
  static_assert(std::size(names) == std::variant_size_v<Message>);
  return names[message.index()];
}

}  // namespace hearth::real
