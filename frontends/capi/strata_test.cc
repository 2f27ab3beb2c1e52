// The C ABI through its header (frontends/capi/strata.h), linked statically:
// error codes and messages for bad input without KVM, then machines on
// /dev/kvm — our io guest with handlers of the embedder's, and a tiny loop
// program placed in guest memory to pause, resume, stop, and to call
// forbidden things from an I/O handler.
#include "frontends/capi/strata.h"

#include <poll.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/kvm_testing.h"

namespace {

using namespace std::chrono_literals;

std::string Guest(const std::string& name) {
  const char* dir = std::getenv("TEST_SRCDIR");
  return std::string(dir ? dir : ".") + "/strata/tests/guests/amd64/" + name +
         ".elf";
}

// A machine handle freed at the end of the test.
struct Handle {
  strata_machine* m = strata_machine_new();
  ~Handle() {
    if (m != nullptr) {
      EXPECT_EQ(strata_machine_free(m), STRATA_OK) << Err();
    }
  }
  std::string Err() const { return strata_last_error(m); }
  operator strata_machine*() const { return m; }  // NOLINT
};

#define EXPECT_OK(h, call) EXPECT_EQ((call), STRATA_OK) << (h).Err()
#define ASSERT_OK(h, call) ASSERT_EQ((call), STRATA_OK) << (h).Err()

bool Contains(const std::string& s, const std::string& part) {
  return s.find(part) != std::string::npos;
}

// Waits until cond holds or the time is up.
template <typename F>
bool WaitFor(F cond, std::chrono::milliseconds limit = 60s) {
  const auto end = std::chrono::steady_clock::now() + limit;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > end) return false;
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

bool ExitFdReadable(strata_machine* m, int timeout_ms) {
  struct pollfd p = {strata_exit_fd(m), POLLIN, 0};
  return poll(&p, 1, timeout_ms) == 1 && (p.revents & POLLIN);
}

// ------------------------------------------------------------ no KVM --

TEST(CApi, VersionArchAndStatusNames) {
  EXPECT_EQ(strata_abi_version(), static_cast<uint32_t>(STRATA_ABI_VERSION));
  EXPECT_EQ(strata_abi_version() >> 16, 1u);
  EXPECT_STREQ(strata_arch(), "amd64");
  EXPECT_STREQ(strata_status_name(STRATA_OK), "STRATA_OK");
  EXPECT_STREQ(strata_status_name(STRATA_E_BUSY), "STRATA_E_BUSY");
  EXPECT_STREQ(strata_status_name(STRATA_E_INTERNAL), "STRATA_E_INTERNAL");
  EXPECT_STREQ(strata_status_name(static_cast<strata_status>(99)),
               "STRATA_E_?");
}

TEST(CApi, NullHandles) {
  uint64_t v = 0;
  size_t n = 0;
  char buf[8];
  strata_exit e;
  const std::vector<std::pair<std::string, strata_status>> calls = {
      {"strata_config_set", strata_config_set(nullptr, "cpus", "1")},
      {"strata_config_merge_json", strata_config_merge_json(nullptr, "{}")},
      {"strata_config_merge_json_file",
       strata_config_merge_json_file(nullptr, "/x")},
      {"strata_config_get", strata_config_get(nullptr, "a", buf, 8, &n)},
      {"strata_config_dump_json", strata_config_dump_json(nullptr, buf, 8, &n)},
      {"strata_set_kvm_device", strata_set_kvm_device(nullptr, "/dev/kvm")},
      {"strata_set_log_handler",
       strata_set_log_handler(nullptr, nullptr, nullptr)},
      {"strata_machine_create", strata_machine_create(nullptr)},
      {"strata_add_memory", strata_add_memory(nullptr, "x", 0, 4096)},
      {"strata_remove_memory", strata_remove_memory(nullptr, 0)},
      {"strata_read_memory", strata_read_memory(nullptr, 0, buf, 1)},
      {"strata_write_memory", strata_write_memory(nullptr, 0, buf, 1)},
      {"strata_get_register", strata_get_register(nullptr, 0, "pc", &v)},
      {"strata_set_register", strata_set_register(nullptr, 0, "pc", 0)},
      {"strata_add_io_handler",
       strata_add_io_handler(nullptr, STRATA_SPACE_PIO, 0x80, 1, nullptr,
                             nullptr, nullptr)},
      {"strata_remove_io_handler",
       strata_remove_io_handler(nullptr, STRATA_SPACE_PIO, 0x80)},
      {"strata_irq_line", strata_irq_line(nullptr, 4, 1)},
      {"strata_msi", strata_msi(nullptr, 0xfee00000, 0x30, 0, 0)},
      {"strata_start", strata_start(nullptr)},
      {"strata_wait", strata_wait(nullptr, &e)},
      {"strata_stop", strata_stop(nullptr)},
      {"strata_pause", strata_pause(nullptr)},
      {"strata_resume", strata_resume(nullptr)},
  };
  for (const auto& [name, status] : calls) {
    EXPECT_EQ(status, STRATA_E_INVALID_ARGUMENT) << name;
  }
  // The message is the last NULL-handle call's.
  EXPECT_STREQ(strata_last_error(nullptr),
               "strata_resume: the machine handle is NULL");
  EXPECT_EQ(strata_vcpu_count(nullptr), 0u);
  EXPECT_EQ(strata_exit_fd(nullptr), -1);
  EXPECT_EQ(strata_machine_free(nullptr), STRATA_OK);
}

TEST(CApi, ConfigKeysAndBuffers) {
  Handle h;
  ASSERT_NE(h.m, nullptr);
  EXPECT_STREQ(strata_last_error(h), "");
  EXPECT_OK(h, strata_config_set(h, "memory.size", "64M"));
  char buf[64];
  size_t needed = 0;
  EXPECT_OK(h, strata_config_get(h, "memory.size", buf, sizeof buf, &needed));
  EXPECT_STREQ(buf, "64M");
  EXPECT_EQ(needed, 4u);
  // Too small: nothing copied, the size needed said; the query form.
  std::strcpy(buf, "xx");
  EXPECT_EQ(strata_config_get(h, "memory.size", buf, 3, &needed),
            STRATA_E_OUT_OF_RANGE);
  EXPECT_STREQ(buf, "xx");
  EXPECT_EQ(needed, 4u);
  EXPECT_TRUE(Contains(h.Err(), "3 bytes, 4 are needed")) << h.Err();
  needed = 0;
  EXPECT_EQ(strata_config_get(h, "memory.size", nullptr, 0, &needed),
            STRATA_E_OUT_OF_RANGE);
  EXPECT_EQ(needed, 4u);
  EXPECT_EQ(strata_config_get(h, "memory.size", nullptr, 5, &needed),
            STRATA_E_INVALID_ARGUMENT);

  EXPECT_EQ(strata_config_get(h, "cpus", buf, sizeof buf, nullptr),
            STRATA_E_NOT_FOUND);
  EXPECT_TRUE(Contains(h.Err(), "strata_config_get: config key 'cpus'"))
      << h.Err();
  EXPECT_EQ(strata_config_set(h, "memory..size", "1"),
            STRATA_E_INVALID_ARGUMENT);
  EXPECT_TRUE(Contains(h.Err(), "memory..size")) << h.Err();
  EXPECT_EQ(strata_config_set(h, nullptr, "1"), STRATA_E_INVALID_ARGUMENT);
  EXPECT_EQ(h.Err(), "strata_config_set: key is NULL");
  // A value under an existing value is a conflict.
  EXPECT_EQ(strata_config_set(h, "memory.size.x", "1"),
            STRATA_E_INVALID_ARGUMENT);

  EXPECT_OK(h, strata_config_merge_json(h, R"({"cpus": 2, "x86": {"x2apic": false}})"));
  EXPECT_OK(h, strata_config_get(h, "cpus", buf, sizeof buf, nullptr));
  EXPECT_STREQ(buf, "2");
  EXPECT_EQ(strata_config_merge_json(h, R"({"cpus": )"),
            STRATA_E_INVALID_ARGUMENT);
  EXPECT_TRUE(Contains(h.Err(), "strata_config_merge_json")) << h.Err();
  EXPECT_EQ(strata_config_merge_json_file(h, "/nonexistent/strata.json"),
            STRATA_E_NOT_FOUND);
  EXPECT_TRUE(Contains(h.Err(), "/nonexistent/strata.json")) << h.Err();

  const std::string path =
      std::string(std::getenv("TEST_TMPDIR") ? std::getenv("TEST_TMPDIR")
                                             : "/tmp") +
      "/capi_config.json";
  std::ofstream(path) << R"({"kernel": {"cmdline": "from a file"}})";
  EXPECT_OK(h, strata_config_merge_json_file(h, path.c_str()));
  EXPECT_OK(h, strata_config_get(h, "kernel.cmdline", buf, sizeof buf,
                                 nullptr));
  EXPECT_STREQ(buf, "from a file");

  EXPECT_EQ(strata_config_dump_json(h, nullptr, 0, &needed),
            STRATA_E_OUT_OF_RANGE);
  std::string json(needed, '\0');
  EXPECT_OK(h, strata_config_dump_json(h, json.data(), json.size(), nullptr));
  EXPECT_TRUE(Contains(json, "\"x2apic\": \"false\"")) << json;
}

TEST(CApi, MachineCallsBeforeCreationAreBusy) {
  Handle h;
  uint64_t v;
  char b[4];
  strata_exit e;
  EXPECT_EQ(strata_read_memory(h, 0, b, 1), STRATA_E_BUSY);
  EXPECT_EQ(h.Err(),
            "strata_read_memory: the machine is not created yet "
            "(strata_machine_create)");
  EXPECT_EQ(strata_write_memory(h, 0, b, 1), STRATA_E_BUSY);
  EXPECT_EQ(strata_add_memory(h, "x", 0x100000000, 4096), STRATA_E_BUSY);
  EXPECT_EQ(strata_get_register(h, 0, "pc", &v), STRATA_E_BUSY);
  EXPECT_EQ(strata_add_io_handler(h, STRATA_SPACE_PIO, 0x80, 1, nullptr,
                                  nullptr, nullptr),
            STRATA_E_BUSY);
  EXPECT_EQ(strata_irq_line(h, 4, 1), STRATA_E_BUSY);
  EXPECT_EQ(strata_start(h), STRATA_E_BUSY);
  EXPECT_EQ(strata_wait(h, &e), STRATA_E_BUSY);
  EXPECT_EQ(strata_pause(h), STRATA_E_BUSY);
  EXPECT_EQ(strata_resume(h), STRATA_E_BUSY);
  EXPECT_EQ(strata_stop(h), STRATA_E_BUSY);
  EXPECT_EQ(strata_vcpu_count(h), 0u);
  EXPECT_EQ(strata_exit_fd(h), -1);
}

// Config errors are found before the host is touched (no KVM needed), and
// the handle stays usable.
TEST(CApi, BadConfigFailsCreateWithAClearMessage) {
  Handle h;
  EXPECT_OK(h, strata_config_set(h, "memory.sise", "64M"));
  EXPECT_EQ(strata_machine_create(h), STRATA_E_INVALID_ARGUMENT);
  EXPECT_TRUE(Contains(h.Err(), "unknown config key 'memory.sise' (did you "
                                "mean 'memory.size'?)"))
      << h.Err();
  EXPECT_TRUE(Contains(h.Err(), "strata_machine_create: ")) << h.Err();

  Handle g;
  EXPECT_OK(g, strata_config_set(g, "cpus", "0"));
  EXPECT_EQ(strata_machine_create(g), STRATA_E_OUT_OF_RANGE);
  EXPECT_TRUE(Contains(g.Err(), "cpus")) << g.Err();
  EXPECT_OK(g, strata_config_set(g, "platform.x.device", "no-such-model"));
  EXPECT_OK(g, strata_config_set(g, "cpus", "1"));
  EXPECT_EQ(strata_machine_create(g), STRATA_E_INVALID_ARGUMENT);
  EXPECT_TRUE(Contains(g.Err(), "no-such-model")) << g.Err();
  EXPECT_EQ(strata_vcpu_count(g), 0u);  // still configuring

  Handle k;
  EXPECT_OK(k, strata_set_kvm_device(k, "/nonexistent/kvm"));
  EXPECT_EQ(strata_machine_create(k), STRATA_E_NOT_FOUND);
  EXPECT_TRUE(Contains(k.Err(), "/nonexistent/kvm")) << k.Err();
}

// Each thread sees the message of its own last failure.
TEST(CApi, LastErrorIsPerThread) {
  Handle h;
  EXPECT_EQ(strata_config_set(h, "a..b", "1"), STRATA_E_INVALID_ARGUMENT);
  const std::string mine = h.Err();
  std::string theirs, theirs_before;
  std::thread t([&] {
    theirs_before = strata_last_error(h);
    EXPECT_EQ(strata_config_merge_json(h, "[1]"), STRATA_E_INVALID_ARGUMENT);
    theirs = strata_last_error(h);
  });
  t.join();
  EXPECT_EQ(theirs_before, "");
  EXPECT_NE(theirs, mine);
  EXPECT_TRUE(Contains(theirs, "strata_config_merge_json")) << theirs;
  EXPECT_EQ(h.Err(), mine);
  // A successful call leaves it.
  EXPECT_OK(h, strata_config_set(h, "cpus", "1"));
  EXPECT_EQ(h.Err(), mine);
}

// ---------------------------------------------------------- with KVM --

// A loop placed in guest RAM by the test (amd64, 32-bit protected mode, the
// entry state the pc machine gives its built-in ELF32 guest):
//   0x8000: mov edx, 0x80 ; 0x8005: inc eax ; out dx, eax ; jmp 0x8005
constexpr uint64_t kLoopAddr = 0x8000;
constexpr uint64_t kLoopPort = 0x80;
const uint8_t kLoop[] = {0xba, 0x80, 0x00, 0x00, 0x00,  // mov edx, 0x80
                         0x40,                          // inc eax
                         0xef,                          // out dx, eax
                         0xeb, 0xfc};                   // jmp 0x8005

// What a handler saw.
struct Seen {
  std::atomic<uint64_t> writes{0};
  std::atomic<uint64_t> reads{0};
  std::atomic<uint64_t> last{0};
  std::atomic<uint32_t> last_size{0};
  std::atomic<uint32_t> not_vcpu0{0};
};

void CountWrite(void* opaque, uint32_t vcpu, uint64_t, uint32_t size,
                uint64_t value) {
  auto* s = static_cast<Seen*>(opaque);
  if (vcpu != 0) s->not_vcpu0++;
  s->last = value;
  s->last_size = size;
  s->writes++;
}

uint64_t CountRead(void* opaque, uint32_t vcpu, uint64_t, uint32_t size) {
  auto* s = static_cast<Seen*>(opaque);
  if (vcpu != 0) s->not_vcpu0++;
  s->reads++;
  return ~uint64_t{0};
}

uint64_t CountReadZero(void* opaque, uint32_t vcpu, uint64_t, uint32_t size) {
  CountRead(opaque, vcpu, 0, size);
  return 0;
}

void Configure(Handle& h, const char* cpus = "1") {
  EXPECT_OK(h, strata_config_set(h, "memory.size", "64M"));
  EXPECT_OK(h, strata_config_set(h, "com1.backend", "none"));
  EXPECT_OK(h, strata_config_set(h, "cpus", cpus));
}

// A created machine running the loop on vCPU 0, its port counted in seen.
void CreateLoop(Handle& h, Seen* seen, const char* cpus = "1") {
  Configure(h, cpus);
  ASSERT_OK(h, strata_machine_create(h));
  ASSERT_OK(h, strata_write_memory(h, kLoopAddr, kLoop, sizeof kLoop));
  ASSERT_OK(h, strata_set_register(h, 0, "pc", kLoopAddr));
  ASSERT_OK(h, strata_set_register(h, 0, "rax", 0));
  if (seen != nullptr) {
    ASSERT_OK(h, strata_add_io_handler(h, STRATA_SPACE_PIO, kLoopPort, 4,
                                       nullptr, CountWrite, seen));
  }
}

TEST(CApiKvm, RegistersRoundTrip) {
  STRATA_REQUIRE_KVM();
  Handle h;
  Configure(h, "2");
  ASSERT_OK(h, strata_machine_create(h));
  EXPECT_EQ(strata_vcpu_count(h), 2u);
  EXPECT_EQ(strata_config_set(h, "cpus", "1"), STRATA_E_BUSY);
  EXPECT_EQ(strata_machine_create(h), STRATA_E_BUSY);

  EXPECT_OK(h, strata_set_register(h, 0, "rbx", 0x1234abcd5678ull));
  uint64_t v = 0;
  EXPECT_OK(h, strata_get_register(h, 0, "RBX", &v));
  EXPECT_EQ(v, 0x1234abcd5678ull);
  EXPECT_OK(h, strata_set_register(h, 0, "pc", 0x9000));
  EXPECT_OK(h, strata_get_register(h, 0, "rip", &v));
  EXPECT_EQ(v, 0x9000u);
  EXPECT_OK(h, strata_set_register(h, 1, "sp", 0x7000));
  EXPECT_OK(h, strata_get_register(h, 1, "rsp", &v));
  EXPECT_EQ(v, 0x7000u);
  // The Multiboot entry state the loader gave the boot vCPU: CR0.PE.
  EXPECT_OK(h, strata_get_register(h, 0, "cr0", &v));
  EXPECT_EQ(v & 1, 1u);

  EXPECT_EQ(strata_get_register(h, 0, "rxa", &v), STRATA_E_NOT_FOUND);
  EXPECT_TRUE(Contains(h.Err(), "no register 'rxa' on amd64 (did you mean "
                                "'rax'?)"))
      << h.Err();
  EXPECT_EQ(strata_set_register(h, 0, "program_counter", 0),
            STRATA_E_NOT_FOUND);
  EXPECT_TRUE(Contains(h.Err(), "strata_register_name lists them")) << h.Err();
  EXPECT_EQ(strata_get_register(h, 2, "pc", &v), STRATA_E_OUT_OF_RANGE);
  EXPECT_TRUE(Contains(h.Err(), "no vCPU 2: the machine has vCPUs 0..1"))
      << h.Err();
  EXPECT_EQ(strata_get_register(h, 0, nullptr, &v), STRATA_E_INVALID_ARGUMENT);
  EXPECT_EQ(strata_get_register(h, 0, "pc", nullptr),
            STRATA_E_INVALID_ARGUMENT);

  std::vector<std::string> names;
  for (uint32_t i = 0; strata_register_name(i) != nullptr; ++i) {
    names.push_back(strata_register_name(i));
  }
  ASSERT_EQ(names.size(), 24u);
  EXPECT_EQ(names.front(), "rax");
  EXPECT_EQ(names.back(), "efer");
  // Every listed name works.
  for (const std::string& n : names) {
    EXPECT_OK(h, strata_get_register(h, 0, n.c_str(), &v)) << n;
  }
}

TEST(CApiKvm, MemoryAddReadWriteRemove) {
  STRATA_REQUIRE_KVM();
  Handle h;
  Configure(h);
  ASSERT_OK(h, strata_machine_create(h));
  char buf[16] = {};
  EXPECT_OK(h, strata_write_memory(h, 0x8000, "hello", 6));
  EXPECT_OK(h, strata_read_memory(h, 0x8000, buf, 6));
  EXPECT_STREQ(buf, "hello");
  EXPECT_OK(h, strata_read_memory(h, 0x8000, nullptr, 0));
  EXPECT_EQ(strata_read_memory(h, (64 << 20) - 4, buf, 8),
            STRATA_E_OUT_OF_RANGE);
  EXPECT_TRUE(Contains(h.Err(), "is not guest RAM")) << h.Err();
  EXPECT_EQ(strata_read_memory(h, 0x8000, nullptr, 4),
            STRATA_E_INVALID_ARGUMENT);

  const uint64_t high = 0x100000000;
  EXPECT_EQ(strata_read_memory(h, high, buf, 1), STRATA_E_OUT_OF_RANGE);
  EXPECT_OK(h, strata_add_memory(h, "extra", high, 2 << 20));
  EXPECT_OK(h, strata_write_memory(h, high + 4090, "across", 7));
  EXPECT_OK(h, strata_read_memory(h, high + 4090, buf, 7));
  EXPECT_STREQ(buf, "across");
  EXPECT_EQ(strata_add_memory(h, "again", high + 4096, 4096),
            STRATA_E_ALREADY_EXISTS);
  EXPECT_EQ(strata_add_memory(h, "odd", 0x200000000, 100),
            STRATA_E_INVALID_ARGUMENT);
  EXPECT_OK(h, strata_remove_memory(h, high));
  EXPECT_EQ(strata_read_memory(h, high, buf, 1), STRATA_E_OUT_OF_RANGE);
  EXPECT_EQ(strata_remove_memory(h, high), STRATA_E_NOT_FOUND);
}

TEST(CApiKvm, InterruptsAndMsis) {
  STRATA_REQUIRE_KVM();
  Handle h;
  Configure(h);
  ASSERT_OK(h, strata_machine_create(h));
  EXPECT_OK(h, strata_irq_line(h, 4, 1));
  EXPECT_OK(h, strata_irq_line(h, 4, 0));
  EXPECT_EQ(strata_irq_line(h, 24, 1), STRATA_E_OUT_OF_RANGE);
  EXPECT_TRUE(Contains(h.Err(), "not a GSI of the pc machine (0-23)"))
      << h.Err();
  EXPECT_OK(h, strata_msi(h, 0xfee00000, 0x30, 0, 0));
  EXPECT_EQ(strata_msi(h, 0xfee00000, 0x30, STRATA_MSI_DEVID, 7),
            STRATA_E_UNSUPPORTED);
  EXPECT_TRUE(Contains(h.Err(), "amd64 MSIs carry no device id")) << h.Err();
  EXPECT_EQ(strata_msi(h, 0xfee00000, 0x30, 4, 0), STRATA_E_INVALID_ARGUMENT);
}

// The io guest checks that port 0x9f0 reads all-ones and ignores writes and
// that MMIO 0xfe000000 reads zero and ignores writes: handlers there keep
// it passing and see every access. The config comes from a JSON file.
TEST(CApiKvm, BootsTheIoGuestWithHandlers) {
  STRATA_REQUIRE_KVM();
  Handle h;
  const std::string path = std::string(std::getenv("TEST_TMPDIR")) + "/io.json";
  std::ofstream(path) << "{\"kernel\": {\"path\": \"" << Guest("io")
                      << "\"}, \"memory\": {\"size\": \"64M\"}, "
                         "\"com1\": {\"backend\": \"none\"}}";
  ASSERT_OK(h, strata_config_merge_json_file(h, path.c_str()));
  ASSERT_OK(h, strata_machine_create(h));
  // The effective config: defaults filled in.
  char buf[64];
  EXPECT_OK(h, strata_config_get(h, "cpus", buf, sizeof buf, nullptr));
  EXPECT_STREQ(buf, "1");

  Seen port, mmio;
  ASSERT_OK(h, strata_add_io_handler(h, STRATA_SPACE_PIO, 0x9f0, 4, CountRead,
                                     CountWrite, &port));
  ASSERT_OK(h, strata_add_io_handler(h, STRATA_SPACE_MMIO, 0xfe000000, 4096,
                                     CountReadZero, CountWrite, &mmio));
  // Overlaps are refused, naming what is there.
  EXPECT_EQ(strata_add_io_handler(h, STRATA_SPACE_PIO, 0x3f8, 1, CountRead,
                                  nullptr, &port),
            STRATA_E_ALREADY_EXISTS);
  EXPECT_TRUE(Contains(h.Err(), "com1")) << h.Err();
  EXPECT_EQ(strata_add_io_handler(h, STRATA_SPACE_PIO, 0xffff, 2, CountRead,
                                  nullptr, &port),
            STRATA_E_OUT_OF_RANGE);
  EXPECT_EQ(strata_add_io_handler(h, STRATA_SPACE_PIO, 0x9f8, 1, nullptr,
                                  nullptr, nullptr),
            STRATA_E_INVALID_ARGUMENT);
  EXPECT_EQ(strata_add_io_handler(h, static_cast<strata_space>(7), 0x9f8, 1,
                                  CountRead, nullptr, nullptr),
            STRATA_E_INVALID_ARGUMENT);
  EXPECT_EQ(strata_remove_io_handler(h, STRATA_SPACE_PIO, 0x3f8),
            STRATA_E_NOT_FOUND);  // the machine's COM1 is not ours

  ASSERT_OK(h, strata_start(h));
  EXPECT_EQ(strata_start(h), STRATA_E_BUSY);
  ASSERT_TRUE(ExitFdReadable(h, 120000)) << "the guest did not stop in 120 s";
  strata_exit e{};
  ASSERT_OK(h, strata_wait(h, &e));
  EXPECT_EQ(e.kind, STRATA_EXIT_GUEST_EXIT) << e.message;
  EXPECT_EQ(e.status, 1) << "the io guest reported failures";
  EXPECT_STREQ(e.message, "");
  strata_exit again{};
  ASSERT_OK(h, strata_wait(h, &again));
  EXPECT_EQ(again.kind, e.kind);
  EXPECT_EQ(again.status, e.status);

  // inb, inw, inl, outl 0, inl; read32, read8, write32, read32.
  EXPECT_EQ(port.reads, 4u);
  EXPECT_EQ(port.writes, 1u);
  EXPECT_EQ(port.last, 0u);
  EXPECT_EQ(port.last_size, 4u);
  EXPECT_EQ(mmio.reads, 3u);
  EXPECT_EQ(mmio.writes, 1u);
  EXPECT_EQ(mmio.last, 0xffffffffu);
  EXPECT_EQ(port.not_vcpu0 + mmio.not_vcpu0, 0u);
  // Stopped: registers readable, pause refused, stop a no-op.
  uint64_t v;
  EXPECT_OK(h, strata_get_register(h, 0, "pc", &v));
  EXPECT_EQ(strata_pause(h), STRATA_E_BUSY);
  EXPECT_OK(h, strata_stop(h));
}

TEST(CApiKvm, PauseResumeWhileRunning) {
  STRATA_REQUIRE_KVM();
  Handle h;
  Seen seen;
  CreateLoop(h, &seen, "2");
  ASSERT_OK(h, strata_start(h));
  ASSERT_TRUE(WaitFor([&] { return seen.writes >= 50; }));
  uint64_t v = 0;
  // Running: each access freezes the vCPU for a moment.
  EXPECT_OK(h, strata_get_register(h, 0, "rax", &v));
  EXPECT_GE(v, 50u);

  ASSERT_OK(h, strata_pause(h));
  const uint64_t at_pause = seen.writes;
  std::this_thread::sleep_for(200ms);
  EXPECT_EQ(seen.writes, at_pause) << "a vCPU ran while paused";
  // Parked between two instructions, its last exit completed: EAX is the
  // value last written, plus one if the kick came right after the inc.
  uint64_t pc = 0;
  EXPECT_OK(h, strata_get_register(h, 0, "rax", &v));
  EXPECT_OK(h, strata_get_register(h, 0, "pc", &pc));
  const uint64_t last = seen.last;
  if (pc == kLoopAddr + 6) {  // before the out
    EXPECT_EQ(v, last + 1);
  } else {  // before the jmp (the out completed) or the inc
    EXPECT_TRUE(pc == kLoopAddr + 7 || pc == kLoopAddr + 5) << pc;
    EXPECT_EQ(v, last) << "pc " << pc;
  }
  uint8_t code[sizeof kLoop];
  EXPECT_OK(h, strata_read_memory(h, kLoopAddr, code, sizeof code));
  EXPECT_EQ(std::memcmp(code, kLoop, sizeof code), 0);
  EXPECT_OK(h, strata_write_memory(h, 0x9000, "x", 1));
  EXPECT_OK(h, strata_irq_line(h, 5, 1));
  EXPECT_OK(h, strata_irq_line(h, 5, 0));
  EXPECT_OK(h, strata_msi(h, 0xfee00000, 0x31, 0, 0));
  Seen other;
  EXPECT_OK(h, strata_add_io_handler(h, STRATA_SPACE_PIO, 0x90, 1, nullptr,
                                     CountWrite, &other));
  EXPECT_OK(h, strata_remove_io_handler(h, STRATA_SPACE_PIO, 0x90));
  EXPECT_EQ(strata_pause(h), STRATA_E_BUSY);
  EXPECT_EQ(h.Err(), "strata_pause: the machine is paused already");
  EXPECT_EQ(strata_add_memory(h, "x", 0x100000000, 4096), STRATA_E_BUSY);
  strata_exit e;
  EXPECT_EQ(strata_wait(h, &e), STRATA_E_BUSY);
  // Written while paused, seen by the guest when it continues.
  EXPECT_OK(h, strata_set_register(h, 0, "rax", 0x40000000));

  ASSERT_OK(h, strata_resume(h));
  EXPECT_EQ(strata_resume(h), STRATA_E_BUSY);
  EXPECT_TRUE(WaitFor([&] { return seen.writes >= at_pause + 50; }));
  EXPECT_GT(seen.last.load(), 0x40000000u);
  EXPECT_EQ(seen.last_size, 4u);
  EXPECT_EQ(seen.not_vcpu0, 0u);

  EXPECT_FALSE(ExitFdReadable(h, 0));
  ASSERT_OK(h, strata_stop(h));
  ASSERT_TRUE(ExitFdReadable(h, 60000));
  ASSERT_OK(h, strata_wait(h, &e));
  EXPECT_EQ(e.kind, STRATA_EXIT_STOPPED);
  EXPECT_EQ(e.status, 0);
  EXPECT_STREQ(e.message, "");
}

// Pausing, resuming, reading registers and raising interrupts from several
// threads at once while the vCPU runs (for ThreadSanitizer, and against
// deadlocks between the pause thread, VcpuLocks and the read lock).
TEST(CApiKvm, ConcurrentCallsWhileRunning) {
  STRATA_REQUIRE_KVM();
  Handle h;
  Seen seen;
  CreateLoop(h, &seen, "2");
  ASSERT_OK(h, strata_start(h));
  ASSERT_TRUE(WaitFor([&] { return seen.writes >= 10; }));
  std::atomic<bool> done{false};
  std::atomic<int> failures{0};
  auto loop = [&](auto body) {
    return std::thread([&, body] {
      while (!done) {
        if (!body()) failures++;
      }
    });
  };
  std::vector<std::thread> threads;
  threads.push_back(loop([&] {
    uint64_t v;
    return strata_get_register(h, 0, "rax", &v) == STRATA_OK;
  }));
  threads.push_back(loop([&] {  // the same vCPU from a second thread
    uint64_t v;
    return strata_get_register(h, 0, "rbx", &v) == STRATA_OK &&
           strata_set_register(h, 0, "rbx", v + 1) == STRATA_OK;
  }));
  threads.push_back(loop([&] {
    uint64_t v;
    return strata_get_register(h, 1, "pc", &v) == STRATA_OK;
  }));
  threads.push_back(loop([&] {
    uint8_t b;
    return strata_irq_line(h, 6, 1) == STRATA_OK &&
           strata_irq_line(h, 6, 0) == STRATA_OK &&
           strata_read_memory(h, kLoopAddr, &b, 1) == STRATA_OK && b == 0xba;
  }));
  threads.push_back(loop([&] {
    const strata_status p = strata_pause(h);
    if (p != STRATA_OK) return false;
    std::this_thread::sleep_for(1ms);
    return strata_resume(h) == STRATA_OK;
  }));
  std::this_thread::sleep_for(1500ms);
  done = true;
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures, 0) << h.Err();
  const uint64_t before = seen.writes;
  EXPECT_TRUE(WaitFor([&] { return seen.writes > before; }))
      << "the vCPU does not run after the last resume";
  ASSERT_OK(h, strata_stop(h));
  strata_exit e;
  ASSERT_OK(h, strata_wait(h, &e));
  EXPECT_EQ(e.kind, STRATA_EXIT_STOPPED);
}

// What a handler may call, and that everything else is refused there
// (STRATA_E_BUSY, the process does not abort).
struct Probe {
  strata_machine* m = nullptr;
  std::atomic<bool> ran{false};
  std::map<std::string, strata_status> status;
  std::map<std::string, std::string> message;
  uint64_t own_rax = 0, value = 0;
  uint8_t code0 = 0;
};

void ProbeWrite(void* opaque, uint32_t vcpu, uint64_t, uint32_t,
                uint64_t value) {
  auto* p = static_cast<Probe*>(opaque);
  if (p->ran.load()) return;
  strata_machine* m = p->m;
  auto note = [&](const char* what, strata_status s) {
    p->status[what] = s;
    p->message[what] = strata_last_error(m);
  };
  strata_exit e;
  uint64_t v;
  note("pause", strata_pause(m));
  note("resume", strata_resume(m));
  note("wait", strata_wait(m, &e));
  note("free", strata_machine_free(m));
  note("remove_io_handler", strata_remove_io_handler(m, STRATA_SPACE_PIO,
                                                     kLoopPort));
  note("add_memory", strata_add_memory(m, "x", 0x100000000, 4096));
  note("remove_memory", strata_remove_memory(m, 0));
  note("start", strata_start(m));
  note("create", strata_machine_create(m));
  note("config_set", strata_config_set(m, "cpus", "1"));
  note("get_register other", strata_get_register(m, 1, "rax", &v));
  note("set_register other", strata_set_register(m, 1, "rax", 0));
  // Allowed.
  p->value = value;
  note("get_register own", strata_get_register(m, vcpu, "rax", &p->own_rax));
  note("set_register own", strata_set_register(m, vcpu, "rbx", 7));
  note("read_memory", strata_read_memory(m, kLoopAddr, &p->code0, 1));
  note("write_memory", strata_write_memory(m, 0x9000, "y", 1));
  note("irq_line", strata_irq_line(m, 7, 1));
  note("msi", strata_msi(m, 0xfee00000, 0x32, 0, 0));
  note("add_io_handler", strata_add_io_handler(m, STRATA_SPACE_PIO, 0x91, 1,
                                               nullptr, CountWrite, nullptr));
  char buf[16];
  note("config_get", strata_config_get(m, "cpus", buf, sizeof buf, nullptr));
  note("stop", strata_stop(m));
  p->ran = true;
}

TEST(CApiKvm, HandlersMayNotWaitForVcpus) {
  STRATA_REQUIRE_KVM();
  Handle h;
  CreateLoop(h, nullptr, "2");
  Probe probe;
  probe.m = h;
  ASSERT_OK(h, strata_add_io_handler(h, STRATA_SPACE_PIO, kLoopPort, 4,
                                     nullptr, ProbeWrite, &probe));
  uint64_t v;
  EXPECT_EQ(strata_get_register(h, 9, "pc", &v), STRATA_E_OUT_OF_RANGE);
  const std::string main_error = h.Err();
  ASSERT_OK(h, strata_start(h));
  ASSERT_TRUE(ExitFdReadable(h, 60000));
  strata_exit e;
  ASSERT_OK(h, strata_wait(h, &e));
  EXPECT_EQ(e.kind, STRATA_EXIT_STOPPED) << e.message;
  ASSERT_TRUE(probe.ran);

  for (const char* busy :
       {"pause", "resume", "wait", "free", "remove_io_handler", "add_memory",
        "remove_memory", "start", "create", "config_set"}) {
    EXPECT_EQ(probe.status[busy], STRATA_E_BUSY) << busy;
    EXPECT_TRUE(Contains(probe.message[busy], "on the thread of vCPU 0"))
        << busy << ": " << probe.message[busy];
  }
  for (const char* other : {"get_register other", "set_register other"}) {
    EXPECT_EQ(probe.status[other], STRATA_E_BUSY) << other;
    EXPECT_TRUE(Contains(probe.message[other],
                         "vCPU 1's registers from the thread of vCPU 0"))
        << probe.message[other];
  }
  for (const char* ok :
       {"get_register own", "set_register own", "read_memory", "write_memory",
        "irq_line", "msi", "add_io_handler", "config_get", "stop"}) {
    EXPECT_EQ(probe.status[ok], STRATA_OK) << ok << ": " << probe.message[ok];
  }
  EXPECT_EQ(probe.own_rax, probe.value);
  EXPECT_EQ(probe.code0, 0xba);
  uint64_t rbx = 0;
  EXPECT_OK(h, strata_get_register(h, 0, "rbx", &rbx));
  EXPECT_EQ(rbx, 7u);
  // The handler's failures are its thread's, not this one's.
  EXPECT_EQ(h.Err(), main_error);
}

TEST(CApiKvm, StopWhilePaused) {
  STRATA_REQUIRE_KVM();
  Handle h;
  Seen seen;
  CreateLoop(h, &seen);
  ASSERT_OK(h, strata_start(h));
  ASSERT_TRUE(WaitFor([&] { return seen.writes >= 10; }));
  ASSERT_OK(h, strata_pause(h));
  const uint64_t at_pause = seen.writes;
  ASSERT_OK(h, strata_stop(h));
  ASSERT_TRUE(ExitFdReadable(h, 60000));
  strata_exit e;
  ASSERT_OK(h, strata_wait(h, &e));
  EXPECT_EQ(e.kind, STRATA_EXIT_STOPPED);
  EXPECT_EQ(seen.writes, at_pause) << "the guest ran again after the stop";
  EXPECT_EQ(strata_resume(h), STRATA_E_BUSY);
}

TEST(CApiKvm, FreeStopsARunningOrPausedMachine) {
  STRATA_REQUIRE_KVM();
  for (bool pause : {false, true}) {
    Seen seen;
    strata_machine* m = nullptr;
    {
      Handle h;
      CreateLoop(h, &seen);
      ASSERT_OK(h, strata_start(h));
      ASSERT_TRUE(WaitFor([&] { return seen.writes >= 10; }));
      if (pause) {
        ASSERT_OK(h, strata_pause(h));
      }
      m = h.m;
      h.m = nullptr;
    }
    const auto t0 = std::chrono::steady_clock::now();
    ASSERT_EQ(strata_machine_free(m), STRATA_OK);
    EXPECT_LT(std::chrono::steady_clock::now() - t0, 30s);
    const uint64_t after = seen.writes;
    std::this_thread::sleep_for(50ms);
    EXPECT_EQ(seen.writes, after) << "a handler was called after free";
  }
}

// A handler in progress when it is removed: remove waits for it.
struct Slow {
  std::atomic<bool> in_call{false};
  std::atomic<bool> slow{true};
  std::atomic<uint64_t> calls{0};
};

void SlowWrite(void* opaque, uint32_t, uint64_t, uint32_t, uint64_t) {
  auto* s = static_cast<Slow*>(opaque);
  s->calls++;
  if (!s->slow) return;
  s->in_call = true;
  std::this_thread::sleep_for(300ms);
  s->in_call = false;
}

TEST(CApiKvm, RemoveIoHandlerWaitsForCallsInProgress) {
  STRATA_REQUIRE_KVM();
  Handle h;
  CreateLoop(h, nullptr);
  auto* slow = new Slow;
  ASSERT_OK(h, strata_add_io_handler(h, STRATA_SPACE_PIO, kLoopPort, 4,
                                     nullptr, SlowWrite, slow));
  ASSERT_OK(h, strata_start(h));
  ASSERT_TRUE(WaitFor([&] { return slow->in_call.load(); }));
  ASSERT_OK(h, strata_remove_io_handler(h, STRATA_SPACE_PIO, kLoopPort));
  EXPECT_FALSE(slow->in_call) << "remove returned during a call";
  const uint64_t calls = slow->calls;
  delete slow;  // what remove makes safe
  // Later writes are unclaimed; the guest keeps running.
  std::this_thread::sleep_for(100ms);
  EXPECT_EQ(strata_remove_io_handler(h, STRATA_SPACE_PIO, kLoopPort),
            STRATA_E_NOT_FOUND);
  EXPECT_GE(calls, 1u);
  ASSERT_OK(h, strata_stop(h));
  strata_exit e;
  ASSERT_OK(h, strata_wait(h, &e));
  EXPECT_EQ(e.kind, STRATA_EXIT_STOPPED);
}

// The machine's log goes to the embedder's function: the loop's port is
// unclaimed (no handler), which the bus warns about once.
struct Log {
  std::mutex mu;
  std::vector<std::pair<strata_log_level, std::string>> lines;
};

void KeepLog(void* opaque, strata_log_level level, const char* message) {
  auto* log = static_cast<Log*>(opaque);
  std::lock_guard lk(log->mu);
  log->lines.emplace_back(level, message);
}

TEST(CApiKvm, LogHandlerGetsTheMachinesMessages) {
  STRATA_REQUIRE_KVM();
  Log log;
  Handle h;
  ASSERT_OK(h, strata_set_log_handler(h, KeepLog, &log));
  CreateLoop(h, nullptr);
  ASSERT_OK(h, strata_start(h));
  auto warned = [&] {
    std::lock_guard lk(log.mu);
    for (auto& [level, text] : log.lines) {
      if (level == STRATA_LOG_WARN && Contains(text, "0x80")) return true;
    }
    return false;
  };
  EXPECT_TRUE(WaitFor(warned));
  ASSERT_OK(h, strata_stop(h));
  strata_exit e;
  ASSERT_OK(h, strata_wait(h, &e));
  std::lock_guard lk(log.mu);
  for (auto& [level, text] : log.lines) {
    EXPECT_GE(level, STRATA_LOG_WARN) << text;  // log.level's default
    EXPECT_EQ(text.find('\n'), std::string::npos) << text;
  }
}

// A guest that crashes: the exit says so.
TEST(CApiKvm, GuestCrashIsReported) {
  STRATA_REQUIRE_KVM();
  Handle h;
  Configure(h);
  ASSERT_OK(h, strata_machine_create(h));
  // ud2 with an IDT of limit 0: #UD -> #GP -> #DF -> triple fault.
  const uint8_t ud2[] = {0x0f, 0x0b};
  ASSERT_OK(h, strata_write_memory(h, kLoopAddr, ud2, sizeof ud2));
  ASSERT_OK(h, strata_set_register(h, 0, "pc", kLoopAddr));
  // The Multiboot loader's IDT is empty already (lidt of limit 0 is the
  // guest's job), so the fault cannot be delivered.
  ASSERT_OK(h, strata_start(h));
  ASSERT_TRUE(ExitFdReadable(h, 60000));
  strata_exit e;
  ASSERT_OK(h, strata_wait(h, &e));
  EXPECT_EQ(e.kind, STRATA_EXIT_GUEST_CRASH) << e.message;
  EXPECT_EQ(e.status, 4);
  EXPECT_STRNE(e.message, "");
}

}  // namespace
