// strata — bhyverun's entry point, and what a sanitizer build does on a
// report.
//
// A sanitizer that finds a bug ends the process with its `exitcode` flag,
// which is 1 by default for ASan, LSan and UBSan — and kvm-unit-tests reads
// status 1 as PASS. So a sanitizer-built bhyverun defaults every sanitizer
// to exitcode=6 (ExitStatus::kExitVmmError): a report fails the test like
// any other VMM error. The runtimes read these weak hooks at start-up;
// ASAN_OPTIONS, UBSAN_OPTIONS, TSAN_OPTIONS and LSAN_OPTIONS still override
// them (abort_on_error=1 there turns a report into SIGABRT instead, which
// kvm-unit-tests also counts as a failure). Normal builds define nothing.
//
// Sanitizer self-test (sanitizer builds only, for the integration tests
// that prove the above): with STRATA_SANITIZER_SELFTEST set to `asan`
// (heap use-after-free), `ubsan` (signed overflow), `leak` (an unreachable
// allocation at exit) or `tsan` (a data race), bhyverun commits that bug
// before doing anything else. It is read from bhyverun's own environment
// only, so no guest and no config file can reach it, and a build without a
// sanitizer ignores the variable.
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "frontends/bhyverun/bhyverun.h"

#if defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(thread_sanitizer) || \
    __has_feature(undefined_behavior_sanitizer)
#define STRATA_SANITIZED 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
#define STRATA_SANITIZED 1
#endif

#if defined(STRATA_SANITIZED)
#include <climits>
#include <thread>

// The status is spelt out because these run before any C++ initialisation;
// static_assert keeps it in step with ExitStatus.
#define STRATA_SANITIZER_EXITCODE "6"
static_assert(strata::ExitStatus::kExitVmmError == 6);

extern "C" {
// halt_on_error / abort_on_error stay at their defaults: the first report
// ends the process with the exit code below.
const char* __asan_default_options() {
  return "exitcode=" STRATA_SANITIZER_EXITCODE ":detect_leaks=1";
}
const char* __lsan_default_options() {
  return "exitcode=" STRATA_SANITIZER_EXITCODE;
}
const char* __ubsan_default_options() {
  return "exitcode=" STRATA_SANITIZER_EXITCODE
         ":halt_on_error=1:print_stacktrace=1";
}
const char* __tsan_default_options() {
  return "exitcode=" STRATA_SANITIZER_EXITCODE ":halt_on_error=1";
}
}  // extern "C"

namespace {

// Commits the bug named by STRATA_SANITIZER_SELFTEST; returns only if the
// sanitizer did not stop the process (or, for `leak`, to let it report at
// exit).
void SanitizerSelfTest(const char* which) {
  if (std::strcmp(which, "asan") == 0) {
    int* volatile p = new int[4];
    delete[] p;
    volatile int v = p[1];  // heap-use-after-free
    (void)v;
  } else if (std::strcmp(which, "ubsan") == 0) {
    volatile int big = INT_MAX;
    volatile int sum = big + 1;  // signed integer overflow
    (void)sum;
  } else if (std::strcmp(which, "leak") == 0) {
    static int* volatile leaked;
    leaked = new int[64];
    leaked = nullptr;  // unreachable at exit: LeakSanitizer reports it
    (void)leaked;
    return;
  } else if (std::strcmp(which, "tsan") == 0) {
    static int shared;
    std::thread t([] { shared++; });
    shared++;  // data race with t
    t.join();
  } else {
    std::fprintf(stderr,
                 "bhyverun: STRATA_SANITIZER_SELFTEST='%s' is not one of "
                 "asan, ubsan, leak, tsan\n",
                 which);
    std::exit(strata::ExitStatus::kExitUsage);
  }
  std::fprintf(stderr, "bhyverun: sanitizer self-test '%s' was not caught\n",
               which);
}

}  // namespace
#endif  // STRATA_SANITIZED

int main(int argc, char** argv) {
#if defined(STRATA_SANITIZED)
  if (const char* which = std::getenv("STRATA_SANITIZER_SELFTEST")) {
    SanitizerSelfTest(which);
    return 0;
  }
#endif
  return strata::bhyverun::Main(argc, argv);
}
