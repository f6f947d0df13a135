#include "sim_backend/result_codec.hpp"

#include <stdexcept>

#include "policy/errors.hpp"
#include "sim_backend/result_json.hpp"

namespace hearth::sim {

namespace {

// CBOR rather than JSON text: it keeps every double exactly, infinities included (a lower bound
// is +inf when the trace never offers enough capacity).
std::string to_bytes(const nlohmann::json& message) {
  const std::vector<std::uint8_t> bytes = nlohmann::json::to_cbor(message);
  return std::string(bytes.begin(), bytes.end());
}

}  // namespace

std::string encode_result(const SimResult& result) {
  return to_bytes({{"result", result}});
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
  return message.at("result").get<SimResult>();
}

}  // namespace hearth::sim
