// strata — a small AML byte builder for the DSDT (ACPI 6.5 §20, "ACPI
// Machine Language Specification").
//
// Each function returns the encoding of one term; composite terms take the
// encodings of their contents and wrap them with the opcode and the
// PkgLength (§20.2.4) they need. Only what the pc machine's DSDT uses is
// here: names, integers, strings, packages, scopes, devices, methods that
// return a constant, and resource templates (§6.4) with the descriptors
// below. No parser: the tests compare exact bytes and iasl disassembles
// the result.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace strata::amd64::aml {

using Bytes = std::vector<uint8_t>;

// Appends b to a.
void Append(Bytes& a, const Bytes& b);
// The concatenation of terms.
Bytes Concat(std::initializer_list<Bytes> terms);

// PkgLength (§20.2.4) of a package whose contents after the PkgLength are
// `body` bytes long: the count includes the PkgLength's own 1-4 bytes.
// Asserts body < 2^28 - 4.
Bytes PkgLength(size_t body);
// NameString (§20.2.2): "\_SB.PCI0", "^FOO", "_HID". Segments shorter
// than 4 characters are padded with '_'; each must be 1-4 of A-Z, 0-9, _.
Bytes NameString(std::string_view path);

// Integer constants (§20.2.3): Zero/One/Ones, then the smallest of
// BytePrefix, WordPrefix, DWordPrefix, QWordPrefix.
Bytes Integer(uint64_t v);
// String (§20.2.3): ASCII, no NUL inside.
Bytes String(std::string_view s);
// EISAID("PNP0A03") as the DWord ASL's EISAID() macro makes (§19.6.35).
Bytes EisaId(std::string_view id);

// Name(path, value) (§20.2.5.1).
Bytes Name(std::string_view path, const Bytes& value);
// Package() {elements...} (§20.2.5.4): at most 255 elements.
Bytes Package(const std::vector<Bytes>& elements);
// Scope(path) {body} (§20.2.5.1).
Bytes Scope(std::string_view path, const Bytes& body);
// Device(name) {body} (§20.2.5.2).
Bytes Device(std::string_view name, const Bytes& body);
// Method(name, args, NotSerialized) {Return(value)} (§20.2.5.2).
Bytes MethodReturn(std::string_view name, const Bytes& value);
// Buffer() {bytes} (§20.2.5.4).
Bytes Buffer(const Bytes& data);

// --- Resource descriptors (§6.4), for ResourceTemplate ---
// IO(Decode16, min, max, align, length) (§6.4.2.5).
Bytes Io(uint16_t min, uint16_t max, uint8_t align, uint8_t length);
// IRQNoFlags() {irq} (§6.4.2.1): edge, active high, exclusive.
Bytes IrqNoFlags(uint8_t irq);
// Interrupt(ResourceConsumer, trigger, polarity, Exclusive) {gsi}
// (§6.4.3.6).
Bytes Interrupt(uint32_t gsi, bool level, bool active_low);
// Address space descriptors (§6.4.3.5): producer, MinFixed, MaxFixed,
// PosDecode, granularity 0, translation 0, [min, max].
Bytes WordBusNumber(uint16_t min, uint16_t max);
Bytes WordIo(uint16_t min, uint16_t max);  // EntireRange
Bytes DWordMemory(uint32_t min, uint32_t max, bool consumer = false);
Bytes QWordMemory(uint64_t min, uint64_t max);
// ResourceTemplate() {descriptors} (§6.4.2.9 end tag, checksum 0).
Bytes ResourceTemplate(const std::vector<Bytes>& descriptors);

}  // namespace strata::amd64::aml
