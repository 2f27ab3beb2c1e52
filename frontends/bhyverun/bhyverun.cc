// strata — bhyverun main (machine independent).
#include "frontends/bhyverun/bhyverun.h"

#include <getopt.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <charconv>
#include <cstdio>
#include <thread>

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
  std::fprintf(
      f,
      "\n"
      "Config keys: cpus, cpu.sockets, cpu.cores, cpu.threads, cpu.max,\n"
      "  memory.size, kernel.path, kernel.cmdline, kernel.initrd, log.level,\n"
      "  bus.unclaimed_fatal, com1.backend (stdio|none)\n"
      "%s"
      "\n"
      "Exit status: 0 guest powered off; (V<<1)|1 guest wrote V to port 0xf4;\n"
      "  2 guest reset; 4 guest crashed; 6 VMM error; 8 usage/config error.\n",
      bhyve_usage_machdep());
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
// config so --dump-config shows what runs).
Status ResolveTopology(Context& ctx) {
  Config& c = ctx.config;
  bool topo_given = c.Has("cpu.sockets") || c.Has("cpu.cores") ||
                    c.Has("cpu.threads");
  uint64_t sockets = STRATA_TRY(c.GetUint("cpu.sockets", 1));
  uint64_t cores = STRATA_TRY(c.GetUint("cpu.cores", 1));
  uint64_t threads = STRATA_TRY(c.GetUint("cpu.threads", 1));
  if (sockets == 0 || cores == 0 || threads == 0) {
    return MakeError(Errc::kInvalidArgument,
                     "cpu.sockets, cpu.cores and cpu.threads must be >= 1");
  }
  uint64_t product = sockets * cores * threads;
  uint64_t cpus;
  if (c.Has("cpus")) {
    cpus = STRATA_TRY(c.GetUint("cpus"));
  } else {
    cpus = topo_given ? product : 1;
  }
  if (cpus == 0) {
    return MakeError(Errc::kInvalidArgument, "cpus must be at least 1");
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
  uint64_t maxcpus = STRATA_TRY(c.GetUint("cpu.max", cpus));
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
  auto fail = [](const Error& e) {
    std::fprintf(stderr, "bhyverun: %s\n", e.message().c_str());
    return ExitStatus::kExitVmmError;
  };
  auto usage_fail = [](const Error& e) {
    std::fprintf(stderr, "bhyverun: %s\n", e.message().c_str());
    return kExitUsage;
  };

  auto memsize = c.GetSize("memory.size");
  if (!memsize) return usage_fail(memsize.error());
  ctx.memsize = *memsize;
  if (ctx.memsize < (2u << 20)) {
    return usage_fail(MakeError(Errc::kInvalidArgument,
                                "memory.size {} is too small (minimum 2M)",
                                ctx.memsize));
  }
  auto machine = bhyve_machine_options(c);
  if (!machine) return usage_fail(machine.error());
  auto maxcpus = c.GetUint("cpu.max");
  if (!maxcpus) return usage_fail(maxcpus.error());

  VmOptions opts;
  opts.name = c.GetString("name", "strata").value_or("strata");
  opts.max_vcpus = static_cast<uint32_t>(*maxcpus);
  opts.machine = *machine;
  opts.topology.sockets = static_cast<uint32_t>(*c.GetUint("cpu.sockets"));
  opts.topology.cores = static_cast<uint32_t>(*c.GetUint("cpu.cores"));
  opts.topology.threads = static_cast<uint32_t>(*c.GetUint("cpu.threads"));
  auto vm = CreateKvmVm(opts);
  if (!vm) {
    return vm.error().code() == Errc::kOutOfRange ? usage_fail(vm.error())
                                                  : fail(vm.error());
  }
  ctx.vm = std::move(*vm);
  auto fatal = c.GetBool("bus.unclaimed_fatal", false);
  if (!fatal) return usage_fail(fatal.error());
  ctx.vm->pio_bus().set_unclaimed_fatal(*fatal);
  ctx.vm->mmio_bus().set_unclaimed_fatal(*fatal);

  if (Status s = bhyve_init_platform(ctx); !s) {
    return s.error().code() == Errc::kInvalidArgument ? usage_fail(s.error())
                                                      : fail(s.error());
  }
  for (uint32_t i = 0; i < ctx.cpus; ++i) {
    auto v = ctx.vm->CreateVcpu(i);
    if (!v) return fail(v.error());
    if (Status s = bhyve_init_vcpu(ctx, **v); !s) return fail(s.error());
  }
  if (Status s = bhyve_init_platform_late(ctx); !s) {
    Errc code = s.error().code();
    return code == Errc::kNotFound || code == Errc::kInvalidArgument
               ? usage_fail(s.error())
               : fail(s.error());
  }

  for (uint32_t i = 0; i < ctx.cpus; ++i) {
    if (Status s = bhyve_start_vcpu(ctx, *ctx.vm->vcpu(i)); !s) {
      return fail(s.error());
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
  if (Status s = ResolveTopology(ctx); !s) {
    return UsageError("{}", s.error().message());
  }
  auto level = c.GetString("log.level", "warn");
  if (!level) return UsageError("{}", level.error().message());
  if (Status s = SetLogLevel(*level); !s) {
    return UsageError("log.level: {}", s.error().message());
  }
  auto mem = c.GetSize("memory.size");
  if (!mem) return UsageError("{}", mem.error().message());
  if (dump) {
    std::printf("%s\n", c.DumpJson().c_str());
    return 0;
  }
  return RunVm(ctx);
}

}  // namespace strata::bhyverun
