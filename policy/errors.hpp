#pragma once
// Errors a user can cause (a bad trace line, a missing file, a wrong value) are reported as an
// InputError whose message says where and what: "trace.csv:42: time 17.5 goes backwards
// (previous 20.0)". Errors that mean a bug in hearth are assertions, not exceptions.

#include <stdexcept>
#include <string>

namespace hearth {

class InputError : public std::runtime_error {
 public:
  explicit InputError(const std::string& what) : std::runtime_error(what) {}
};

}  // namespace hearth
