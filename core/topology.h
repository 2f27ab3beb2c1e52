// strata — the guest's CPU topology, machine independent.
//
// sockets × clusters × cores × threads, each at least 1. amd64 has no
// cluster level (its CPUID topology leaves know SMT, core and package), so
// an amd64 machine rejects clusters > 1; arm64 maps the levels onto MPIDR
// affinity fields (threads → Aff0 when MT, cores, clusters, sockets above).
// vCPUs are numbered thread-first, then core, cluster, socket. The VM's vCPU
// count may be below the product (a partly populated last socket) but never
// above it.
#pragma once

#include <cstdint>
#include <string>

#include "core/result.h"

namespace strata {

struct CpuTopology {
  uint32_t sockets = 1;
  uint32_t clusters = 1;
  uint32_t cores = 1;
  uint32_t threads = 1;

  // The number of vCPU slots the topology describes (fits: each factor is
  // 32 bits, so the product is below 2^128; Validate bounds it).
  uint64_t Product() const;
  // Every level >= 1 and the product <= limit; errors name the levels.
  Status Validate(uint64_t limit) const;
  // "2 sockets x 3 cores x 2 threads" (clusters only when > 1).
  std::string ToString() const;

  friend bool operator==(const CpuTopology&, const CpuTopology&) = default;
};

}  // namespace strata
