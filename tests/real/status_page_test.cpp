// Watching a run: `hearth status --json` and the manager's status page, loaded in a real headless
// Chromium during a run whose work waits at the test gate, so that the numbers can be seen to move
// only when the test lets them.

#include <catch2/catch_test_macros.hpp>

#include <regex>

#include "os/process.hpp"
#include "tests/real/hearth_process.hpp"
#include "tests/real/helpers.hpp"

using namespace hearth;
using namespace hearth::testing;

namespace {

const char* kChromium = "/usr/bin/chromium";

// What Chromium renders at `url` once its scripts ran, into `dom`; with `screenshot`, a PNG too.
std::string render(const std::string& url, const fs::path& dom, const fs::path& screenshot = {}) {
  fs::remove(dom);
  std::vector<std::string> args = {kChromium,
                                   "--headless",
                                   "--no-sandbox",
                                   "--disable-gpu",
                                   "--hide-scrollbars",
                                   "--virtual-time-budget=4000",
                                   "--window-size=1400,1000"};
  args.push_back(screenshot.empty() ? "--dump-dom" : "--screenshot=" + screenshot.string());
  args.push_back(url);
  os::StartOptions o;
  pid_t pid = os::start_process(args, dom, o);
  int status = 0;
  REQUIRE(wait_for([&] { return waitpid(pid, &status, WNOHANG) == pid; }, 120));
  return read_file(dom);
}

// The number in <span id="done">N</span> of a page's DOM, or -1.
long shown_done(const std::string& dom) {
  std::smatch m;
  if (!std::regex_search(dom, m, std::regex(R"(<span id="done">([0-9,]+)</span>)"))) return -1;
  std::string digits;
  for (char c : m[1].str())
    if (c != ',') digits += c;
  return std::stol(digits);
}

// What `hearth status STATE --json` says.
nlohmann::json status_of(const fs::path& state, const fs::path& out) {
  fs::remove(out);  // start_process appends
  os::StartOptions o;
  pid_t pid = os::start_process({HEARTH_EXECUTABLE, "status", state.string(), "--json"}, out, o);
  int status = 0;
  REQUIRE(wait_for([&] { return waitpid(pid, &status, WNOHANG) == pid; }, 60));
  REQUIRE(os::exit_status(status) == 0);
  return nlohmann::json::parse(read_file(out));
}

// Inferences done, as a snapshot written after this call says (the work is waiting at the gate,
// so it cannot change meanwhile).
long settled_done(const fs::path& state, const fs::path& out) {
  double after = status_of(state, out)["updated_at"].get<double>();
  nlohmann::json s;
  REQUIRE(wait_for(
      [&] {
        s = status_of(state, out);
        return s["updated_at"].get<double>() > after;
      },
      60));
  return s["progress"]["done"].get<long>();
}

}  // namespace

TEST_CASE("the status page in headless Chromium and hearth status show a run's progress move") {
  if (!fs::exists(kChromium)) SKIP("no chromium (scripts/setup installs it)");
  TempDir dir;
  write_classify_job(dir / "job.toml", 60, 5);
  Gate gate(dir / "gate");
  pid_t manager = start_hearth(
      {"run", (dir / "job.toml").string(), "--workers", "2", "--status-listen", "127.0.0.1:0"},
      dir / "manager.log", behind(gate));
  wait_for_log(dir / "manager.log", "hearth: status page at ", manager);
  std::string log = read_file(dir / "manager.log");
  auto at = log.find("status page at ") + 15;
  std::string url = log.substr(at, log.find('\n', at) - at);

  // 12 inferences through the gate (at least one task of 5 done), then everything waits.
  gate.allow(12);
  REQUIRE(wait_for([&] { return gate.used() == 12 && gate.waiting(); }, 120));
  long first = settled_done(dir / "job.state", dir / "s1.json");
  CHECK(first >= 5);
  CHECK(shown_done(render(url, dir / "dom1.html")) == first);

  gate.allow(42);
  REQUIRE(wait_for([&] { return gate.used() == 42 && gate.waiting(); }, 120));
  long second = settled_done(dir / "job.state", dir / "s2.json");
  CHECK(second >= first + 25);
  std::string dom = render(url, dir / "dom2.html");
  CHECK(shown_done(dom) == second);
  CHECK(dom.find(R"(<canvas id="timeline")") != std::string::npos);
  render(url, dir / "shot.log", dir / "status-page.png");
  CHECK(fs::file_size(dir / "status-page.png") > 20000);
  if (const char* keep = std::getenv("HEARTH_KEEP_STATUS_SCREENSHOT"))
    fs::copy_file(dir / "status-page.png", keep, fs::copy_options::overwrite_existing);

  gate.open();
  CHECK(exit_status(manager) == 0);
  nlohmann::json end = status_of(dir / "job.state", dir / "s3.json");
  CHECK(end["progress"]["done"] == 60);
  CHECK(end["ended"] == "finished");
}
