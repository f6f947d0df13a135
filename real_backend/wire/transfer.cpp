#include "real_backend/wire/transfer.hpp"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <vector>

#include "os/atomic_file.hpp"
#include "os/fd.hpp"
#include "real_backend/wire/bulk.hpp"
#include "real_backend/wire/file_hash.hpp"
#include "real_backend/wire/pack.hpp"

namespace hearth::real {

namespace fs = std::filesystem;

namespace {

// Writes a file under a temporary name (DEST.part), checking it as it goes: its hash, or for a
// directory context each packed file's hash and the padding between. commit() checks the rest and
// renames it into place. Destroyed without commit, it removes what it wrote.
class CheckedWriter {
 public:
  CheckedWriter(const fs::path& dest, const ContextInfo& info)
      : file_(dest, os::temp_beside(dest, ".part"), 0600), info_(info) {
    if (!file_.stream()) throw TransferError(fmt::format("cannot write {}", file_.temp().string()));
    if (!info.files.empty()) pack_ = std::make_unique<PackChecker>(info.files);
  }
  void add(std::string_view bytes) {
    if (written_ + bytes.size() > info_.size_bytes) {
      throw TransferError(
          fmt::format("{}: more than the expected {} bytes", info_.name, info_.size_bytes));
    }
    if (pack_) {
      if (std::string e = pack_->add(bytes); !e.empty())
        throw TransferError(fmt::format("{}: {}", info_.name, e));
    } else {
      hasher_.add(bytes);
    }
    written_ += bytes.size();
    file_.stream().write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  }
  std::uint64_t written() const { return written_; }
  void commit() {
    if (written_ != info_.size_bytes) {
      throw TransferError(
          fmt::format("{}: got {} bytes, expected {}", info_.name, written_, info_.size_bytes));
    }
    if (pack_) {
      if (std::string e = pack_->finish(); !e.empty())
        throw TransferError(fmt::format("{}: {}", info_.name, e));
    } else if (std::string hash = hasher_.hex(); hash != info_.hash) {
      throw TransferError(
          fmt::format("{}: hash {} does not match the expected {}", info_.name, hash, info_.hash));
    }
    if (!file_.commit()) throw TransferError(fmt::format("cannot write {}", file_.temp().string()));
  }

 private:
  os::AtomicFile file_;
  const ContextInfo& info_;
  FileHasher hasher_;                  // a single file
  std::unique_ptr<PackChecker> pack_;  // a directory
  std::uint64_t written_ = 0;
};

// A server's reply; one that does not decode is the server's failure.
Message decode_from(const std::string& endpoint, const zmq::message_t& reply) {
  try {
    return decode(reply.to_string_view());
  } catch (const ProtocolError& e) {
    throw TransferError(fmt::format("{} sent a malformed message: {}", endpoint, e.what()));
  }
}

}  // namespace

void fetch_file(zmq::context_t& zmq_context, const std::string& endpoint,
                const std::string& server_public, const KeyPair& client, ContextId context,
                const ContextInfo& info, const fs::path& dest, const std::atomic<bool>& abort,
                const FetchOptions& options) {
  zmq::socket_t socket(zmq_context, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::linger, 0);
  make_curve_client(socket, client, server_public);
  socket.connect(endpoint);
  CheckedWriter out(dest, info);
  std::uint64_t requested = 0;
  int in_flight = 0;
  auto request_more = [&] {
    while (in_flight < options.window && requested < info.size_bytes) {
      auto length = static_cast<std::uint32_t>(
          std::min<std::uint64_t>(options.chunk_bytes, info.size_bytes - requested));
      socket.send(zmq::buffer(encode(Fetch{context, requested, length})), zmq::send_flags::none);
      requested += length;
      ++in_flight;
    }
  };
  request_more();
  auto last_data = std::chrono::steady_clock::now();
  while (out.written() < info.size_bytes) {
    if (abort.load()) throw TransferError("aborted");
    zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(100));
    if (!(item.revents & ZMQ_POLLIN)) {
      std::chrono::duration<double> idle = std::chrono::steady_clock::now() - last_data;
      if (idle.count() > options.idle_timeout_s) {
        throw TransferError(fmt::format("{} sent nothing for {:.0f} s", endpoint, idle.count()));
      }
      continue;
    }
    zmq::message_t reply;
    (void)socket.recv(reply);
    last_data = std::chrono::steady_clock::now();
    Message m = decode_from(endpoint, reply);
    auto* chunk = std::get_if<Chunk>(&m);
    if (!chunk)
      throw TransferError(fmt::format("{} sent {}, not a chunk", endpoint, message_name(m)));
    if (!chunk->error.empty()) throw TransferError(fmt::format("{}: {}", endpoint, chunk->error));
    if (chunk->context != context || chunk->offset != out.written() || chunk->data.empty()) {
      throw TransferError(fmt::format("{} sent bytes out of order", endpoint));
    }
    out.add(chunk->data);
    --in_flight;
    request_more();
  }
  out.commit();
}

void copy_file(const ContextInfo& info, const fs::path& dest, const std::atomic<bool>& abort) {
  constexpr std::uint64_t kBufferBytes = 4 << 20;
  if (!info.files.empty()) {  // a directory: its pack, read a range at a time
    CheckedWriter out(dest, info);
    std::string buffer;
    for (std::uint64_t offset = 0; offset < info.size_bytes; offset += buffer.size()) {
      if (abort.load()) throw TransferError("aborted");
      std::string e = read_pack_range(info.shared_path, info.files, offset,
                                      std::min(kBufferBytes, info.size_bytes - offset), buffer);
      if (!e.empty()) throw TransferError(e);
      out.add(buffer);
    }
    out.commit();
    return;
  }
  std::ifstream in(info.shared_path, std::ios::binary);
  if (!in) throw TransferError(fmt::format("cannot open {}", info.shared_path));
  CheckedWriter out(dest, info);
  std::vector<char> buffer(kBufferBytes);
  while (in) {
    if (abort.load()) throw TransferError("aborted");
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    out.add({buffer.data(), static_cast<std::size_t>(in.gcount())});
  }
  if (in.bad()) throw TransferError(fmt::format("cannot read {}", info.shared_path));
  out.commit();
}

std::string bytes_error(const ContextInfo& info, std::string_view bytes) {
  if (bytes.size() != info.size_bytes) {
    return fmt::format("{} bytes, expected {}", bytes.size(), info.size_bytes);
  }
  if (!info.files.empty()) return pack_error(bytes, info.files);
  FileHasher hasher;
  hasher.add(bytes);
  std::string hash = hasher.hex();
  return hash == info.hash ? "" : fmt::format("hash {}, expected {}", hash, info.hash);
}

std::string read_whole_file(const fs::path& path, std::uint64_t size_bytes) {
  std::string bytes;
  if (!read_cached_range(path, 0, size_bytes, bytes)) {
    throw TransferError(fmt::format("cannot read {}", path.string()));
  }
  if (bytes.size() != size_bytes || fs::file_size(path) != size_bytes) {
    throw TransferError(fmt::format("{} has {} bytes, expected {}", path.string(),
                                    fs::file_size(path), size_bytes));
  }
  return bytes;
}

namespace {

bool read_range_flags(const fs::path& path, std::uint64_t offset, std::uint64_t length,
                      std::string& out, int flags) {
  os::Fd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC | flags));
  if (!fd.is_open()) return false;
  out.resize(length);
  std::size_t got = 0;
  while (got < length) {
    ssize_t n = ::pread(fd.get(), out.data() + got, length - got, static_cast<off_t>(offset + got));
    if (n <= 0) break;
    got += static_cast<std::size_t>(n);
  }
  out.resize(got);
  return got == length;
}

}  // namespace

bool read_range(const fs::path& path, std::uint64_t offset, std::uint64_t length,
                std::string& out) {
  return read_range_flags(path, offset, length, out, 0);
}

bool read_cached_range(const fs::path& path, std::uint64_t offset, std::uint64_t length,
                       std::string& out) {
  return read_range_flags(path, offset, length, out, O_NOFOLLOW);
}

Chunk serve_fetch(const Fetch& request, const RangeReader& read) {
  Chunk c;
  c.context = request.context;
  c.offset = request.offset;
  if (request.length == 0 || request.length > kMaxChunkBytes) {
    c.error = fmt::format("chunk length {} out of range", request.length);
    return c;
  }
  c.error = read(request.context, request.offset, request.length, c.data);
  if (!c.error.empty()) c.data.clear();
  return c;
}

BulkPeer open_bulk(zmq::context_t& zmq_context, const std::string& endpoint,
                   const std::string& server_public, const KeyPair& client, ContextId context,
                   bool encrypt, const std::atomic<bool>& abort, double timeout_s) {
  zmq::socket_t socket(zmq_context, zmq::socket_type::dealer);
  socket.set(zmq::sockopt::linger, 0);
  make_curve_client(socket, client, server_public);
  socket.connect(endpoint);
  OpenBulk open{context, random_bytes(kBulkTicketBytes),
                encrypt ? random_bytes(kBulkKeyBytes) : std::string()};
  socket.send(zmq::buffer(encode(open)), zmq::send_flags::none);
  zmq::message_t reply;
  auto start = std::chrono::steady_clock::now();
  while (!socket.recv(reply, zmq::recv_flags::dontwait)) {
    if (abort.load()) throw TransferError("aborted");
    if (std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() > timeout_s)
      throw TransferError(fmt::format("{} did not answer for {:.0f} s", endpoint, timeout_s));
    zmq::pollitem_t item{socket.handle(), 0, ZMQ_POLLIN, 0};
    zmq::poll(&item, 1, std::chrono::milliseconds(100));
  }
  Message m = decode_from(endpoint, reply);
  auto* opened = std::get_if<BulkOpened>(&m);
  if (!opened)
    throw TransferError(fmt::format("{} sent {}, not bulk_opened", endpoint, message_name(m)));
  if (!opened->error.empty()) throw TransferError(fmt::format("{}: {}", endpoint, opened->error));
  if (opened->context != context || opened->port == 0)
    throw TransferError(fmt::format("{} opened the wrong transfer", endpoint));
  BulkPeer from = bulk_peer_at(endpoint, std::move(open.ticket), std::move(open.key));
  from.port = opened->port;  // the bulk server's, beside the CURVE one the endpoint names
  return from;
}

FetchServer::FetchServer(zmq::context_t& zmq, const KeyPair& keys, std::set<std::string> clients,
                         std::string owner, const std::string& bind, RangeReader read,
                         std::function<std::shared_ptr<const std::string>(ContextId)> host)
    : auth_(zmq, std::move(clients), owner),
      socket_(zmq, zmq::socket_type::router),
      read_(std::move(read)),
      owner_(std::move(owner)) {
  socket_.set(zmq::sockopt::linger, 0);
  make_curve_server(socket_, keys);
  socket_.bind(bind);
  endpoint_ = socket_.get(zmq::sockopt::last_endpoint);
  bulk_ =
      std::make_unique<BulkServer>(bind_host_of(bind), BulkSource{std::move(host), read_}, owner_);
  thread_ = std::thread([this] { loop(); });
}

FetchServer::~FetchServer() {
  stop_ = true;
  thread_.join();
}

void FetchServer::loop() {
  while (!stop_) {
    zmq::pollitem_t items[] = {{socket_.handle(), 0, ZMQ_POLLIN, 0},
                               {auth_.socket().handle(), 0, ZMQ_POLLIN, 0}};
    zmq::poll(items, 2, std::chrono::milliseconds(50));
    while (auth_.handle_one()) {
    }
    zmq::message_t from, body;
    while (socket_.recv(from, zmq::recv_flags::dontwait)) {
      if (!socket_.get(zmq::sockopt::rcvmore)) continue;
      (void)socket_.recv(body);
      while (socket_.get(zmq::sockopt::rcvmore))
        (void)socket_.recv(body);
      Message reply;
      try {
        Message m = decode(body.to_string_view());
        if (auto* open = std::get_if<OpenBulk>(&m)) {
          reply = BulkOpened{open->context, bulk_->port(),
                             bulk_->grant(open->context, open->ticket, open->key)};
        } else if (auto* fetch = std::get_if<Fetch>(&m)) {
          reply = serve_fetch(*fetch, read_);
        } else {
          throw ProtocolError(fmt::format("{} is not a fetch", message_name(m)));
        }
      } catch (const ProtocolError& e) {
        spdlog::warn("{}: dropped a malformed request: {}", owner_, e.what());
        continue;
      }
      socket_.send(from, zmq::send_flags::sndmore);
      socket_.send(zmq::buffer(encode(reply)), zmq::send_flags::dontwait);
    }
  }
}

}  // namespace hearth::real
