#pragma once
// The messages between the manager, its workers and their peers, and their binary encoding.
//
// Workers dial out to the manager (ZeroMQ DEALER to ROUTER, CURVE-authenticated), so a worker
// behind NAT can join. One ZeroMQ message is one protocol message: a type byte, then the fields
// in order, little-endian, strings and arrays prefixed by their u32 length. A message that does not
// decode exactly (unknown type, short, trailing bytes, absurd length) throws ProtocolError, which
// the receiver logs and drops; it never crashes the manager.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "policy/errors.hpp"
#include "policy/model.hpp"
#include "real_backend/wire/pack.hpp"

namespace hearth::real {

// 2: directory contexts; 3: bulk transfers (chunk digests, OpenBulk, tickets from the manager)
inline constexpr std::uint32_t kProtocolVersion = 3;
// Largest chunk of a context file one Chunk message carries.
inline constexpr std::uint32_t kMaxChunkBytes = 4u << 20;

class ProtocolError : public InputError {
 public:
  using InputError::InputError;
};

// Where the bytes of a disk stage come from, as a worker sees it.
enum class StageSource : std::uint8_t { shared_path = 0, manager = 1, peer = 2, lower_tier = 3 };

enum class TaskKind : std::uint8_t { classify = 0, generate = 1, noop = 2 };
const char* to_string(TaskKind kind);
// The kind to_string names `name`, if one is: how a job file's task is read.
std::optional<TaskKind> task_kind_named(std::string_view name);

// How a context's inferences run, and what each returns: the job file's settings of it, as a
// worker receives them. Token ids are the model's: bytes for the built-in and TorchScript models,
// the tokenizer's for a Hugging Face model directory (the manager tokenizes).
struct InferenceSettings {
  bool has_model = true;  // false: bytes only (no-op contexts for benchmarks)
  TaskKind task = TaskKind::classify;
  std::vector<std::string> labels;  // classify: the names results carry
  // classify: each label's tokens, in label order; a label's score is the sum of the
  // log-probabilities of its tokens after the input.
  std::vector<std::vector<std::int32_t>> label_tokens;
  std::uint32_t max_new_tokens = 16;      // generate
  std::vector<std::int32_t> stop_tokens;  // generate: an inference ends after any of these
  std::vector<std::string> stop_strings;  // generate: ... or once its text holds one of these
  float temperature = 0;                  // generate: 0 is greedy
  float top_p = 1;                        // generate: nucleus sampling
  std::uint32_t max_batch = 0;  // inputs per forward pass; 0: as the device's memory allows
};
// What a worker needs to know about a context: its file (checked by size and hash) and how to run
// it. Sent with every stage command, so a worker needs no other copy of the job. A directory
// context travels and is kept as its pack (pack.hpp): size_bytes and hash are the pack's length
// and its manifest's hash, and a message whose manifest is not right for them does not decode.
struct ContextInfo {
  std::string name;
  std::uint64_t size_bytes = 0;
  std::string hash;         // BLAKE2b-256 of the file, hex (of a directory: manifest_hash(files))
  std::string shared_path;  // where the file (or directory) is on the shared filesystem
  InferenceSettings inference;
  std::vector<PackedFile> files;  // a directory context: its files as packed; empty: a single file
  // SHA-256 of each chunk_bytes-long piece of the file (or pack), concatenated: what a bulk
  // transfer (bulk.hpp) checks each chunk against. Empty: only the CURVE path serves it.
  std::uint32_t chunk_bytes = 0;
  std::string chunk_digests;
};

// ---- worker -> manager ----------------------------------------------------------------------

struct Hello {
  std::uint32_t version = kProtocolVersion;
  std::string name;      // stable across restarts of the same worker
  std::string gpu_type;  // CUDA device name, or "cpu"
  std::string device;    // e.g. "cuda:0", "cpu"
  double gpu_memory_bytes = 0;
  double host_memory_bytes = 0;
  double disk_bytes = 0;
  double speed = 1.0;
  std::string peer_endpoint;  // where this worker serves context files to peers
  std::uint32_t pid = 0;
};
struct Heartbeat {};
struct StageReady {
  std::uint64_t stage = 0;
  double seconds = 0;
};
struct StageFailed {
  std::uint64_t stage = 0;
  std::string reason;
};
struct TaskFinished {
  AttemptId attempt = 0;
  std::vector<std::string> results;  // one JSON value per inference, in task order
};
struct TaskFailed {
  AttemptId attempt = 0;
  std::string reason;
};
// The worker was told to leave (SIGTERM) and will be gone within grace_s.
struct Notice {
  double grace_s = 0;
};
// The worker leaves now, on purpose.
struct Bye {};

// ---- manager -> worker ----------------------------------------------------------------------

struct Welcome {
  WorkerId worker = 0;
  std::uint64_t session = 0;
  double heartbeat_s = 0;
  // Bulk transfers (the job's [transfer]): AES-256-GCM or in the clear (still checked chunk by
  // chunk), and data connections per source.
  bool transfer_encryption = true;
  std::uint32_t transfer_streams = 2;
};
struct Stage {
  std::uint64_t stage = 0;
  ContextId context = 0;
  Tier tier = Tier::disk;
  StageSource source = StageSource::lower_tier;
  std::string peer_endpoint;  // source peer
  ContextInfo info;
  // A peer source: the ticket the manager made for this transfer (and sent the holder in an
  // AdmitTransfer), and its AES-256 key (empty: in the clear).
  std::string peer_ticket;
  std::string peer_key;
};
struct AbortStage {
  std::uint64_t stage = 0;
};
struct Evict {
  ContextId context = 0;
  Tier tier = Tier::disk;
};
struct Task {
  AttemptId attempt = 0;
  ContextId context = 0;
  std::vector<std::vector<std::int32_t>> inputs;  // token ids of each inference
  // Sampling (temperature > 0): each inference's seed, from the job's seed and its dataset row, so
  // that a sample depends on neither the batch nor the worker it ran in. Empty otherwise.
  std::vector<std::uint64_t> seeds;
};
struct Cancel {
  AttemptId attempt = 0;
};
// The manager does not know this connection (it restarted, or declared the worker lost): drop
// every tier and say hello again.
struct Reset {
  std::string reason;
};
// The run is over: leave.
struct Shutdown {};
// Serve a bulk transfer of `context` on the peer server to whoever presents `ticket` (within a
// minute), encrypted with `key` (empty: in the clear): another worker's stage reads from this one.
struct AdmitTransfer {
  ContextId context = 0;
  std::string ticket;
  std::string key;
};

// ---- file transfers (anyone authenticated -> manager or peer) --------------------------------

struct Fetch {
  ContextId context = 0;
  std::uint64_t offset = 0;
  std::uint32_t length = 0;
};
struct Chunk {
  ContextId context = 0;
  std::uint64_t offset = 0;
  std::string data;
  std::string error;  // non-empty: the server cannot serve this range
};
// Asks a holder for a bulk transfer of `context` (bulk.hpp): it admits data connections that
// present `ticket`, and encrypts with `key` (empty: in the clear). Sent over CURVE only.
struct OpenBulk {
  ContextId context = 0;
  std::string ticket;
  std::string key;
};
// The holder's answer: the port of its bulk server, or why not.
struct BulkOpened {
  ContextId context = 0;
  std::uint16_t port = 0;
  std::string error;
};

using Message = std::variant<Hello, Heartbeat, StageReady, StageFailed, TaskFinished, TaskFailed,
                             Notice, Bye, Welcome, Stage, AbortStage, Evict, Task, Cancel, Reset,
                             Shutdown, Fetch, Chunk, OpenBulk, BulkOpened, AdmitTransfer>;

std::string encode(const Message& message);
// Throws ProtocolError saying what is wrong.
Message decode(std::string_view bytes);
// The message's name, for logs.
const char* message_name(const Message& message);

}  // namespace hearth::real
