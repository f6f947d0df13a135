#pragma once
// The libtorch element type of a weight's DType, for the torch plugin's files (it includes
// c10's ScalarType, a light header).

#include <c10/core/ScalarType.h>

#include <stdexcept>

#include "real_backend/model/raw_model.hpp"

namespace hearth::real {

inline c10::ScalarType torch_dtype(DType d) {
  switch (d) {
    case DType::f32:
      return c10::kFloat;
    case DType::bf16:
      return c10::kBFloat16;
    case DType::f16:
      return c10::kHalf;
  }
  throw std::logic_error("unknown dtype");
}

}  // namespace hearth::real
