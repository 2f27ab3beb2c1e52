// strata — the shared harness of the exit round-trip benchmarks
// (pio_exit_bench, mmio_exit_bench_arm64): a raw KVM_RUN loop and strata
// drive the same guest loop in alternating trials, so host noise spreads
// over both; the best and median trial of each are reported, with the
// user-space CPU time per exit (the VMM's own work).
#ifndef STRATA_BENCH_EXIT_BENCH_H_
#define STRATA_BENCH_EXIT_BENCH_H_

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

#include "core/vmmapi.h"

namespace strata::bench {

// User-space CPU time of the calling thread, in µs: where a VMM's own work
// per exit shows (the rest of an exit is the kernel's and the guest's).
inline double ThreadUserMicros() {
  struct rusage ru;
  getrusage(RUSAGE_THREAD, &ru);
  return ru.ru_utime.tv_sec * 1e6 + ru.ru_utime.tv_usec;
}

// One trial of one side: wall-clock and user-space µs per exit.
struct Trial {
  double us_per_exit;
  double user_us_per_exit;
};

// Runs `run` (which has the guest take `exits` exits) and returns its
// wall-clock and user-space µs per exit.
template <typename Fn>
Trial TimeTrial(uint64_t exits, Fn&& run) {
  const double u0 = ThreadUserMicros();
  const auto t0 = std::chrono::steady_clock::now();
  run();
  const auto t1 = std::chrono::steady_clock::now();
  const double u1 = ThreadUserMicros();
  return {std::chrono::duration<double, std::micro>(t1 - t0).count() / exits,
          (u1 - u0) / exits};
}

// strata's side of the benchmark: a device that counts the guest's writes
// and stops the VM at the `limit`th.
class CountingDevice : public strata::IoDevice {
 public:
  CountingDevice(strata::Vm& vm, uint64_t limit, std::string_view name)
      : vm_(vm), limit_(limit), name_(name) {}
  uint64_t Read(const strata::IoContext&, uint64_t, uint32_t) override {
    return 0;
  }
  void Write(const strata::IoContext&, uint64_t, uint32_t, uint64_t) override {
    if (++count_ == limit_) vm_.RequestStop(strata::ExitStatus::PowerOff());
  }
  std::string_view name() const override { return name_; }
  uint64_t count_ = 0;  // only the one vCPU thread touches it

 private:
  strata::Vm& vm_;
  uint64_t limit_;
  std::string_view name_;
};

// --exits N and --trials T, with the benchmark's defaults.
struct ExitBenchArgs {
  uint64_t exits = 20000;
  int trials = 11;
};

inline ExitBenchArgs ParseExitBenchArgs(int argc, char** argv,
                                        ExitBenchArgs args) {
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::string(argv[i]) == "--exits") args.exits = std::strtoull(argv[i + 1], nullptr, 0);
    if (std::string(argv[i]) == "--trials") args.trials = std::atoi(argv[i + 1]);
  }
  return args;
}

// The figures of a run: best and median of each side, and the medians of
// the user-space time.
struct ExitBenchResult {
  double raw_best, raw_median;
  double strata_best, strata_median;
  double raw_user_median, strata_user_median;
};

inline double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// Warms up both paths, then runs `args.trials` alternating trials of
// raw(exits) and strata(exits) (callables returning a Trial), printing a
// line per trial.
template <typename RawFn, typename StrataFn>
ExitBenchResult RunExitTrials(const ExitBenchArgs& args, RawFn raw_trial,
                              StrataFn strata_trial) {
  std::vector<double> raw, strata, raw_user, strata_user;
  raw_trial(std::min<uint64_t>(args.exits, 1000));  // warm up both paths
  strata_trial(std::min<uint64_t>(args.exits, 1000));
  for (int t = 0; t < args.trials; ++t) {
    Trial r = raw_trial(args.exits);
    Trial s = strata_trial(args.exits);
    raw.push_back(r.us_per_exit);
    strata.push_back(s.us_per_exit);
    raw_user.push_back(r.user_us_per_exit);
    strata_user.push_back(s.user_us_per_exit);
    std::printf("trial %d: raw %.3f us/exit (user %.3f), strata %.3f us/exit "
                "(user %.3f)\n",
                t + 1, r.us_per_exit, r.user_us_per_exit, s.us_per_exit,
                s.user_us_per_exit);
  }
  return {*std::min_element(raw.begin(), raw.end()), Median(raw),
          *std::min_element(strata.begin(), strata.end()), Median(strata),
          Median(raw_user), Median(strata_user)};
}

// The summary's first lines: "<title>, N exits x T trials", the best and
// median of each side and their ratio against `target` (e.g. "<= 1.05x").
// The caller adds its own lines after these.
inline void PrintExitBenchReport(const char* title, const char* target,
                                 const ExitBenchArgs& args,
                                 const ExitBenchResult& r) {
  std::printf("%s, %llu exits x %d trials\n", title,
              static_cast<unsigned long long>(args.exits), args.trials);
  std::printf("  raw KVM_RUN loop : best %.3f us/exit, median %.3f\n",
              r.raw_best, r.raw_median);
  std::printf("  strata           : best %.3f us/exit, median %.3f\n",
              r.strata_best, r.strata_median);
  std::printf("  ratio strata/raw : best %.3fx, median %.3fx  (target %s)\n",
              r.strata_best / r.raw_best, r.strata_median / r.raw_median,
              target);
}

}  // namespace strata::bench

#endif  // STRATA_BENCH_EXIT_BENCH_H_
