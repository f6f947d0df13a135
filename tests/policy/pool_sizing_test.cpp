// The pool sizing rule: how many workers a run asks for, from the work its core still has.

#include <catch2/catch_test_macros.hpp>

#include "policy/pool_sizing.hpp"
#include "tests/policy/pool_status.hpp"

using namespace hearth;
using hearth::testing::pool_status;

TEST_CASE("while inferences wait, the pool is one worker per inferences_per_worker unfinished") {
  PoolLimits limits{0, 100, 50};
  CHECK(pool_target(pool_status(1000, 1000, 0), limits) == 20);
  CHECK(pool_target(pool_status(1001, 1001, 0), limits) == 21);  // rounded up
  CHECK(pool_target(pool_status(1, 1, 0), limits) == 1);
  // Inferences already on workers count too: they are work the pool still has.
  CHECK(pool_target(pool_status(100, 1000, 18), limits) == 20);
}

TEST_CASE("the pool stays within min_workers and max_workers while inferences wait") {
  CHECK(pool_target(pool_status(100000, 100000, 0), {0, 8, 50}) == 8);
  CHECK(pool_target(pool_status(10, 10, 0), {4, 8, 50}) == 4);
  CHECK(pool_target(pool_status(10, 10, 0), {8, 8, 50}) == 8);
}

TEST_CASE("when no inference waits, the pool is the busy workers and min_workers lapses") {
  PoolLimits limits{4, 8, 50};
  CHECK(pool_target(pool_status(0, 300, 3), limits) == 3);
  CHECK(pool_target(pool_status(0, 300, 0), limits) == 0);
  CHECK(pool_target(pool_status(0, 300, 12), limits) == 8);  // more busy than max (started by hand)
}

TEST_CASE("a finished run wants no worker at all") {
  CHECK(pool_target(pool_status(0, 0, 0), {4, 8, 50}) == 0);
}

TEST_CASE("a task lost with its worker makes the pool grow again") {
  PoolLimits limits{0, 8, 100};
  // Tail of a run: 3 tasks of 100 on 3 workers, nothing waits.
  CHECK(pool_target(pool_status(0, 300, 3), limits) == 3);
  // One worker is preempted: its 100 inferences wait again.
  CHECK(pool_target(pool_status(100, 300, 2), limits) == 3);
}
