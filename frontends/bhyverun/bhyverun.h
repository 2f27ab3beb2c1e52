// strata — bhyverun, the runnable VMM.
//
// bhyverun is machine independent and small: command-line options become
// the config tree, the config becomes a Machine (core/machine.h: the
// architecture's platform, the devices, the guest), the machine runs, and
// its ExitStatus becomes the process exit status. Everything about the
// machine itself lives in arch/<arch>/platform/.
//
// Exit status (documented in README.md):
//   0        the guest powered off
//   (V<<1)|1 the guest wrote V to the debug-exit device
//   2        the guest asked for a reset (not supported yet)
//   4        the guest crashed (triple fault / crash event)
//   6        a VMM error stopped the VM (unknown exit, host failure, ...)
//   8        bad input: command line, configuration, kernel or initrd
// Which of 6 and 8 a failure before the guest runs gets follows one rule,
// stated with SetupFailure in bhyverun.cc: input-checking steps report bad
// input as kInvalidArgument, kOutOfRange, kNotFound or kUnsupported (8);
// anything else is the host or strata failing (6).
// 1 and 77 are never produced by the VMM itself (kvm-unit-tests reads them
// as pass and skip).
#pragma once

#include "core/vm.h"  // ExitStatus: the statuses above

namespace strata::bhyverun {

// Runs bhyverun with argv; returns the process exit status.
int Main(int argc, char** argv);

}  // namespace strata::bhyverun
