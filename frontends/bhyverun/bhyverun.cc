// strata — bhyverun main (machine independent).
#include "frontends/bhyverun/bhyverun.h"

#include <getopt.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstdio>
#include <iterator>
#include <string>
#include <thread>

#include "core/host_file.h"
#include "core/log.h"

namespace strata::bhyverun {

void PinLine::SetLevel(bool asserted) {
  Status s = vm_.SetIrq(pin_, asserted);
  if (!s) {
    vm_.RequestStop(ExitStatus::VmmError(fmt::format(
        "driving {}: {}", md::IrqPinName(pin_), s.error().message())));
  }
}

namespace {

constexpr int kExitUsage = ExitStatus::kExitUsage;

constexpr std::string_view kMiConfigKeys[] = {
    "cpus",           "cpu.sockets",    "cpu.cores",     "cpu.threads",
    "cpu.max",        "memory.size",    "kernel.path",   "kernel.cmdline",
    "kernel.initrd",  "log.level",      "bus.unclaimed_fatal",
    "com1.backend",   "name",
};

// memory.size: at least what the boot data and a small kernel need, in whole
// pages (guest memory is mapped in 4 KiB pages).
constexpr uint64_t kMinMemory = 2u << 20;
constexpr uint64_t kMemoryGranule = 4096;

// The one rule for a failure while setting up the VM (before any vCPU
// runs). What the user gave — options, config, kernel and initrd — is
// checked by code that reports a bad input by its error code: kInvalidArgument
// (malformed), kOutOfRange (well-formed but impossible: too large, outside
// guest RAM), kNotFound (names a file that does not exist) or kUnsupported
// (asks for something strata does not do, e.g. an a.out kernel). Those are
// usage errors (8). Every other code — kIo, kBusy, kAlreadyExists,
// kInternal, kGuestFault — is the host or strata failing: a VMM error (6).
// A step that only drives the host (opening /dev/kvm, creating the VM and
// its vCPUs) is a VMM error whatever its code; bhyverun checks the inputs
// those steps depend on beforehand, so a bad input never reaches them.
enum class Step { kInput, kHost };

bool IsBadInput(Errc c) {
  switch (c) {
    case Errc::kInvalidArgument:
    case Errc::kOutOfRange:
    case Errc::kNotFound:
    case Errc::kUnsupported:
      return true;
    case Errc::kAlreadyExists:
    case Errc::kBusy:
    case Errc::kIo:
    case Errc::kGuestFault:
    case Errc::kInternal:
      return false;
  }
  return false;
}

int SetupFailure(Step step, const Error& e) {
  std::fprintf(stderr, "bhyverun: %s\n", e.message().c_str());
  return step == Step::kInput && IsBadInput(e.code())
             ? kExitUsage
             : ExitStatus::kExitVmmError;
}

void Usage(FILE* f) {
  std::fprintf(
      f,
      "usage: bhyverun [options]\n"
      "Runs a guest on KVM. With no kernel it boots the built-in demo guest.\n"
      "\n"
      "  -c, --cpus SPEC       vCPUs: N, or [cpus=]N[,sockets=S][,cores=C]"
      "[,threads=T][,maxcpus=M]\n"
      "                        (default 1; maxcpus fixes the VM's vCPU limit)\n"
      "  -m, --memory SIZE     guest RAM, e.g. 256M, 2G (default 256M)\n"
      "  -k, --kernel FILE     guest kernel: ELF32/ELF64, Multiboot v1\n"
      "  -a, --append ARGS     kernel command line\n"
      "  -i, --initrd FILE     initrd / Multiboot module\n"
      "  -o KEY=VALUE          set a config key (repeatable)\n"
      "  -f, --config FILE     merge a JSON config file\n"
      "  -l, --log-level LVL   trace, debug, info, warn (default), error, off\n"
      "      --dump-config     print the effective config as JSON and exit\n"
      "  -h, --help            this text\n");
  for (const MachdepOption* o = bhyve_options_machdep(); o->name; ++o) {
    std::fprintf(f, "      --%-17s %s (sets %s)\n", o->name, o->help, o->key);
  }
  std::string keys = "  ";
  size_t col = keys.size();
  for (size_t i = 0; i < std::size(kMiConfigKeys); ++i) {
    const std::string item = fmt::format(
        "{}{}", kMiConfigKeys[i], i + 1 < std::size(kMiConfigKeys) ? "," : "");
    if (col + item.size() + 1 > 76) {
      keys += "\n  ";
      col = 2;
    } else if (col > 2) {
      keys += ' ';
      ++col;
    }
    keys += item;
    col += item.size();
  }
  std::fprintf(
      f,
      "\n"
      "Config keys (a key not listed here is an error):\n"
      "%s\n"
      "  com1.backend is stdio or none.\n"
      "%s"
      "\n"
      "Exit status: 0 guest powered off; (V<<1)|1 guest wrote V to port 0xf4;\n"
      "  2 guest reset; 4 guest crashed; 6 VMM error; 8 usage/config error.\n",
      keys.c_str(), bhyve_usage_machdep());
}

// The config keys bhyverun's MI part reads; the machdep part adds its own
// (bhyve_config_keys_machdep). Anything else in the config is a typo.
std::vector<std::string_view> KnownConfigKeys() {
  std::vector<std::string_view> keys(std::begin(kMiConfigKeys),
                                     std::end(kMiConfigKeys));
  for (std::string_view k : bhyve_config_keys_machdep()) keys.push_back(k);
  return keys;
}

template <typename... Args>
int UsageError(fmt::format_string<Args...> f, Args&&... args) {
  std::fprintf(stderr, "bhyverun: %s\n",
               fmt::format(f, std::forward<Args>(args)...).c_str());
  std::fprintf(stderr, "Try 'bhyverun --help'.\n");
  return kExitUsage;
}

// "-c" in bhyve's syntax: "N" or "cpus=N,sockets=S,cores=C,threads=T,maxcpus=M".
Status ParseCpuSpec(Config& cfg, std::string_view spec) {
  static constexpr std::pair<std::string_view, std::string_view> kKeys[] = {
      {"cpus", "cpus"},           {"sockets", "cpu.sockets"},
      {"cores", "cpu.cores"},     {"threads", "cpu.threads"},
      {"maxcpus", "cpu.max"},
  };
  size_t pos = 0;
  bool first = true;
  while (pos <= spec.size()) {
    size_t comma = spec.find(',', pos);
    std::string_view item = spec.substr(
        pos, comma == std::string_view::npos ? std::string_view::npos
                                             : comma - pos);
    size_t eq = item.find('=');
    std::string_view key = eq == std::string_view::npos ? "" : item.substr(0, eq);
    std::string_view value =
        eq == std::string_view::npos ? item : item.substr(eq + 1);
    if (key.empty() && !first) {
      return MakeError(Errc::kInvalidArgument,
                       "-c '{}': '{}' needs a name (sockets=, cores=, "
                       "threads=, maxcpus=)", spec, item);
    }
    if (key.empty()) key = "cpus";
    std::string_view cfg_key;
    for (auto& [name, k] : kKeys) {
      if (name == key) cfg_key = k;
    }
    if (cfg_key.empty()) {
      return MakeError(Errc::kInvalidArgument, "-c '{}': unknown field '{}'",
                       spec, key);
    }
    uint32_t n = 0;
    auto [p, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
    if (ec != std::errc() || p != value.data() + value.size() || n == 0) {
      return MakeError(Errc::kInvalidArgument,
                       "-c '{}': {} must be a positive integer, got '{}'",
                       spec, key, value);
    }
    STRATA_TRY(cfg.Set(cfg_key, value));
    first = false;
    if (comma == std::string_view::npos) break;
    pos = comma + 1;
  }
  return Ok();
}

// Resolves cpus/topology/maxcpus into consistent values (written back to the
// config so --dump-config shows what runs). Every count is a 32-bit
// quantity (CPUID and APIC ids carry them) and at least 1; their product is
// computed checked, so no value wraps or truncates.
Status ResolveTopology(Context& ctx) {
  Config& c = ctx.config;
  bool topo_given = c.Has("cpu.sockets") || c.Has("cpu.cores") ||
                    c.Has("cpu.threads");
  uint64_t sockets =
      STRATA_TRY(c.GetUintInRange("cpu.sockets", 1, 1, UINT32_MAX));
  uint64_t cores =
      STRATA_TRY(c.GetUintInRange("cpu.cores", 1, 1, UINT32_MAX));
  uint64_t threads =
      STRATA_TRY(c.GetUintInRange("cpu.threads", 1, 1, UINT32_MAX));
  uint64_t product = 0;
  if (__builtin_mul_overflow(sockets, cores, &product) ||
      __builtin_mul_overflow(product, threads, &product) ||
      product > UINT32_MAX) {
    return MakeError(Errc::kOutOfRange,
                     "the topology cpu.sockets={} x cpu.cores={} x "
                     "cpu.threads={} has more than {} logical processors",
                     sockets, cores, threads, UINT32_MAX);
  }
  uint64_t cpus;
  if (c.Has("cpus")) {
    cpus = STRATA_TRY(c.GetUintInRange("cpus", 1, 1, UINT32_MAX));
  } else {
    cpus = topo_given ? product : 1;
  }
  if (!topo_given) {
    // One socket per vCPU, one core, one thread (bhyve's default).
    sockets = cpus;
    product = cpus;
  } else if (cpus > product) {
    return MakeError(Errc::kInvalidArgument,
                     "cpus={} exceeds the topology sockets={} x cores={} x "
                     "threads={} = {}",
                     cpus, sockets, cores, threads, product);
  }
  uint64_t maxcpus =
      STRATA_TRY(c.GetUintInRange("cpu.max", cpus, 1, UINT32_MAX));
  if (maxcpus < cpus) {
    return MakeError(Errc::kInvalidArgument,
                     "cpu.max={} is less than cpus={}", maxcpus, cpus);
  }
  STRATA_TRY(c.Set("cpus", std::to_string(cpus)));
  STRATA_TRY(c.Set("cpu.sockets", std::to_string(sockets)));
  STRATA_TRY(c.Set("cpu.cores", std::to_string(cores)));
  STRATA_TRY(c.Set("cpu.threads", std::to_string(threads)));
  STRATA_TRY(c.Set("cpu.max", std::to_string(maxcpus)));
  ctx.cpus = static_cast<uint32_t>(cpus);
  return Ok();
}

// Reads the kernel and initrd the config names, before any VM exists: a
// file that is missing, not a regular file or larger than guest RAM is bad
// input like any other.
Status ReadGuestFiles(Context& ctx) {
  Config& c = ctx.config;
  if (c.Has("kernel.path")) {
    const std::string path = STRATA_TRY(c.GetString("kernel.path"));
    ctx.kernel = STRATA_TRY(ReadHostFile(path, "kernel", ctx.memsize));
  }
  if (c.Has("kernel.initrd")) {
    const std::string path = STRATA_TRY(c.GetString("kernel.initrd"));
    ctx.initrd = STRATA_TRY(ReadHostFile(path, "initrd", ctx.memsize));
  }
  return Ok();
}

// Turns SIGINT/SIGTERM/SIGHUP into a VM stop, from a thread of its own.
class SignalWatcher {
 public:
  explicit SignalWatcher(Vm& vm) {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);  // inherited by vCPU threads
    thread_ = std::thread([this, &vm] {
      const struct timespec tick = {0, 100 * 1000 * 1000};
      while (!done_.load()) {
        int sig = sigtimedwait(&set_, nullptr, &tick);
        if (sig > 0) {
          vm.RequestStop(ExitStatus::VmmError(
              fmt::format("stopped by signal {} ({})", sig, strsignal(sig))));
        }
      }
    });
  }
  ~SignalWatcher() {
    done_.store(true);
    thread_.join();
  }

 private:
  sigset_t set_;
  std::atomic<bool> done_{false};
  std::thread thread_;
};

int RunVm(Context& ctx) {
  Config& c = ctx.config;
  auto input = [](const Error& e) { return SetupFailure(Step::kInput, e); };
  auto host = [](const Error& e) { return SetupFailure(Step::kHost, e); };

  // 1. The input, before the host is touched (Main checked the options,
  //    the config keys, the topology and the memory size).
  auto machine = bhyve_machine_options(c);
  if (!machine) return input(machine.error());
  auto maxcpus = c.GetUint32("cpu.max", ctx.cpus);
  if (!maxcpus) return input(maxcpus.error());
  auto fatal = c.GetBool("bus.unclaimed_fatal", false);
  if (!fatal) return input(fatal.error());
  auto name = c.GetString("name", "strata");
  if (!name) return input(name.error());
  if (Status s = ReadGuestFiles(ctx); !s) return input(s.error());
  // The host's vCPU limit is the one input check that needs the host.
  auto host_max = HostMaxVcpus();
  if (!host_max) return host(host_max.error());
  if (*maxcpus > *host_max) {
    return input(MakeError(Errc::kOutOfRange,
                           "cpu.max={} is more than this host's limit of {} "
                           "vCPUs (KVM_CAP_MAX_VCPUS)",
                           *maxcpus, *host_max));
  }

  // 2. The VM. Platform setup and loading the guest still check input
  //    (the kernel's segments against RAM, the console backend).
  VmOptions opts;
  opts.name = *name;
  opts.max_vcpus = *maxcpus;
  opts.machine = *machine;
  for (auto [key, field] :
       {std::pair{"cpu.sockets", &opts.topology.sockets},
        std::pair{"cpu.cores", &opts.topology.cores},
        std::pair{"cpu.threads", &opts.topology.threads}}) {
    auto n = c.GetUint32(key, 1);
    if (!n) return input(n.error());
    *field = *n;
  }
  auto vm = CreateKvmVm(opts);
  if (!vm) return host(vm.error());
  ctx.vm = std::move(*vm);
  ctx.vm->pio_bus().set_unclaimed_fatal(*fatal);
  ctx.vm->mmio_bus().set_unclaimed_fatal(*fatal);

  if (Status s = bhyve_init_platform(ctx); !s) return input(s.error());
  for (uint32_t i = 0; i < ctx.cpus; ++i) {
    auto v = ctx.vm->CreateVcpu(i);
    if (!v) return host(v.error());
    if (Status s = bhyve_init_vcpu(ctx, **v); !s) return host(s.error());
  }
  if (Status s = bhyve_init_platform_late(ctx); !s) return input(s.error());

  for (uint32_t i = 0; i < ctx.cpus; ++i) {
    if (Status s = bhyve_start_vcpu(ctx, *ctx.vm->vcpu(i)); !s) {
      return host(s.error());
    }
  }
  {
    SignalWatcher watcher(*ctx.vm);
    std::vector<std::thread> threads;
    for (uint32_t i = 0; i < ctx.cpus; ++i) {
      Vcpu* v = ctx.vm->vcpu(i);
      threads.emplace_back([&ctx, v] {
        Status s = v->Run();
        if (!s) {
          ctx.vm->RequestStop(ExitStatus::VmmError(fmt::format(
              "vCPU {}: {}", v->id(), s.error().message())));
        }
      });
    }
    for (auto& t : threads) t.join();
  }
  ExitStatus st = ctx.vm->exit_status().value_or(
      ExitStatus::VmmError("all vCPUs returned without a stop request"));
  switch (st.why) {
    case ExitStatus::Why::kPowerOff:
    case ExitStatus::Why::kGuestExit:
      break;
    case ExitStatus::Why::kReset:
      std::fprintf(stderr, "bhyverun: guest requested a reset\n");
      break;
    case ExitStatus::Why::kGuestCrash:
    case ExitStatus::Why::kVmmError:
      std::fprintf(stderr, "bhyverun: %s\n", st.message.c_str());
      break;
  }
  return st.code;
}

}  // namespace

int Main(int argc, char** argv) {
  Context ctx;
  Config& c = ctx.config;
  if (Status s = bhyve_init_config(c); !s) {
    std::fprintf(stderr, "bhyverun: %s\n", s.error().message().c_str());
    return ExitStatus::kExitVmmError;
  }
  enum { kOptDumpConfig = 1000, kOptMachdep = 2000 };
  std::vector<struct option> longopts = {
      {"cpus", required_argument, nullptr, 'c'},
      {"memory", required_argument, nullptr, 'm'},
      {"kernel", required_argument, nullptr, 'k'},
      {"append", required_argument, nullptr, 'a'},
      {"initrd", required_argument, nullptr, 'i'},
      {"config", required_argument, nullptr, 'f'},
      {"log-level", required_argument, nullptr, 'l'},
      {"dump-config", no_argument, nullptr, kOptDumpConfig},
      {"help", no_argument, nullptr, 'h'},
  };
  const MachdepOption* md_opts = bhyve_options_machdep();
  for (int i = 0; md_opts[i].name; ++i) {
    longopts.push_back({md_opts[i].name, required_argument, nullptr,
                        kOptMachdep + i});
  }
  longopts.push_back({nullptr, 0, nullptr, 0});
  bool dump = false;
  optind = 1;
  opterr = 0;
  int opt;
  while ((opt = getopt_long(argc, argv, ":c:m:k:a:i:o:f:l:h", longopts.data(),
                            nullptr)) != -1) {
    Status s = Ok();
    switch (opt) {
      case 'c': s = ParseCpuSpec(c, optarg); break;
      case 'm': s = c.Set("memory.size", optarg); break;
      case 'k': s = c.Set("kernel.path", optarg); break;
      case 'a': s = c.Set("kernel.cmdline", optarg); break;
      case 'i': s = c.Set("kernel.initrd", optarg); break;
      case 'o': s = c.ParseOption(optarg); break;
      case 'f': s = c.MergeJsonFile(optarg); break;
      case 'l': s = c.Set("log.level", optarg); break;
      case kOptDumpConfig: dump = true; break;
      case 'h': Usage(stdout); return 0;
      default:
        if (opt >= kOptMachdep && opt < kOptMachdep + 100) {
          s = c.Set(md_opts[opt - kOptMachdep].key, optarg);
          break;
        }
        return UsageError("unknown option '{}'", argv[optind - 1]);
      case ':':
        return UsageError("option '{}' needs a value",
                          optopt ? fmt::format("-{}", static_cast<char>(optopt))
                                 : std::string(argv[optind - 1]));
    }
    if (!s) return UsageError("{}", s.error().message());
  }
  if (optind < argc) {
    return UsageError("unexpected argument '{}'", argv[optind]);
  }
  // Before anything reads the config: a misspelt key would otherwise be
  // ignored and its default used.
  if (Status s = c.CheckKnownKeys(KnownConfigKeys()); !s) {
    return UsageError("{}", s.error().message());
  }
  if (Status s = ResolveTopology(ctx); !s) {
    return UsageError("{}", s.error().message());
  }
  auto level = c.GetString("log.level", "warn");
  if (!level) return UsageError("{}", level.error().message());
  if (Status s = SetLogLevel(*level); !s) {
    return UsageError("log.level: {}", s.error().message());
  }
  auto mem = c.GetSizeInRange("memory.size", 0, kMinMemory, UINT64_MAX);
  if (!mem) return UsageError("{}", mem.error().message());
  if (*mem < kMinMemory) {  // only when unset: the range starts there
    return UsageError("memory.size is not set");
  }
  if (*mem % kMemoryGranule != 0) {
    return UsageError("memory.size {} is not a multiple of 4 KiB", *mem);
  }
  ctx.memsize = *mem;
  if (dump) {
    std::printf("%s\n", c.DumpJson().c_str());
    return 0;
  }
  return RunVm(ctx);
}

}  // namespace strata::bhyverun
