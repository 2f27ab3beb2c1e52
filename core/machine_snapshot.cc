// strata — Machine::Save and Machine::Restore (core/machine.h): the order
// in which a machine's parts go into a snapshot and come back out of it
// (the file format is core/snapshot.h's).
//
// Save, with every vCPU frozen by a VcpuLock (lock class 2; the VM read
// lock, class 3, is taken inside it for RAM): the backend first writes
// what it keeps in guest memory (arm64: the ITS tables and LPI pending
// bits), so the RAM saved last contains it; then the config, the vCPUs,
// the backend's VM state, the devices, RAM. A device's state is read under
// the device's own lock, so an access from a device thread (console input)
// lands either before the save or after it, never halfway; input that
// arrives after the save belongs to the new VMM's feeder, not the guest.
//
// Restore builds the machine from the saved config without a guest, then
// loads RAM (the in-memory tables the vGIC restore reads), the vCPUs (each
// after the vGIC's and its PMU's initialisation), the backend's VM state
// (after the vCPUs: the redistributors are found by MPIDR) and the
// devices — before any vCPU runs, so no lock is needed.
#include <cstring>
#include <memory>

#include "core/log.h"
#include "core/machine.h"
#include "core/snapshot.h"

namespace strata {

namespace {

constexpr uint64_t kPage = 4096;

bool ZeroPage(const uint8_t* p) {
  static const uint8_t kZero[kPage] = {};
  return std::memcmp(p, kZero, kPage) == 0;
}

struct Extent {
  uint64_t offset;
  uint64_t length;
};

// Runs of pages that are not all zero.
std::vector<Extent> NonZeroExtents(const MemorySegment& seg) {
  std::vector<Extent> out;
  for (uint64_t off = 0; off < seg.size; off += kPage) {
    if (ZeroPage(seg.host + off)) continue;
    if (!out.empty() && out.back().offset + out.back().length == off) {
      out.back().length += kPage;
    } else {
      out.push_back({off, kPage});
    }
  }
  return out;
}

Status SaveSegment(SnapshotWriter& w, const MemorySegment& seg) {
  const std::vector<Extent> extents = NonZeroExtents(seg);
  StateWriter head;
  head.Str(seg.name);
  head.U64(seg.gpa);
  head.U64(seg.size);
  head.U64(extents.size());
  uint64_t length = head.data().size();
  for (const Extent& e : extents) length += 16 + e.length;
  STRATA_TRY(w.BeginSection(kSnapTagMemory, length));
  STRATA_TRY(w.Append(head.data()));
  for (const Extent& e : extents) {
    StateWriter eh;
    eh.U64(e.offset);
    eh.U64(e.length);
    STRATA_TRY(w.Append(eh.data()));
    STRATA_TRY(w.Append(std::span<const uint8_t>(seg.host + e.offset,
                                                 e.length)));
  }
  return w.EndSection();
}

}  // namespace

Status Machine::CheckSnapshotParts() const {
  const auto& parts = host_->snapshot_parts();
  for (const DeviceSet::Created& d : devices_->devices()) {
    bool covered = false;
    for (const DeviceHost::SnapshotPart& p : parts) {
      covered = covered || p.name == d.instance.name ||
                p.name.starts_with(d.instance.name + "/");
    }
    if (!covered) {
      return MakeError(Errc::kUnsupported,
                       "cannot save a snapshot: device {} ({}) cannot save "
                       "its state (its model does not support snapshots)",
                       d.instance.prefix, d.instance.model);
    }
  }
  return Ok();
}

Status Machine::Save(const std::string& path, bool then_stop) {
  if (!live_.load() || vm_->stop_requested()) {
    return MakeError(Errc::kBusy,
                     "cannot save a snapshot: the machine is not running");
  }
  std::lock_guard save_lock(save_mu_);  // one Save at a time
  // Freeze every vCPU at its loop top: out of the guest, exit completed.
  std::vector<std::unique_ptr<VcpuLock>> held;
  for (uint32_t i = 0; i < cpus_; ++i) {
    if (Vcpu* v = vm_->vcpu(i)) held.push_back(std::make_unique<VcpuLock>(*v));
  }
  if (vm_->stop_requested()) {
    return MakeError(Errc::kBusy,
                     "cannot save a snapshot: the VM stopped meanwhile");
  }
  auto write = [&]() -> Status {
    // The backend first: on a host without snapshots that is the reason.
    STRATA_TRY_CTX(vm_->PrepareSnapshot(), "cannot save a snapshot");
    STRATA_TRY(CheckSnapshotParts());
    auto w = STRATA_TRY(SnapshotWriter::Create(path, md::kArchName));
    const std::string conf = config_.DumpJson();
    STRATA_TRY(w->Section(
        kSnapTagConfig,
        std::span(reinterpret_cast<const uint8_t*>(conf.data()), conf.size())));
    for (uint32_t i = 0; i < cpus_; ++i) {
      StateWriter s;
      s.U32(i);
      STRATA_TRY_CTX(vm_->vcpu(i)->SaveState(s),
                     fmt::format("cannot save a snapshot: vCPU {}", i));
      STRATA_TRY(w->Section(kSnapTagVcpu, s.data()));
    }
    {
      StateWriter s;
      STRATA_TRY_CTX(vm_->SaveBackendState(s),
                     "cannot save a snapshot: the VM's backend state");
      STRATA_TRY(w->Section(kSnapTagVm, s.data()));
    }
    for (const DeviceHost::SnapshotPart& p : host_->snapshot_parts()) {
      if (!p.state) continue;
      StateWriter s;
      s.Str(p.name);
      STRATA_TRY_CTX(p.state->SaveState(s),
                     fmt::format("cannot save a snapshot: device {}", p.name));
      STRATA_TRY(w->Section(kSnapTagDevice, s.data()));
    }
    {
      VmReadLock read(*vm_);
      for (const auto& seg : vm_->memory().segments()) {
        STRATA_TRY(SaveSegment(*w, *seg));
      }
    }
    STRATA_TRY(w->Finish());
    vm_->log().info("snapshot: {} ({} bytes), {} vCPUs", path,
                    w->bytes_written(), cpus_);
    return Ok();
  };
  Status s = write();
  // Before the locks go: a stopped VM must not run another instruction.
  if (s && then_stop) {
    vm_->RequestStop(ExitStatus::Stopped(fmt::format("saved to {}", path)));
  }
  held.clear();
  return s;
}

Result<std::unique_ptr<Machine>> Machine::Restore(const std::string& path,
                                                  Options options,
                                                  Step* failed_step) {
  if (failed_step != nullptr) *failed_step = Step::kInput;
  auto reader = STRATA_TRY(SnapshotReader::Open(path, md::kArchName));
  const SnapshotReader::Section* conf =
      STRATA_TRY(reader->FindOne(kSnapTagConfig));
  Config config;
  STRATA_TRY(config.MergeJson(
      std::string_view(reinterpret_cast<const char*>(conf->payload.data()),
                       conf->payload.size()),
      path));
  std::unique_ptr<Machine> m = STRATA_TRY(
      Build(std::move(config), std::move(options), failed_step, true));
  Status s = m->LoadSnapshot(*reader);
  if (!s) {
    if (failed_step != nullptr) *failed_step = Step::kInput;
    return std::move(s).error().Wrap(fmt::format("restoring {}", path));
  }
  return m;
}

Status Machine::LoadSnapshot(const SnapshotReader& reader) {
  Vm& vm = *vm_;
  // RAM: each saved segment onto the segment at the same address.
  const auto ram = reader.Find(kSnapTagMemory);
  if (ram.size() != vm.memory().segments().size()) {
    return MakeError(Errc::kInvalidArgument,
                     "{} RAM segments saved, the machine has {}", ram.size(),
                     vm.memory().segments().size());
  }
  for (const SnapshotReader::Section* sec : ram) {
    StateReader in(sec->payload, "RAM");
    const std::string name = STRATA_TRY(in.Str());
    const uint64_t gpa = STRATA_TRY(in.U64());
    const uint64_t size = STRATA_TRY(in.U64());
    const MemorySegment* seg = vm.memory().Find(gpa);
    if (seg == nullptr || seg->gpa != gpa || seg->size != size) {
      return in.Fail(fmt::format("segment '{}' at {:#x} of {:#x} bytes is not "
                                 "this machine's", name, gpa, size));
    }
    const uint64_t n = STRATA_TRY(in.U64());
    for (uint64_t i = 0; i < n; ++i) {
      const uint64_t off = STRATA_TRY(in.U64());
      const uint64_t len = STRATA_TRY(in.U64());
      if (off > size || len > size - off) {
        return in.Fail(fmt::format("an extent [{:#x}, +{:#x}) outside the "
                                   "segment '{}'", off, len, name));
      }
      std::span<const uint8_t> bytes = STRATA_TRY(in.Bytes(len));
      std::memcpy(seg->host + off, bytes.data(), len);
    }
    STRATA_TRY(in.ExpectEnd());
  }
  // vCPUs.
  const auto vcpus = reader.Find(kSnapTagVcpu);
  if (vcpus.size() != cpus_) {
    return MakeError(Errc::kInvalidArgument,
                     "{} vCPUs saved, the config has {}", vcpus.size(), cpus_);
  }
  for (const SnapshotReader::Section* sec : vcpus) {
    StateReader in(sec->payload, "vCPU");
    const uint32_t id = STRATA_TRY(in.U32());
    Vcpu* v = id < cpus_ ? vm.vcpu(id) : nullptr;
    if (v == nullptr) return in.Fail(fmt::format("no vCPU {}", id));
    StateReader body(sec->payload.subspan(4), fmt::format("vCPU {}", id));
    STRATA_TRY(v->LoadState(body));
  }
  // The backend's VM state.
  {
    const SnapshotReader::Section* sec = STRATA_TRY(reader.FindOne(kSnapTagVm));
    StateReader in(sec->payload, "VM state");
    STRATA_TRY(vm.LoadBackendState(in));
  }
  // Devices: each stateful part from its section, and no section left over.
  const auto devs = reader.Find(kSnapTagDevice);
  std::vector<bool> used(devs.size(), false);
  for (const DeviceHost::SnapshotPart& p : host_->snapshot_parts()) {
    if (!p.state) continue;
    bool found = false;
    for (size_t i = 0; i < devs.size() && !found; ++i) {
      StateReader in(devs[i]->payload, "device");
      const std::string name = STRATA_TRY(in.Str());
      if (name != p.name) continue;
      found = used[i] = true;
      StateReader body(devs[i]->payload.subspan(4 + name.size()),
                       fmt::format("device {}", name));
      STRATA_TRY(p.state->LoadState(body));
      STRATA_TRY(body.ExpectEnd());
    }
    if (!found) {
      return MakeError(Errc::kInvalidArgument,
                       "the snapshot has no state for device {}", p.name);
    }
  }
  for (size_t i = 0; i < devs.size(); ++i) {
    if (used[i]) continue;
    StateReader in(devs[i]->payload, "device");
    const std::string name = STRATA_TRY(in.Str());
    return MakeError(Errc::kInvalidArgument,
                     "the snapshot has state for a device {} this machine "
                     "does not have", name);
  }
  return Ok();
}

}  // namespace strata
