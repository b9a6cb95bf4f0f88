// gtest main for DPDK tests: after the tests, releases the EAL and removes its runtime directory
// (/var/run/dpdk/<file prefix>), so that repeated runs leave nothing behind.
#include <rte_eal.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "gtest/gtest.h"
#include "tests/pipeline/harness.h"

int main(int argc, char** argv) {
  ::testing::InitGoogleTest(&argc, argv);
  const int rc = RUN_ALL_TESTS();
  if (lb::testing::EalStarted()) {
    const std::string dir = rte_eal_get_runtime_dir();
    rte_eal_cleanup();
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  return rc;
}
