#pragma once
// What a simulating process sends back to the one that started it (simulation.hpp): its result,
// or the error that stopped it, as bytes.

#include <exception>
#include <string>

#include "sim_backend/results.hpp"

namespace hearth::sim {

std::string encode_result(const SimResult& result);
// An InputError stays one on the other side; any other error becomes a std::runtime_error.
std::string encode_failure(const std::exception& error);

// The result encoded, or throws the error encoded. Throws std::runtime_error when the bytes are
// cut short or are not an encoding.
SimResult decode_result(const std::string& bytes);

}  // namespace hearth::sim
