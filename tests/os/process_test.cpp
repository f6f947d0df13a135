// os/process.hpp: programs run to their end, processes started beside this one, exit statuses.

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>
#include <catch2/catch_test_macros.hpp>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "os/process.hpp"

namespace fs = std::filesystem;
using namespace hearth::os;

TEST_CASE("a program's exit status comes back, 128 + the signal if one killed it") {
  CHECK(run_program({"/bin/sh", "-c", "exit 3"}) == 3);
  CHECK(run_program({"/bin/sh", "-c", "kill -TERM $$"}) == 128 + SIGTERM);
}

TEST_CASE("a program that cannot be started is an error naming it") {
  try {
    run_program({"/nonexistent/python3", "script.py"});
    FAIL("nothing was thrown");
  } catch (const std::runtime_error& e) {
    CHECK(std::string(e.what()) == "cannot run /nonexistent/python3: No such file or directory");
  }
}

TEST_CASE("a started process appends its output to its log, and kill_and_reap ends it") {
  const fs::path log = fs::temp_directory_path() / ("hearth-os-test-" + std::to_string(getpid()));
  std::ofstream(log) << "before\n";
  pid_t quick = start_process({"/bin/sh", "-c", "echo out; echo err >&2"}, log);
  REQUIRE(quick > 0);
  int status = 0;
  REQUIRE(waitpid(quick, &status, 0) == quick);
  CHECK(exit_status(status) == 0);
  std::ifstream in(log);
  std::ostringstream text;
  text << in.rdbuf();
  CHECK(text.str() == "before\nout\nerr\n");

  // SIGTERM held: the shell's own SIGTERM waits; the environment carries the added variable.
  pid_t held = start_process({"/bin/sh", "-c", "kill -TERM $$; echo held $HEARTH_OS_TEST"}, log,
                             {.hold_sigterm = true, .environment = {"HEARTH_OS_TEST=yes"}});
  REQUIRE(held > 0);
  REQUIRE(waitpid(held, &status, 0) == held);
  CHECK(exit_status(status) == 0);
  in = std::ifstream(log);
  text.str("");
  text << in.rdbuf();
  CHECK(text.str() == "before\nout\nerr\nheld yes\n");

  pid_t slow =
      start_process({"/bin/sleep", "30"}, log, {.die_with_parent = true, .environment = {}});
  REQUIRE(slow > 0);
  kill_and_reap(slow);
  CHECK(waitpid(slow, nullptr, WNOHANG) == -1);  // reaped: no longer a child
  fs::remove(log);
}

TEST_CASE("an environment variable unset or empty gives the fallback") {
  ::setenv("HEARTH_OS_TEST_VALUE", "", 1);
  CHECK(environment_or("HEARTH_OS_TEST_VALUE", "fallback") == "fallback");
  ::setenv("HEARTH_OS_TEST_VALUE", "/usr/bin/python3.11", 1);
  CHECK(environment_or("HEARTH_OS_TEST_VALUE", "fallback") == "/usr/bin/python3.11");
  ::unsetenv("HEARTH_OS_TEST_VALUE");
  CHECK(environment_or("HEARTH_OS_TEST_VALUE", "fallback") == "fallback");
}
