#include "iscsi/session_params.h"

#include <gtest/gtest.h>

namespace scstu::iscsi {
namespace {

struct Row {
  const char* key;
  const char* offered;
  const char* answer;  // nullptr: a declaration, no answer
};

// RFC 7143 13: each key's result function, from the target's side with the
// default TargetLimits (CRC32C allowed, InitialR2T=No, ImmediateData=Yes,
// MaxBurstLength 1 MiB, FirstBurstLength 256 KiB, MaxOutstandingR2T 16,
// DefaultTime2Wait 2, DefaultTime2Retain 0, ErrorRecoveryLevel 0).
TEST(SessionParams, NegotiationTable) {
  const Row rows[] = {
      {"HeaderDigest", "CRC32C,None", "CRC32C"},
      {"HeaderDigest", "None,CRC32C", "None"},
      {"HeaderDigest", "MD5", "Reject"},
      {"DataDigest", "CRC32C", "CRC32C"},
      {"MaxConnections", "8", "1"},
      {"MaxConnections", "0", "Reject"},
      {"InitialR2T", "No", "No"},  // OR with our No
      {"InitialR2T", "Yes", "Yes"},
      {"InitialR2T", "maybe", "Reject"},
      {"ImmediateData", "Yes", "Yes"},  // AND with our Yes
      {"ImmediateData", "No", "No"},
      {"MaxRecvDataSegmentLength", "65536", nullptr},
      {"MaxRecvDataSegmentLength", "511", "Reject"},
      {"MaxRecvDataSegmentLength", "16777216", "Reject"},
      {"MaxBurstLength", "262144", "262144"},  // min
      {"MaxBurstLength", "16776192", "1048576"},
      {"MaxBurstLength", "100", "Reject"},
      {"FirstBurstLength", "65536", "65536"},
      {"FirstBurstLength", "0x1000000", "Reject"},
      {"DefaultTime2Wait", "0", "2"},  // max
      {"DefaultTime2Wait", "20", "20"},
      {"DefaultTime2Wait", "3601", "Reject"},
      {"DefaultTime2Retain", "20", "0"},  // min
      {"MaxOutstandingR2T", "1", "1"},
      {"MaxOutstandingR2T", "64", "16"},
      {"DataPDUInOrder", "No", "Yes"},  // OR, we want Yes
      {"DataSequenceInOrder", "No", "Yes"},
      {"ErrorRecoveryLevel", "2", "0"},  // min, we do level 0
      {"ErrorRecoveryLevel", "3", "Reject"},
      {"OFMarker", "Yes", "No"},
      {"IFMarkInt", "2048~8192", "Irrelevant"},
      {"iSCSIProtocolLevel", "2", "1"},
      {"X-com.example.Foo", "1", "NotUnderstood"},
  };
  for (const Row& r : rows) {
    SessionParams p;
    KeyAnswer a = negotiate_operational_key(r.key, r.offered, TargetLimits{}, false, p);
    if (!r.answer) {
      EXPECT_FALSE(a.send) << r.key << "=" << r.offered;
    } else {
      EXPECT_TRUE(a.send) << r.key << "=" << r.offered;
      EXPECT_EQ(a.value, r.answer) << r.key << "=" << r.offered;
    }
  }
}

TEST(SessionParams, ResultsLandInParams) {
  SessionParams p;
  TargetLimits l;
  negotiate_operational_key("MaxRecvDataSegmentLength", "65536", l, false, p);
  negotiate_operational_key("MaxBurstLength", "131072", l, false, p);
  negotiate_operational_key("FirstBurstLength", "262144", l, false, p);
  negotiate_operational_key("HeaderDigest", "CRC32C", l, false, p);
  negotiate_operational_key("ImmediateData", "No", l, false, p);
  finish_negotiation(p);
  EXPECT_EQ(p.initiator_max_recv_data_segment_length, 65536u);
  EXPECT_EQ(p.max_burst_length, 131072u);
  EXPECT_EQ(p.first_burst_length, 131072u);  // 13.14: never above MaxBurstLength
  EXPECT_TRUE(p.header_digest);
  EXPECT_FALSE(p.immediate_data);
}

TEST(SessionParams, DigestsCanBeRefused) {
  TargetLimits l;
  l.header_digest_allowed = false;
  SessionParams p;
  EXPECT_EQ(negotiate_operational_key("HeaderDigest", "CRC32C,None", l, false, p).value, "None");
  EXPECT_EQ(negotiate_operational_key("HeaderDigest", "CRC32C", l, false, p).value, "Reject");
  EXPECT_FALSE(p.header_digest);
}

TEST(SessionParams, DiscoverySessionKeys) {
  SessionParams p;
  for (const char* k : {"MaxBurstLength", "FirstBurstLength", "InitialR2T", "ImmediateData",
                        "MaxOutstandingR2T", "MaxConnections", "DataPDUInOrder"}) {
    EXPECT_EQ(negotiate_operational_key(k, "1", TargetLimits{}, true, p).value, "Irrelevant") << k;
  }
  EXPECT_EQ(negotiate_operational_key("HeaderDigest", "None", TargetLimits{}, true, p).value,
            "None");
}

}  // namespace
}  // namespace scstu::iscsi
