// strata — bhyverun main (machine independent): options -> config ->
// machine -> run.
#include "frontends/bhyverun/bhyverun.h"

#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>

#include <atomic>
#include <charconv>
#include <cstdio>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "core/config.h"
#include "core/log.h"
#include "core/machine.h"

namespace strata::bhyverun {

namespace {

constexpr int kExitUsage = ExitStatus::kExitUsage;

// The one rule for a failure while setting up the VM (before any vCPU
// runs). What the user gave — options, config, kernel and initrd — is
// checked by code that reports a bad input by its error code: kInvalidArgument
// (malformed), kOutOfRange (well-formed but impossible: too large, outside
// guest RAM), kNotFound (names a file that does not exist) or kUnsupported
// (asks for something strata does not do, e.g. an a.out kernel). Those are
// usage errors (8). Every other code — kIo, kBusy, kAlreadyExists,
// kInternal, kGuestFault — is the host or strata failing: a VMM error (6).
// A step that only drives the host (opening /dev/kvm, creating the VM and
// its vCPUs) is a VMM error whatever its code; Machine::Create says which
// step failed, and checks the inputs those steps depend on beforehand, so
// a bad input never reaches them.
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

int SetupFailure(Machine::Step step, const Error& e) {
  std::fprintf(stderr, "bhyverun: %s\n", e.message().c_str());
  return step == Machine::Step::kInput && IsBadInput(e.code())
             ? kExitUsage
             : ExitStatus::kExitVmmError;
}

template <typename... Args>
int UsageError(fmt::format_string<Args...> f, Args&&... args) {
  std::fprintf(stderr, "bhyverun: %s\n",
               fmt::format(f, std::forward<Args>(args)...).c_str());
  std::fprintf(stderr, "Try 'bhyverun --help'.\n");
  return kExitUsage;
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
      "  -k, --kernel FILE     guest kernel: ELF32/ELF64, Multiboot v1, Linux bzImage\n"
      "  -a, --append ARGS     kernel command line\n"
      "  -i, --initrd FILE     initrd / Multiboot module\n"
      "  -o KEY=VALUE          set a config key (repeatable)\n"
      "  -f, --config FILE     merge a JSON config file\n"
      "  -l, --log-level LVL   trace, debug, info, warn (default), error,\n"
      "                        critical, off\n"
      "      --dump-config     print the effective config as JSON and exit\n"
      "      --dump-tables DIR write the machine's firmware tables for these\n"
      "                        options to DIR and exit without running a guest\n"
      "                        (pc: each ACPI table as DIR/<SIGNATURE>.dat for\n"
      "                        iasl -d, SMBIOS as DIR/smbios.bin for dmidecode\n"
      "                        --from-dump); needs no /dev/kvm\n"
      "      --save-on-signal FILE\n"
      "                        on SIGUSR2, pause the VM, write a snapshot of it\n"
      "                        to FILE (config, RAM, vCPUs, interrupt\n"
      "                        controller, devices) and exit with status 0 and\n"
      "                        the line 'bhyverun: snapshot saved to FILE' on\n"
      "                        stderr; if the snapshot fails the VM goes on\n"
      "                        (the reason on stderr). arm64 only for now\n"
      "      --restore FILE    run the VM saved in FILE where it stopped; the\n"
      "                        config comes from the file (no other machine\n"
      "                        options); the console is stdio as before\n"
      "      --dump-dtb FILE   write the machine's device tree blob for these\n"
      "                        options to FILE and exit (virt: for dtc -I dtb;\n"
      "                        \"auto\" GIC options as GICv3 with an ITS);\n"
      "                        needs no /dev/kvm\n"
      "  -h, --help            this text\n");
  for (const CommandLineOption& o : Machine::CommandLineOptions()) {
    // "--cpu-vendor V": every machine option takes one value.
    std::fprintf(f, "      --%-15s %s (sets %s)\n",
                 fmt::format("{} V", o.name).c_str(), o.help, o.key);
  }
  std::fprintf(f,
               "\nConfig keys (-o KEY=VALUE; a key not listed here or below "
               "is an error):\n");
  for (const ConfigKeyHelp& k : Machine::ConfigKeys()) {
    std::fprintf(f, "  %-20s %.*s\n", std::string(k.key).c_str(),
                 static_cast<int>(k.help.size()), k.help.data());
  }
  auto devices = Machine::DeviceHelp();
  if (devices) std::fprintf(f, "\n%s", devices->c_str());
  std::fprintf(
      f,
      "\n"
      "COM1 (com1.backend=stdio, the default) is the terminal: the guest's\n"
      "output goes to stdout and stdin is its input (a terminal is put in\n"
      "raw mode while the guest runs; ^C stops the VM). If stdout is not\n"
      "read fast enough, guest output is dropped, never the guest slowed.\n"
      "\n"
      "Exit status: 0 guest powered off; (V<<1)|1 guest wrote V to port 0xf4;\n"
      "  2 guest reset; 4 guest crashed; 6 VMM error; 8 usage/config error.\n");
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

// Turns SIGINT/SIGTERM/SIGHUP into a VM stop, from a thread of its own,
// and with --save-on-signal SIGUSR2 into a snapshot and a stop
// (Machine::Save). Created before the machine starts, so every thread the
// machine starts inherits the signals blocked and the watcher alone takes
// them.
class SignalWatcher {
 public:
  // *saved becomes true once a snapshot was written and the VM stopped for
  // it; read it after the watcher is gone (its thread joined): the VM
  // stops inside Save, before Save returns to the watcher.
  SignalWatcher(Machine& machine, std::optional<std::string> save_path,
                std::atomic<bool>* saved) {
    sigemptyset(&set_);
    sigaddset(&set_, SIGINT);
    sigaddset(&set_, SIGTERM);
    sigaddset(&set_, SIGHUP);
    if (save_path) sigaddset(&set_, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &set_, nullptr);
    thread_ = std::thread([this, &machine, save_path, saved] {
      const struct timespec tick = {0, 100 * 1000 * 1000};
      while (!done_.load()) {
        int sig = sigtimedwait(&set_, nullptr, &tick);
        if (sig == SIGUSR2 && save_path) {
          Status s = machine.Save(*save_path, /*then_stop=*/true);
          if (s) {
            saved->store(true);
          } else {
            std::fprintf(stderr, "bhyverun: %s\n", s.error().message().c_str());
          }
        } else if (sig > 0) {
          machine.RequestStop(ExitStatus::Stopped(
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

// --dump-tables: the tables a VM of `c` would get, one file each.
int DumpTables(const Config& c, const std::string& dir) {
  auto files = platform::FirmwareTables(c);
  if (!files) {
    std::fprintf(stderr, "bhyverun: --dump-tables: %s\n",
                 files.error().message().c_str());
    return IsBadInput(files.error().code()) ? kExitUsage
                                            : ExitStatus::kExitVmmError;
  }
  if (mkdir(dir.c_str(), 0777) != 0 && errno != EEXIST) {
    std::fprintf(stderr, "bhyverun: --dump-tables: cannot create '%s': %s\n",
                 dir.c_str(), std::strerror(errno));
    return kExitUsage;
  }
  for (const FirmwareFile& f : *files) {
    const std::string path = dir + "/" + f.name;
    FILE* out = std::fopen(path.c_str(), "wb");
    bool ok = out != nullptr &&
              std::fwrite(f.data.data(), 1, f.data.size(), out) == f.data.size();
    if (out != nullptr && std::fclose(out) != 0) ok = false;
    if (!ok) {
      std::fprintf(stderr, "bhyverun: --dump-tables: cannot write '%s': %s\n",
                   path.c_str(), std::strerror(errno));
      return kExitUsage;
    }
  }
  return 0;
}

// --dump-dtb: the device tree a VM of `c` would get.
int DumpDtb(const Config& c, const std::string& path) {
  auto files = platform::FirmwareTables(c);
  if (!files) {
    std::fprintf(stderr, "bhyverun: --dump-dtb: %s\n",
                 files.error().message().c_str());
    return IsBadInput(files.error().code()) ? kExitUsage
                                            : ExitStatus::kExitVmmError;
  }
  for (const FirmwareFile& f : *files) {
    if (!f.name.ends_with(".dtb")) continue;
    FILE* out = std::fopen(path.c_str(), "wb");
    bool ok = out != nullptr &&
              std::fwrite(f.data.data(), 1, f.data.size(), out) == f.data.size();
    if (out != nullptr && std::fclose(out) != 0) ok = false;
    if (!ok) {
      std::fprintf(stderr, "bhyverun: --dump-dtb: cannot write '%s': %s\n",
                   path.c_str(), std::strerror(errno));
      return kExitUsage;
    }
    return 0;
  }
  std::fprintf(stderr,
               "bhyverun: --dump-dtb: the %.*s machine has no device tree "
               "(its firmware tables: --dump-tables DIR)\n",
               static_cast<int>(Machine::Name().size()), Machine::Name().data());
  return kExitUsage;
}

// Runs a machine made from `config`, or with `restore` the one saved in
// that snapshot; with `save_path`, SIGUSR2 saves it there and ends it.
int Run(Config config, const std::optional<std::string>& restore,
        const std::optional<std::string>& save_path) {
  Machine::Step step = Machine::Step::kInput;
  auto machine =
      restore ? Machine::Restore(*restore, Machine::Options(), &step)
              : Machine::Create(std::move(config), Machine::Options(), &step);
  if (!machine) return SetupFailure(step, machine.error());
  ExitStatus st;
  std::atomic<bool> saved{false};
  {
    SignalWatcher watcher(**machine, save_path, &saved);
    // Start, then wait: the console runs (and a terminal stays raw) until
    // the VM stops, whichever way it stops.
    st = (*machine)->Run();
  }  // the watcher's thread is joined: a Save in progress has returned
  if (saved.load() && st.why == ExitStatus::Why::kStopped) {
    std::fprintf(stderr, "bhyverun: snapshot saved to %s\n",
                 save_path->c_str());
    return 0;
  }
  switch (st.why) {
    case ExitStatus::Why::kPowerOff:
    case ExitStatus::Why::kGuestExit:
      break;
    case ExitStatus::Why::kReset:
      std::fprintf(stderr, "bhyverun: guest requested a reset\n");
      break;
    case ExitStatus::Why::kGuestCrash:
    case ExitStatus::Why::kVmmError:
    case ExitStatus::Why::kStopped:
      std::fprintf(stderr, "bhyverun: %s\n", st.message.c_str());
      break;
  }
  return st.code;
}

}  // namespace

int Main(int argc, char** argv) {
  Config c;
  enum {
    kOptDumpConfig = 1000,
    kOptDumpTables,
    kOptDumpDtb,
    kOptSaveOnSignal,
    kOptRestore,
    kOptMachine = 2000
  };
  std::vector<struct option> longopts = {
      {"cpus", required_argument, nullptr, 'c'},
      {"memory", required_argument, nullptr, 'm'},
      {"kernel", required_argument, nullptr, 'k'},
      {"append", required_argument, nullptr, 'a'},
      {"initrd", required_argument, nullptr, 'i'},
      {"config", required_argument, nullptr, 'f'},
      {"log-level", required_argument, nullptr, 'l'},
      {"dump-config", no_argument, nullptr, kOptDumpConfig},
      {"dump-tables", required_argument, nullptr, kOptDumpTables},
      {"dump-dtb", required_argument, nullptr, kOptDumpDtb},
      {"save-on-signal", required_argument, nullptr, kOptSaveOnSignal},
      {"restore", required_argument, nullptr, kOptRestore},
      {"help", no_argument, nullptr, 'h'},
  };
  const auto machine_opts = Machine::CommandLineOptions();
  for (size_t i = 0; i < machine_opts.size(); ++i) {
    longopts.push_back({machine_opts[i].name, required_argument, nullptr,
                        kOptMachine + static_cast<int>(i)});
  }
  longopts.push_back({nullptr, 0, nullptr, 0});
  bool dump = false;
  std::optional<std::string> dump_tables;
  std::optional<std::string> dump_dtb;
  std::optional<std::string> save_path, restore;
  bool machine_options = false;  // anything that sets the config
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
      case kOptDumpTables: dump_tables = optarg; break;
      case kOptDumpDtb: dump_dtb = optarg; break;
      case kOptSaveOnSignal: save_path = optarg; break;
      case kOptRestore: restore = optarg; break;
      case 'h': Usage(stdout); return 0;
      default:
        if (opt >= kOptMachine &&
            opt < kOptMachine + static_cast<int>(machine_opts.size())) {
          s = c.Set(machine_opts[opt - kOptMachine].key, optarg);
          break;
        }
        return UsageError("unknown option '{}'", argv[optind - 1]);
      case ':':
        return UsageError("option '{}' needs a value",
                          optopt ? fmt::format("-{}", static_cast<char>(optopt))
                                 : std::string(argv[optind - 1]));
    }
    if (!s) return UsageError("{}", s.error().message());
    if (opt != kOptSaveOnSignal && opt != kOptRestore) machine_options = true;
  }
  if (optind < argc) {
    return UsageError("unexpected argument '{}'", argv[optind]);
  }
  if (restore) {
    // The machine is the snapshot's: its config is in the file.
    if (machine_options) {
      return UsageError("--restore takes the machine and its config from the "
                        "snapshot; only --save-on-signal goes with it");
    }
    return Run(Config(), restore, save_path);
  }
  // Defaults, then every check that needs no host — unknown keys (with the
  // devices' own), ranges, topology, device instances — before the config
  // is dumped or anything runs.
  if (Status s = Machine::PrepareConfig(c); !s) {
    if (!IsBadInput(s.error().code())) {
      return SetupFailure(Machine::Step::kHost, s.error());
    }
    return UsageError("{}", s.error().message());
  }
  if (dump) {
    std::printf("%s\n", c.DumpJson().c_str());
    return 0;
  }
  if (dump_tables) return DumpTables(c, *dump_tables);
  if (dump_dtb) return DumpDtb(c, *dump_dtb);
  return Run(std::move(c), std::nullopt, save_path);
}

}  // namespace strata::bhyverun
