#pragma once
// The unit a published trace writes its times in. Published files do not say; the user does.

#include <string_view>

namespace hearth::traces {

enum class TimeUnit { ms, s, h };

// "ms", "s" or "h"; anything else throws InputError.
TimeUnit parse_time_unit(std::string_view word);
double seconds_per(TimeUnit unit);

}  // namespace hearth::traces
