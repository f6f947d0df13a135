// Every `hearth trace convert --from` reader: the first byte picks the converter (and options),
// the rest is the file.

#include "tests/fuzz/fuzz_support.hpp"
#include "traces/convert_bamboo.hpp"
#include "traces/convert_htcondor.hpp"
#include "traces/convert_slurm.hpp"
#include "traces/convert_spotserve.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  using namespace hearth;
  using namespace hearth::traces;
  if (size == 0) return 0;
  const std::uint8_t pick = data[0];
  const std::string_view text = fuzz::as_text(data + 1, size - 1);
  const std::string gpu = (pick & 0x80) != 0 ? "" : "A100-40GB";
  // A line may claim any number of GPUs up to the limits, and each costs events: limits 100 times
  // smaller than the converters' keep each input well under the second that counts as a hang.
  constexpr double kAtOnce = 1'000;
  constexpr std::size_t kEvents = 100'000;
  fuzz::expect_input_error([&] {
    switch (pick % 6) {
      case 0:
      case 1: {  // bamboo, counts
        BambooOptions o;
        o.gpu_type = "A100-40GB";
        o.max_at_once = kAtOnce;
        o.max_events = kEvents;
        o.header = pick % 6 == 1;
        o.leave = static_cast<LeaveOrder>((pick >> 3) % 3);
        o.seed = pick;
        check_trace(convert_bamboo(text, "fuzz", o));
        break;
      }
      case 2: {
        BambooOptions o;
        o.gpu_type = "A100-40GB";
        o.max_at_once = kAtOnce;
        o.max_events = kEvents;
        o.leave = static_cast<LeaveOrder>((pick >> 3) % 3);
        check_trace(convert_skypilot(text, "fuzz", o));
        break;
      }
      case 3:
        check_trace(convert_htcondor(text, "fuzz", {gpu, kAtOnce, kEvents}));
        break;
      case 4:
        check_trace(convert_slurm(text, "fuzz",
                                  {gpu, (pick & 0x40) != 0 ? "scavenger" : "", kAtOnce, kEvents}));
        break;
      case 5:
        check_trace(convert_spotserve(text, "fuzz", {TimeUnit::ms, "A100-40GB"}));
        break;
    }
  });
  return 0;
}
