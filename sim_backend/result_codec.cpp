#include "sim_backend/result_codec.hpp"

#include <cstring>
#include <stdexcept>
#include <type_traits>
#include <vector>

#include "policy/errors.hpp"
#include "sim_backend/result_json.hpp"

namespace hearth::sim {

namespace {

// Attempts and timeline segments, hundreds of thousands of rows at 10,000 GPUs, go as one byte
// string each: the child is a fork of this very program, so the layout is the same on both sides,
// and a JSON object per row would cost more than the simulation itself.
template <class Row>
nlohmann::json rows_as_bytes(const std::vector<Row>& rows) {
  static_assert(std::is_trivially_copyable_v<Row>);
  const auto* first = reinterpret_cast<const std::uint8_t*>(rows.data());
  return nlohmann::json::binary({first, first + rows.size() * sizeof(Row)});
}

template <class Row>
std::vector<Row> rows_from_bytes(const nlohmann::json& bytes) {
  const auto& b = bytes.get_binary();
  if (b.size() % sizeof(Row) != 0) throw std::runtime_error("simulation result cut short");
  std::vector<Row> rows(b.size() / sizeof(Row));
  if (!rows.empty()) std::memcpy(rows.data(), b.data(), b.size());
  return rows;
}

// CBOR rather than JSON text: it keeps every double exactly, infinities included (a lower bound
// is +inf when the trace never offers enough capacity).
std::string to_bytes(const nlohmann::json& message) {
  const std::vector<std::uint8_t> bytes = nlohmann::json::to_cbor(message);
  return std::string(bytes.begin(), bytes.end());
}

}  // namespace

std::string encode_result(const SimResult& r) {
  return to_bytes({{"result",
                    {{"summary", r.summary},
                     {"worker_names", r.worker_names},
                     {"worker_types", r.worker_types},
                     {"attempts", rows_as_bytes(r.attempts)},
                     {"timeline", rows_as_bytes(r.timeline)},
                     {"event_log", r.event_log},
                     {"command_log", r.command_log}}}});
}

std::string encode_failure(const std::exception& error) {
  const bool input = dynamic_cast<const InputError*>(&error) != nullptr;
  return to_bytes({{input ? "input_error" : "error", error.what()}});
}

SimResult decode_result(const std::string& bytes) {
  nlohmann::json message;
  try {
    message = nlohmann::json::from_cbor(bytes);
  } catch (const nlohmann::json::exception&) {
    throw std::runtime_error("simulation result cut short");
  }
  if (message.contains("input_error")) throw InputError(message["input_error"].get<std::string>());
  if (message.contains("error")) throw std::runtime_error(message["error"].get<std::string>());
  const nlohmann::json& j = message.at("result");
  SimResult r;
  j.at("summary").get_to(r.summary);
  j.at("worker_names").get_to(r.worker_names);
  j.at("worker_types").get_to(r.worker_types);
  r.attempts = rows_from_bytes<AttemptRow>(j.at("attempts"));
  r.timeline = rows_from_bytes<Segment>(j.at("timeline"));
  j.at("event_log").get_to(r.event_log);
  j.at("command_log").get_to(r.command_log);
  return r;
}

}  // namespace hearth::sim
