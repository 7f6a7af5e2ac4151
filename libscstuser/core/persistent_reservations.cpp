#include "core/persistent_reservations.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <sstream>

#include "core/durable_file.h"

namespace scstu::core {

namespace {

constexpr uint8_t kProtocolIscsi = 0x5;

uint16_t get16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
uint32_t get32(const uint8_t* p) {
  return uint32_t{p[0]} << 24 | uint32_t{p[1]} << 16 | uint32_t{p[2]} << 8 | p[3];
}
uint64_t get64(const uint8_t* p) { return uint64_t{get32(p)} << 32 | get32(p + 4); }
void put16(std::vector<uint8_t>& v, size_t at, uint16_t x) {
  v[at] = static_cast<uint8_t>(x >> 8);
  v[at + 1] = static_cast<uint8_t>(x);
}
void put32(std::vector<uint8_t>& v, size_t at, uint32_t x) {
  for (int i = 0; i < 4; ++i) v[at + i] = static_cast<uint8_t>(x >> (24 - 8 * i));
}
void put64(std::vector<uint8_t>& v, size_t at, uint64_t x) {
  put32(v, at, static_cast<uint32_t>(x >> 32));
  put32(v, at + 4, static_cast<uint32_t>(x));
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// "name,i,0xISID" -> name, isid (SPC-4 7.6.4.6 format 01b, RFC 7143 13.1).
void split_port(const std::string& text, std::string* name, std::string* isid) {
  std::string l = lower(text);
  size_t sep = l.find(",i,0x");
  if (sep == std::string::npos) {
    *name = l;
    isid->clear();
  } else {
    *name = l.substr(0, sep);
    *isid = l.substr(sep + 5);
  }
}

bool all_registrants(PrType t) {
  return t == PrType::kWriteExclusiveAllRegistrants || t == PrType::kExclusiveAccessAllRegistrants;
}
bool registrants_only(PrType t) {
  return t == PrType::kWriteExclusiveRegistrantsOnly ||
         t == PrType::kExclusiveAccessRegistrantsOnly;
}

std::string hex(std::string_view s) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : s) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out;
}
bool unhex(std::string_view s, std::string* out) {
  if (s.size() % 2) return false;
  out->clear();
  for (size_t i = 0; i < s.size(); i += 2) {
    auto v = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    int hi = v(s[i]), lo = v(s[i + 1]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi << 4 | lo));
  }
  return true;
}

}  // namespace

bool valid_pr_type(uint8_t type) {
  switch (type) {
    case 0x1:
    case 0x3:
    case 0x5:
    case 0x6:
    case 0x7:
    case 0x8:
      return true;
    default:
      return false;
  }
}

InitiatorPort InitiatorPort::from_session(const SessionInfo& s) {
  InitiatorPort p;
  p.protocol_id = static_cast<uint8_t>(s.protocol_id & 0x0F);
  split_port(s.transport_id.empty() ? s.initiator_name : s.transport_id, &p.name, &p.isid);
  return p;
}

std::optional<InitiatorPort> InitiatorPort::parse_transport_id(std::span<const uint8_t> tid,
                                                               size_t* consumed) {
  // SPC-4 7.6.4.6: byte 0 FORMAT CODE (7:6) and PROTOCOL IDENTIFIER (3:0),
  // bytes 2-3 ADDITIONAL LENGTH (a multiple of 4, at least 20), then the
  // NUL-terminated name. Only iSCSI TransportIDs name an initiator port here.
  if (tid.size() < 4) return std::nullopt;
  uint8_t format = tid[0] >> 6;
  if ((tid[0] & 0x0F) != kProtocolIscsi || format > 1) return std::nullopt;
  size_t additional = get16(&tid[2]);
  if (additional < 20 || additional % 4 != 0 || 4 + additional > tid.size()) return std::nullopt;
  const char* text = reinterpret_cast<const char*>(&tid[4]);
  size_t len = strnlen(text, additional);
  if (len == additional || len == 0) return std::nullopt;  // no NUL, or empty name
  InitiatorPort p;
  p.protocol_id = kProtocolIscsi;
  std::string s(text, len);
  split_port(s, &p.name, &p.isid);
  if (format == 1 && p.isid.empty()) return std::nullopt;
  if (format == 0 && !p.isid.empty()) return std::nullopt;
  if (consumed != nullptr) *consumed = 4 + additional;
  return p;
}

std::vector<uint8_t> InitiatorPort::transport_id() const {
  size_t additional = (name.size() + 1 + 3) / 4 * 4;
  additional = std::max<size_t>(additional, 20);
  std::vector<uint8_t> v(4 + additional, 0);
  v[0] = protocol_id & 0x0F;  // format code 00b
  put16(v, 2, static_cast<uint16_t>(additional));
  std::memcpy(&v[4], name.data(), name.size());
  return v;
}

bool InitiatorPort::matches(const InitiatorPort& session_port) const {
  return protocol_id == session_port.protocol_id && name == session_port.name &&
         (isid.empty() || isid == session_port.isid);
}

// A decoded PERSISTENT RESERVE OUT command.
struct PersistentReservations::OutRequest {
  uint64_t nexus = 0;
  InitiatorPort port;
  uint16_t relative_port = 0;
  uint8_t type = 0;
  uint64_t key = 0;
  uint64_t sa_key = 0;
  bool all_tg_pt = false;
  bool aptpl = false;
  std::span<const uint8_t> params;
};

// Unit attentions and aborts decided under the lock, delivered after commit.
struct PersistentReservations::Effects {
  std::vector<std::pair<uint64_t, UnitAttention>> unit_attentions;
  std::vector<uint64_t> preempted;
};

PersistentReservations::PersistentReservations(UnitAttentions& unit_attentions, Options options)
    : unit_attentions_(unit_attentions), options_(std::move(options)) {}

void PersistentReservations::session_attached(const SessionInfo& session) {
  std::lock_guard lock(mutex_);
  nexuses_[session.id] = Nexus{InitiatorPort::from_session(session), session.relative_port};
}

void PersistentReservations::session_detached(uint64_t nexus) {
  std::lock_guard lock(mutex_);
  nexuses_.erase(nexus);
}

const PersistentReservations::Registration* PersistentReservations::find(const State& s,
                                                                         const InitiatorPort& port,
                                                                         uint16_t relative_port) {
  const Registration* loose = nullptr;
  for (const Registration& r : s.registrations) {
    if (!r.port.matches(port)) continue;
    if (!r.all_target_ports && r.relative_port != relative_port) continue;
    if (r.port.isid == port.isid) return &r;
    loose = &r;
  }
  return loose;
}

bool PersistentReservations::is_holder(const State& s, const Registration* reg) {
  if (reg == nullptr || !s.type) return false;
  if (all_registrants(*s.type)) return true;
  return reg == &s.registrations[s.holder];
}

void PersistentReservations::remove(State& s, size_t index) {
  if (s.type && !all_registrants(*s.type)) {
    if (index == s.holder) {
      s.type.reset();
    } else if (index < s.holder) {
      --s.holder;
    }
  }
  s.registrations.erase(s.registrations.begin() + static_cast<ptrdiff_t>(index));
  // SPC-4 5.13.11.2.3: an all-registrants reservation ends with its last registrant.
  if (s.registrations.empty()) s.type.reset();
}

std::vector<uint64_t> PersistentReservations::nexuses_of(const Registration& reg) const {
  std::vector<uint64_t> out;
  for (const auto& [id, n] : nexuses_) {
    if (reg.port.matches(n.port) &&
        (reg.all_target_ports || reg.relative_port == n.relative_port)) {
      out.push_back(id);
    }
  }
  return out;
}

void PersistentReservations::add_unit_attention(Effects& fx, const Registration& reg,
                                                UnitAttention ua, const OutRequest& except) const {
  for (uint64_t id : nexuses_of(reg)) {
    if (id != except.nexus) fx.unit_attentions.emplace_back(id, ua);
  }
}

// --- PERSISTENT RESERVE IN (SPC-4 6.15) ------------------------------------

Outcome PersistentReservations::in(const SessionInfo& session, std::span<const uint8_t> cdb,
                                   std::vector<uint8_t>& data) {
  (void)session;
  if (cdb.size() < 10) return Outcome::invalid_cdb_field(0);
  std::lock_guard lock(mutex_);
  const State& s = state_;
  data.clear();
  switch (cdb[1] & 0x1F) {
    case 0x00: {  // READ KEYS (6.15.2)
      data.assign(8 + 8 * s.registrations.size(), 0);
      put32(data, 0, s.generation);
      put32(data, 4, static_cast<uint32_t>(8 * s.registrations.size()));
      for (size_t i = 0; i < s.registrations.size(); ++i) {
        put64(data, 8 + 8 * i, s.registrations[i].key);
      }
      return Outcome::good();
    }
    case 0x01: {  // READ RESERVATION (6.15.3)
      data.assign(s.type ? 24 : 8, 0);
      put32(data, 0, s.generation);
      if (s.type) {
        put32(data, 4, 16);
        // All-registrants: the RESERVATION KEY is zero (6.15.3.2).
        put64(data, 8, all_registrants(*s.type) ? 0 : s.registrations[s.holder].key);
        data[21] = static_cast<uint8_t>(*s.type);  // SCOPE 0 (LU_SCOPE), TYPE
      }
      return Outcome::good();
    }
    case 0x02: {  // REPORT CAPABILITIES (6.15.4)
      data.assign(8, 0);
      put16(data, 0, 8);
      // CRH (5.13.3 exceptions), ATP_C; SIP_C = 0; PTPL_C if a file is set.
      data[2] = 0x10 | 0x04 | (options_.state_file.empty() ? 0 : 0x01);
      // TMV; ALLOW COMMANDS 001b (TEST UNIT READY allowed through WE and
      // EA); PTPL_A.
      data[3] = 0x80 | (0x1 << 4) | (s.aptpl ? 0x01 : 0);
      data[4] = 0x80 | 0x40 | 0x20 | 0x08 | 0x02;  // WR_EX_AR EX_AC_RO WR_EX_RO EX_AC WR_EX
      data[5] = 0x01;                              // EX_AC_AR
      return Outcome::good();
    }
    case 0x03: {  // READ FULL STATUS (6.15.5)
      data.assign(8, 0);
      put32(data, 0, s.generation);
      for (size_t i = 0; i < s.registrations.size(); ++i) {
        const Registration& r = s.registrations[i];
        std::vector<uint8_t> tid = r.port.transport_id();
        size_t at = data.size();
        data.resize(at + 24 + tid.size(), 0);
        put64(data, at, r.key);
        bool holder = is_holder(s, &r);
        data[at + 12] = static_cast<uint8_t>((r.all_target_ports ? 0x02 : 0) | (holder ? 0x01 : 0));
        if (holder) data[at + 13] = static_cast<uint8_t>(*s.type);
        put16(data, at + 18, r.all_target_ports ? 0 : r.relative_port);
        put32(data, at + 20, static_cast<uint32_t>(tid.size()));
        std::memcpy(&data[at + 24], tid.data(), tid.size());
      }
      put32(data, 4, static_cast<uint32_t>(data.size() - 8));
      return Outcome::good();
    }
    default:
      return Outcome::invalid_cdb_field(1, 4);
  }
}

// --- PERSISTENT RESERVE OUT (SPC-4 6.16, 5.13.5-5.13.11) -------------------

Outcome PersistentReservations::out(const SessionInfo& session, std::span<const uint8_t> cdb,
                                    std::span<const uint8_t> parameters,
                                    std::vector<uint64_t>* preempted) {
  if (cdb.size() < 10) return Outcome::invalid_cdb_field(0);
  const uint8_t sa = cdb[1] & 0x1F;
  if (sa > 0x07) return Outcome::invalid_cdb_field(1, 4);
  const auto action = static_cast<PrOutAction>(sa);
  const uint32_t length = get32(&cdb[5]);
  if (parameters.size() < length) return Outcome::check(scsi::kParameterListLengthError);
  parameters = parameters.first(length);

  OutRequest r;
  r.nexus = session.id;
  r.port = InitiatorPort::from_session(session);
  r.relative_port = session.relative_port;
  r.type = cdb[2] & 0x0F;
  r.params = parameters;

  // 6.16.3: the parameter list is 24 bytes unless SPEC_I_PT (unsupported
  // here) or REGISTER AND MOVE (6.16.4, 24 + TransportID).
  if (length < 24) return Outcome::check(scsi::kParameterListLengthError);
  r.key = get64(&parameters[0]);
  r.sa_key = get64(&parameters[8]);
  if (action == PrOutAction::kRegisterAndMove) {
    uint32_t tid_length = get32(&parameters[20]);
    if (uint64_t{24} + tid_length > length) return Outcome::check(scsi::kParameterListLengthError);
    r.aptpl = parameters[17] & 0x01;
    if (r.aptpl && options_.state_file.empty()) return Outcome::invalid_parameter_field(17, 0);
  } else {
    if (parameters[20] & 0x08) return Outcome::invalid_parameter_field(20, 3);  // SIP_C = 0
    if (length != 24) return Outcome::check(scsi::kParameterListLengthError);
    bool registering =
        action == PrOutAction::kRegister || action == PrOutAction::kRegisterAndIgnoreExistingKey;
    if (registering) {
      r.all_tg_pt = parameters[20] & 0x04;
      r.aptpl = parameters[20] & 0x01;
      if (r.aptpl && options_.state_file.empty()) return Outcome::invalid_parameter_field(20, 0);
    }
  }
  switch (action) {
    case PrOutAction::kReserve:
    case PrOutAction::kRelease:
    case PrOutAction::kPreempt:
    case PrOutAction::kPreemptAndAbort:
      if ((cdb[2] >> 4) != 0) return Outcome::invalid_cdb_field(2, 7);  // LU_SCOPE only
      // 6.16.1: PREEMPT of registrations only (no reservation) ignores TYPE;
      // checked in do_preempt where that is known.
      if (action != PrOutAction::kPreempt && action != PrOutAction::kPreemptAndAbort &&
          !valid_pr_type(r.type)) {
        return Outcome::invalid_cdb_field(2, 3);
      }
      break;
    default:
      break;
  }

  Effects fx;
  Outcome result;
  {
    std::lock_guard lock(mutex_);
    State next = state_;
    switch (action) {
      case PrOutAction::kRegister:
        result = do_register(next, r, false, fx);
        break;
      case PrOutAction::kRegisterAndIgnoreExistingKey:
        result = do_register(next, r, true, fx);
        break;
      case PrOutAction::kReserve:
        result = do_reserve(next, r);
        break;
      case PrOutAction::kRelease:
        result = do_release(next, r, fx);
        break;
      case PrOutAction::kClear:
        result = do_clear(next, r, fx);
        break;
      case PrOutAction::kPreempt:
        result = do_preempt(next, r, false, fx);
        break;
      case PrOutAction::kPreemptAndAbort:
        result = do_preempt(next, r, true, fx);
        break;
      case PrOutAction::kRegisterAndMove:
        result = do_register_and_move(next, r);
        break;
    }
    if (!result.ok()) return result;
    // APTPL (5.13.4): while the last APTPL received is one, every change is
    // durable before the command completes; when it becomes zero, the file goes.
    if (!options_.state_file.empty() && (next.aptpl || state_.aptpl)) {
      std::string error = persist(next);
      if (!error.empty()) {
        std::fprintf(stderr, "scstu: %s\n", error.c_str());
        return Outcome::check(scsi::kInsufficientRegistrationResources);
      }
    }
    state_ = std::move(next);
    reserved_.store(state_.type.has_value(), std::memory_order_release);
  }
  for (auto& [nexus, ua] : fx.unit_attentions) unit_attentions_.raise(nexus, ua);
  if (preempted != nullptr) *preempted = std::move(fx.preempted);
  return Outcome::good();
}

Outcome PersistentReservations::do_register(State& s, const OutRequest& r, bool ignore_key,
                                            Effects& fx) const {
  const Registration* reg = find(s, r.port, r.relative_port);
  if (reg == nullptr) {
    // 5.13.5.2: an unregistered nexus must send key 0 (unless IGNORE).
    if (!ignore_key && r.key != 0) return Outcome::reservation_conflict();
    if (r.sa_key == 0) return Outcome::good();  // nothing to register or unregister
    s.registrations.push_back(Registration{r.port, r.relative_port, r.all_tg_pt, r.sa_key});
    ++s.generation;
    s.aptpl = r.aptpl;
    return Outcome::good();
  }
  if (!ignore_key && r.key != reg->key) return Outcome::reservation_conflict();
  size_t index = static_cast<size_t>(reg - s.registrations.data());
  if (r.sa_key != 0) {
    s.registrations[index].key = r.sa_key;
  } else {
    // 5.13.11.3: unregistering the holder of a non-all-registrants
    // reservation releases it; for registrants-only types the other
    // registrants learn RESERVATIONS RELEASED.
    bool releases = s.type && !all_registrants(*s.type) && index == s.holder;
    bool notify = releases && registrants_only(*s.type);
    remove(s, index);
    if (notify) {
      for (const Registration& other : s.registrations) {
        add_unit_attention(fx, other, UnitAttention::kReservationsReleased, r);
      }
    }
  }
  ++s.generation;
  s.aptpl = r.aptpl;
  return Outcome::good();
}

Outcome PersistentReservations::do_reserve(State& s, const OutRequest& r) const {
  const Registration* reg = find(s, r.port, r.relative_port);
  if (reg == nullptr || reg->key != r.key) return Outcome::reservation_conflict();
  if (s.type) {
    // 5.13.9: the holder may repeat its reservation; anything else conflicts.
    if (is_holder(s, reg) && static_cast<uint8_t>(*s.type) == r.type) return Outcome::good();
    return Outcome::reservation_conflict();
  }
  s.type = static_cast<PrType>(r.type);
  s.holder = static_cast<size_t>(reg - s.registrations.data());
  return Outcome::good();  // RESERVE does not change PRgeneration
}

Outcome PersistentReservations::do_release(State& s, const OutRequest& r, Effects& fx) const {
  const Registration* reg = find(s, r.port, r.relative_port);
  if (reg == nullptr || reg->key != r.key) return Outcome::reservation_conflict();
  // 5.13.11.2: no reservation, or not its holder: GOOD, nothing happens.
  if (!s.type || !is_holder(s, reg)) return Outcome::good();
  if (static_cast<uint8_t>(*s.type) != r.type) {
    return Outcome::check(scsi::kInvalidReleaseOfPersistentReservation);
  }
  PrType released = *s.type;
  s.type.reset();
  if (released != PrType::kWriteExclusive && released != PrType::kExclusiveAccess) {
    for (const Registration& other : s.registrations) {
      add_unit_attention(fx, other, UnitAttention::kReservationsReleased, r);
    }
  }
  return Outcome::good();
}

Outcome PersistentReservations::do_clear(State& s, const OutRequest& r, Effects& fx) const {
  const Registration* reg = find(s, r.port, r.relative_port);
  if (reg == nullptr || reg->key != r.key) return Outcome::reservation_conflict();
  // 5.13.11.4: every other registered nexus learns RESERVATIONS PREEMPTED.
  for (const Registration& other : s.registrations) {
    add_unit_attention(fx, other, UnitAttention::kReservationsPreempted, r);
  }
  s.registrations.clear();
  s.type.reset();
  ++s.generation;
  return Outcome::good();
}

Outcome PersistentReservations::do_preempt(State& s, const OutRequest& r, bool abort,
                                           Effects& fx) const {
  const Registration* reg = find(s, r.port, r.relative_port);
  if (reg == nullptr || reg->key != r.key) return Outcome::reservation_conflict();
  const size_t issuer = static_cast<size_t>(reg - s.registrations.data());
  const Registration issuer_reg = *reg;  // `reg` dangles once the vector changes

  // Remove the registrations `pred` selects, except the issuer's, with
  // REGISTRATIONS PREEMPTED for their nexuses. Returns how many went.
  auto remove_matching = [&](auto pred) {
    size_t removed = 0;
    std::vector<Registration> kept;
    std::optional<size_t> new_holder;
    for (size_t i = 0; i < s.registrations.size(); ++i) {
      const Registration& x = s.registrations[i];
      if (i != issuer && pred(x)) {
        ++removed;
        add_unit_attention(fx, x, UnitAttention::kRegistrationsPreempted, r);
        if (abort) {
          for (uint64_t id : nexuses_of(x)) fx.preempted.push_back(id);
        }
        continue;
      }
      if (s.type && !all_registrants(*s.type) && i == s.holder) new_holder = kept.size();
      kept.push_back(x);
    }
    if (s.type && !all_registrants(*s.type)) {
      if (new_holder) {
        s.holder = *new_holder;
      } else {
        s.type.reset();
      }
    }
    s.registrations = std::move(kept);
    if (s.registrations.empty()) s.type.reset();
    return removed;
  };
  auto issuer_index = [&] {
    for (size_t i = 0; i < s.registrations.size(); ++i) {
      if (s.registrations[i].port == issuer_reg.port &&
          s.registrations[i].relative_port == issuer_reg.relative_port) {
        return i;
      }
    }
    return size_t{0};
  };

  if (s.type && all_registrants(*s.type) && r.sa_key == 0) {
    // 5.13.11.2.4.3: preempting an all-registrants reservation with key 0
    // removes every other registrant; the issuer holds the new reservation.
    if (!valid_pr_type(r.type)) return Outcome::invalid_cdb_field(2, 3);
    remove_matching([](const Registration&) { return true; });
    s.type = static_cast<PrType>(r.type);
    s.holder = issuer_index();
    ++s.generation;
    return Outcome::good();
  }
  if (s.type && !all_registrants(*s.type) && r.sa_key == s.registrations[s.holder].key) {
    // 5.13.11.2.4.2: preempting the holder: its registrations go (not the
    // issuer's), the issuer holds a reservation of the CDB's type.
    if (!valid_pr_type(r.type)) return Outcome::invalid_cdb_field(2, 3);
    PrType old_type = *s.type;
    remove_matching([&](const Registration& x) { return x.key == r.sa_key; });
    s.type = static_cast<PrType>(r.type);
    s.holder = issuer_index();
    if (*s.type != old_type) {
      for (const Registration& other : s.registrations) {
        if (!(other.port == issuer_reg.port && other.relative_port == issuer_reg.relative_port)) {
          add_unit_attention(fx, other, UnitAttention::kReservationsReleased, r);
        }
      }
    }
    ++s.generation;
    return Outcome::good();
  }
  // 5.13.11.2.4.1: no reservation affected: remove the registrations with
  // that key; key 0 is invalid here, and a key nobody holds conflicts.
  if (r.sa_key == 0) return Outcome::invalid_parameter_field(8);
  size_t removed = remove_matching([&](const Registration& x) { return x.key == r.sa_key; });
  if (removed == 0) {
    fx = Effects{};
    return Outcome::reservation_conflict();
  }
  ++s.generation;
  return Outcome::good();
}

Outcome PersistentReservations::do_register_and_move(State& s, const OutRequest& r) const {
  const Registration* reg = find(s, r.port, r.relative_port);
  if (reg == nullptr || reg->key != r.key) return Outcome::reservation_conflict();
  // 5.13.8: only the holder of a reservation that is not all-registrants moves it.
  if (!s.type || all_registrants(*s.type) || !is_holder(s, reg)) {
    return Outcome::reservation_conflict();
  }
  if (r.sa_key == 0) return Outcome::invalid_parameter_field(8);
  const uint32_t tid_length = get32(&r.params[20]);
  size_t consumed = 0;
  auto dest = InitiatorPort::parse_transport_id(r.params.subspan(24, tid_length), &consumed);
  if (!dest || consumed > tid_length) return Outcome::invalid_parameter_field(24);
  const uint16_t dest_port = get16(&r.params[18]);
  if (dest->matches(r.port) && dest_port == r.relative_port) {
    return Outcome::invalid_parameter_field(24);  // moving to itself
  }
  const size_t issuer = static_cast<size_t>(reg - s.registrations.data());
  const bool unreg = r.params[17] & 0x02;
  // Register the destination with the service action key if it is not yet
  // (its existing key is kept otherwise), and make it the holder.
  // A format 00b TransportID names the initiator, not one port: an existing
  // registration of that initiator through the port is the one meant.
  std::optional<size_t> existing;
  for (size_t i = 0; i < s.registrations.size(); ++i) {
    const Registration& x = s.registrations[i];
    if ((dest->matches(x.port) || x.port.matches(*dest)) &&
        (x.all_target_ports || x.relative_port == dest_port)) {
      existing = i;
      break;
    }
  }
  size_t dest_index;
  if (existing) {
    dest_index = *existing;
  } else {
    s.registrations.push_back(Registration{*dest, dest_port, false, r.sa_key});
    dest_index = s.registrations.size() - 1;
  }
  s.holder = dest_index;
  if (unreg) remove(s, issuer);
  ++s.generation;
  s.aptpl = r.aptpl;
  return Outcome::good();
}

// --- conflicts --------------------------------------------------------------

bool PersistentReservations::persistent_conflict(const State& s, const SessionInfo& session,
                                                 AccessClass cls) const {
  if (!s.type) return false;
  // The port of an attached nexus was parsed once at attach: no string work
  // per command while a reservation is held.
  const Registration* reg;
  if (auto it = nexuses_.find(session.id); it != nexuses_.end()) {
    reg = find(s, it->second.port, it->second.relative_port);
  } else {
    reg = find(s, InitiatorPort::from_session(session), session.relative_port);
  }
  if (is_holder(s, reg)) return false;
  switch (*s.type) {
    case PrType::kWriteExclusive:
      return cls == AccessClass::kWrite;
    case PrType::kExclusiveAccess:
      return true;
    case PrType::kWriteExclusiveRegistrantsOnly:
    case PrType::kWriteExclusiveAllRegistrants:
      return reg == nullptr && cls == AccessClass::kWrite;
    case PrType::kExclusiveAccessRegistrantsOnly:
    case PrType::kExclusiveAccessAllRegistrants:
      return reg == nullptr;
  }
  return true;
}

bool PersistentReservations::conflicts(const SessionInfo& session,
                                       std::span<const uint8_t> cdb) const {
  if (!reserved_.load(std::memory_order_acquire)) return false;
  AccessClass cls = persistent_access_class(cdb);
  if (cls == AccessClass::kAllowed || cls == AccessClass::kReservation) return false;
  std::lock_guard lock(mutex_);
  return persistent_conflict(state_, session, cls);
}

std::optional<Outcome> PersistentReservations::spc2_exception(const SessionInfo& session) const {
  std::lock_guard lock(mutex_);
  const State& s = state_;
  if (s.registrations.empty()) return std::nullopt;
  const Registration* reg = find(s, InitiatorPort::from_session(session), session.relative_port);
  // SPC-4 5.13.3: GOOD and no effect from the holder, or from a registrant
  // under a registrants-only / all-registrants reservation.
  if (reg != nullptr && s.type &&
      (is_holder(s, reg) || registrants_only(*s.type) || all_registrants(*s.type))) {
    return Outcome::good();
  }
  // SPC-2 5.5.1: while any registration exists, RESERVE and RELEASE conflict.
  return Outcome::reservation_conflict();
}

uint32_t PersistentReservations::generation() const {
  std::lock_guard lock(mutex_);
  return state_.generation;
}

size_t PersistentReservations::registrations() const {
  std::lock_guard lock(mutex_);
  return state_.registrations.size();
}

std::optional<PrType> PersistentReservations::reservation_type() const {
  std::lock_guard lock(mutex_);
  return state_.type;
}

bool PersistentReservations::is_registered(const SessionInfo& session) const {
  std::lock_guard lock(mutex_);
  return find(state_, InitiatorPort::from_session(session), session.relative_port) != nullptr;
}

bool PersistentReservations::is_holder(const SessionInfo& session) const {
  std::lock_guard lock(mutex_);
  return is_holder(state_,
                   find(state_, InitiatorPort::from_session(session), session.relative_port));
}

// --- APTPL state file -------------------------------------------------------
//
//   scstu-pr-state 1
//   generation <decimal>
//   reservation <type hex> <holder index> | reservation none
//   reg <key hex> <relative port> <all_tg_pt 0|1> <protocol> <name hex> <isid|->
//
// Replaced whole (core/durable_file.h): a crash leaves the old or the new
// state, never a mix.

std::string PersistentReservations::persist(const State& s) const {
  const std::string& path = options_.state_file;
  if (!s.aptpl) {
    const std::string error = remove_file_durably(path);
    return error.empty() ? "" : "persistent reservations state " + error;
  }
  std::ostringstream o;
  o << "scstu-pr-state 1\n";
  o << "generation " << s.generation << "\n";
  if (s.type) {
    o << "reservation " << std::hex << static_cast<int>(*s.type) << std::dec << " " << s.holder
      << "\n";
  } else {
    o << "reservation none\n";
  }
  for (const Registration& r : s.registrations) {
    o << "reg " << std::hex << r.key << std::dec << " " << r.relative_port << " "
      << (r.all_target_ports ? 1 : 0) << " " << static_cast<int>(r.port.protocol_id) << " "
      << hex(r.port.name) << " " << (r.port.isid.empty() ? "-" : hex(r.port.isid)) << "\n";
  }
  const std::string error = replace_file_durably(path, o.str());
  if (error.empty()) return "";
  return "persistent reservations state " + error + " (check the directory exists and is writable)";
}

std::string PersistentReservations::load() {
  if (options_.state_file.empty()) return "";
  std::ifstream in(options_.state_file);
  if (!in) {
    if (errno == ENOENT) return "";
    return "persistent reservations state " + options_.state_file +
           ": open: " + std::strerror(errno);
  }
  State s;
  s.aptpl = true;
  std::optional<std::pair<int, size_t>> reservation;
  std::string line;
  int lineno = 0;
  auto bad = [&](const std::string& why) {
    return "persistent reservations state " + options_.state_file + ": line " +
           std::to_string(lineno) + ": " + why +
           "; fix or remove the file to start with no reservations";
  };
  while (std::getline(in, line)) {
    ++lineno;
    std::istringstream l(line);
    std::string word;
    l >> word;
    if (lineno == 1) {
      int version = 0;
      if (word != "scstu-pr-state" || !(l >> version) || version != 1) {
        return bad("not a version 1 scstu-pr-state file");
      }
    } else if (word == "generation") {
      uint64_t g;
      if (!(l >> g) || g > UINT32_MAX) return bad("bad generation");
      s.generation = static_cast<uint32_t>(g);
    } else if (word == "reservation") {
      std::string type;
      l >> type;
      if (type == "none") continue;
      int t = 0;
      size_t holder = 0;
      try {
        t = std::stoi(type, nullptr, 16);
      } catch (...) {
        return bad("bad reservation type");
      }
      if (!valid_pr_type(static_cast<uint8_t>(t)) || !(l >> holder)) return bad("bad reservation");
      reservation.emplace(t, holder);
    } else if (word == "reg") {
      Registration r;
      std::string key, name, isid;
      int all = 0, protocol = 0;
      uint32_t rel = 0;
      if (!(l >> key >> rel >> all >> protocol >> name >> isid) || rel > 0xFFFF || protocol < 0 ||
          protocol > 15) {
        return bad("bad registration");
      }
      try {
        r.key = std::stoull(key, nullptr, 16);
      } catch (...) {
        return bad("bad registration key");
      }
      r.relative_port = static_cast<uint16_t>(rel);
      r.all_target_ports = all != 0;
      r.port.protocol_id = static_cast<uint8_t>(protocol);
      if (!unhex(name, &r.port.name) || (isid != "-" && !unhex(isid, &r.port.isid))) {
        return bad("bad initiator port");
      }
      s.registrations.push_back(std::move(r));
    } else if (!word.empty()) {
      return bad("unknown record '" + word + "'");
    }
  }
  if (lineno == 0) return bad("empty file");
  if (reservation) {
    if (s.registrations.empty() || (!all_registrants(static_cast<PrType>(reservation->first)) &&
                                    reservation->second >= s.registrations.size())) {
      return bad("reservation holder is not a registration");
    }
    s.type = static_cast<PrType>(reservation->first);
    s.holder = all_registrants(*s.type) ? 0 : reservation->second;
  }
  std::lock_guard lock(mutex_);
  state_ = std::move(s);
  reserved_.store(state_.type.has_value(), std::memory_order_release);
  return "";
}

}  // namespace scstu::core
