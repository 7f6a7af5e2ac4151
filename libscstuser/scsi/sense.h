// sense.h - SCSI sense data (SPC-4 4.5): sense keys, additional sense codes,
// and a builder for fixed (70h/71h) and descriptor (72h/73h) format.
//
// Usage:
//   SenseData s = SenseBuilder(SenseFormat::kFixed, kInvalidFieldInCdb)
//                     .cdb_field(2, 1)        // byte 2, bit 1 of the CDB
//                     .build();
//   std::move(cmd).complete_check_condition(s.span());
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <span>

namespace scstu::scsi {

// SPC-4 Table 27.
enum class SenseKey : uint8_t {
  kNoSense = 0x0,
  kRecoveredError = 0x1,
  kNotReady = 0x2,
  kMediumError = 0x3,
  kHardwareError = 0x4,
  kIllegalRequest = 0x5,
  kUnitAttention = 0x6,
  kDataProtect = 0x7,
  kBlankCheck = 0x8,
  kVendorSpecific = 0x9,
  kCopyAborted = 0xA,
  kAbortedCommand = 0xB,
  kVolumeOverflow = 0xD,
  kMiscompare = 0xE,
  kCompleted = 0xF,
};

// A sense key with its additional sense code and qualifier.
struct SenseCode {
  uint8_t key = 0;
  uint8_t asc = 0;
  uint8_t ascq = 0;

  constexpr SenseKey sense_key() const { return static_cast<SenseKey>(key & 0x0F); }
  friend constexpr bool operator==(const SenseCode&, const SenseCode&) = default;
};

// SPC-4 Annex D, the codes this library uses (key/ASC/ASCQ).
inline constexpr SenseCode kNoSense{0x00, 0x00, 0x00};
// ILLEGAL REQUEST
inline constexpr SenseCode kParameterListLengthError{0x05, 0x1A, 0x00};
inline constexpr SenseCode kInvalidCommandOperationCode{0x05, 0x20, 0x00};
inline constexpr SenseCode kLbaOutOfRange{0x05, 0x21, 0x00};
inline constexpr SenseCode kInvalidFieldInCdb{0x05, 0x24, 0x00};
// 0E/03: the Data-Out (or command IU) does not match what the CDB asks for.
inline constexpr SenseCode kInvalidFieldInCommandIu{0x05, 0x0E, 0x03};
inline constexpr SenseCode kLogicalUnitNotSupported{0x05, 0x25, 0x00};
inline constexpr SenseCode kInvalidFieldInParameterList{0x05, 0x26, 0x00};
inline constexpr SenseCode kParameterNotSupported{0x05, 0x26, 0x01};
inline constexpr SenseCode kParameterValueInvalid{0x05, 0x26, 0x02};
inline constexpr SenseCode kInvalidReleaseOfPersistentReservation{0x05, 0x26, 0x04};
inline constexpr SenseCode kTooManySegmentDescriptors{0x05, 0x26, 0x08};
inline constexpr SenseCode kUnsupportedSegmentDescriptorType{0x05, 0x26, 0x09};
inline constexpr SenseCode kUnsupportedTargetDescriptorType{0x05, 0x26, 0x07};
inline constexpr SenseCode kTooManyTargetDescriptors{0x05, 0x26, 0x06};
inline constexpr SenseCode kSavingParametersNotSupported{0x05, 0x39, 0x00};
inline constexpr SenseCode kCommandSequenceError{0x05, 0x2C, 0x00};
inline constexpr SenseCode kInsufficientRegistrationResources{0x05, 0x55, 0x04};
inline constexpr SenseCode kInsufficientResources{0x05, 0x55, 0x03};
inline constexpr SenseCode kMediumRemovalPrevented{0x05, 0x53, 0x02};
inline constexpr SenseCode kIllegalRequestInvalidMessage{0x05, 0x49, 0x00};
inline constexpr SenseCode kCopyTargetDeviceNotReachable{0x0A, 0x0D, 0x02};
// UNIT ATTENTION (SAM-5 5.14, SPC-4 Annex D)
inline constexpr SenseCode kUaPowerOnResetOrBusDeviceReset{0x06, 0x29, 0x00};
inline constexpr SenseCode kUaPowerOnOccurred{0x06, 0x29, 0x01};
inline constexpr SenseCode kUaBusResetOccurred{0x06, 0x29, 0x02};
inline constexpr SenseCode kUaBusDeviceResetFunctionOccurred{0x06, 0x29, 0x03};
inline constexpr SenseCode kUaDeviceInternalReset{0x06, 0x29, 0x04};
inline constexpr SenseCode kUaITNexusLossOccurred{0x06, 0x29, 0x07};
inline constexpr SenseCode kUaParametersChanged{0x06, 0x2A, 0x00};
inline constexpr SenseCode kUaModeParametersChanged{0x06, 0x2A, 0x01};
inline constexpr SenseCode kUaLogParametersChanged{0x06, 0x2A, 0x02};
inline constexpr SenseCode kUaReservationsPreempted{0x06, 0x2A, 0x03};
inline constexpr SenseCode kUaReservationsReleased{0x06, 0x2A, 0x04};
inline constexpr SenseCode kUaRegistrationsPreempted{0x06, 0x2A, 0x05};
inline constexpr SenseCode kUaAsymmetricAccessStateChanged{0x06, 0x2A, 0x06};
inline constexpr SenseCode kUaCapacityDataHasChanged{0x06, 0x2A, 0x09};
inline constexpr SenseCode kUaCommandsClearedByAnotherInitiator{0x06, 0x2F, 0x00};
inline constexpr SenseCode kUaCommandsClearedByPowerLoss{0x06, 0x2F, 0x01};
inline constexpr SenseCode kUaCommandsClearedByDeviceServer{0x06, 0x2F, 0x02};
inline constexpr SenseCode kUaMediumMayHaveChanged{0x06, 0x28, 0x00};
inline constexpr SenseCode kUaInquiryDataHasChanged{0x06, 0x3F, 0x03};
inline constexpr SenseCode kUaReportedLunsDataHasChanged{0x06, 0x3F, 0x0E};
inline constexpr SenseCode kUaMicrocodeHasBeenChanged{0x06, 0x3F, 0x01};
// NOT READY
inline constexpr SenseCode kNotReadyCauseNotReportable{0x02, 0x04, 0x00};
inline constexpr SenseCode kNotReadyBecomingReady{0x02, 0x04, 0x01};
inline constexpr SenseCode kNotReadyInitializingCommandRequired{0x02, 0x04, 0x02};
inline constexpr SenseCode kNotReadyFormatInProgress{0x02, 0x04, 0x04};
inline constexpr SenseCode kNotReadySanitizeInProgress{0x02, 0x04, 0x1B};
inline constexpr SenseCode kMediumNotPresent{0x02, 0x3A, 0x00};
inline constexpr SenseCode kMediumNotPresentTrayOpen{0x02, 0x3A, 0x02};
// DATA PROTECT
inline constexpr SenseCode kWriteProtected{0x07, 0x27, 0x00};
inline constexpr SenseCode kHardwareWriteProtected{0x07, 0x27, 0x01};
inline constexpr SenseCode kSoftwareWriteProtected{0x07, 0x27, 0x02};
inline constexpr SenseCode kSpaceAllocationFailedWriteProtect{0x07, 0x27, 0x07};
// MEDIUM ERROR
inline constexpr SenseCode kUnrecoveredReadError{0x03, 0x11, 0x00};
inline constexpr SenseCode kWriteError{0x03, 0x0C, 0x00};
inline constexpr SenseCode kMediumFormatCorrupted{0x03, 0x31, 0x00};
// MISCOMPARE
inline constexpr SenseCode kMiscompare{0x0E, 0x1D, 0x00};
inline constexpr SenseCode kMiscompareDuringVerify{0x0E, 0x1D, 0x00};
// ABORTED COMMAND
inline constexpr SenseCode kLuCommunicationFailure{0x0B, 0x08, 0x00};
inline constexpr SenseCode kCommandsClearedAborted{0x0B, 0x2F, 0x00};
inline constexpr SenseCode kInvalidFieldInCdbAborted{0x0B, 0x24, 0x00};
inline constexpr SenseCode kDataPhaseError{0x0B, 0x4B, 0x00};
inline constexpr SenseCode kOverlappedCommandsAttempted{0x0B, 0x4E, 0x00};
// HARDWARE ERROR
inline constexpr SenseCode kInternalTargetFailure{0x04, 0x44, 0x00};
inline constexpr SenseCode kLogicalUnitFailure{0x04, 0x3E, 0x01};
// NO SENSE with special meanings
inline constexpr SenseCode kNoAdditionalSense{0x00, 0x00, 0x00};
inline constexpr SenseCode kOperationInProgress{0x00, 0x00, 0x16};

// Sense data format (SPC-4 4.5.1): the control mode page's D_SENSE selects it.
enum class SenseFormat : uint8_t { kFixed, kDescriptor };

inline constexpr size_t kSenseBufferSize = 96;  // == SCSTU_SENSE_MAX

// Built sense bytes, ready to hand to CommandHandle::complete_check_condition().
struct SenseData {
  std::array<uint8_t, kSenseBufferSize> bytes{};
  uint8_t length = 0;

  std::span<const uint8_t> span() const { return {bytes.data(), length}; }
  bool empty() const { return length == 0; }
};

// Marks "no bit pointer" in a field pointer (BPV = 0).
inline constexpr uint8_t kNoBit = 0xFF;

// SPC-4 4.5.2.4.2: the sense-key-specific field pointer.
struct FieldPointer {
  bool in_cdb = true;    // C/D: 1 = the CDB, 0 = the parameter list (data-out)
  uint16_t field = 0;    // byte offset of the bad field
  uint8_t bit = kNoBit;  // most significant bit of the bad field, or kNoBit
};

class SenseBuilder {
 public:
  SenseBuilder(SenseFormat format, SenseCode code) : format_(format), code_(code) {}

  // The INFORMATION field (SPC-4 4.5.2.2 / 4.5.3): the first bad LBA, the
  // residue for tape, the miscompare offset. Fixed format carries only
  // 32 bits: a larger value is left out there (VALID = 0), as SPC-4 requires.
  SenseBuilder& information(uint64_t value) {
    information_ = value;
    return *this;
  }
  SenseBuilder& command_specific(uint64_t value) {
    command_specific_ = value;
    return *this;
  }
  // Field pointer into the CDB / the parameter list.
  SenseBuilder& cdb_field(uint16_t byte, uint8_t bit = kNoBit) {
    return field_pointer({true, byte, bit});
  }
  SenseBuilder& parameter_field(uint16_t byte, uint8_t bit = kNoBit) {
    return field_pointer({false, byte, bit});
  }
  SenseBuilder& field_pointer(FieldPointer fp) {
    sks_kind_ = SksKind::kField;
    field_ = fp;
    return *this;
  }
  // SPC-4 4.5.2.4.3: progress indication (0..65535 = 0..100%), NOT READY / NO SENSE.
  SenseBuilder& progress(uint16_t fraction) {
    sks_kind_ = SksKind::kProgress;
    progress_ = fraction;
    return *this;
  }
  // SSC-3 stream bits (FILEMARK, EOM, ILI).
  SenseBuilder& filemark() {
    filemark_ = true;
    return *this;
  }
  SenseBuilder& end_of_medium() {
    eom_ = true;
    return *this;
  }
  SenseBuilder& incorrect_length() {
    ili_ = true;
    return *this;
  }
  // 71h/73h: the error belongs to an earlier command (SPC-4 4.5.1).
  SenseBuilder& deferred() {
    deferred_ = true;
    return *this;
  }

  SenseData build() const;

 private:
  enum class SksKind : uint8_t { kNone, kField, kProgress };

  SenseData build_fixed() const;
  SenseData build_descriptor() const;

  SenseFormat format_;
  SenseCode code_;
  std::optional<uint64_t> information_;
  std::optional<uint64_t> command_specific_;
  SksKind sks_kind_ = SksKind::kNone;
  FieldPointer field_{};
  uint16_t progress_ = 0;
  bool filemark_ = false;
  bool eom_ = false;
  bool ili_ = false;
  bool deferred_ = false;
};

// Shorthand for the common cases.
inline SenseData make_sense(SenseFormat format, SenseCode code) {
  return SenseBuilder(format, code).build();
}
inline SenseData make_sense(SenseFormat format, SenseCode code, FieldPointer fp) {
  return SenseBuilder(format, code).field_pointer(fp).build();
}

// What a sense buffer says, either format. Used by tests, by the
// producer side for statistics, and to convert stored sense to a format.
struct ParsedSense {
  bool valid = false;  // response code 70h-73h and long enough
  bool deferred = false;
  SenseFormat format = SenseFormat::kFixed;
  SenseCode code{};
  std::optional<uint64_t> information;
  std::optional<FieldPointer> field;
  std::optional<uint16_t> progress;
  bool filemark = false;
  bool eom = false;
  bool ili = false;
};
ParsedSense parse_sense(std::span<const uint8_t> sense);

}  // namespace scstu::scsi
