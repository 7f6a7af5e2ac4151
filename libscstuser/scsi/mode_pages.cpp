#include "scsi/mode_pages.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string_view>

namespace scstu::scsi {

namespace {

constexpr uint8_t kReadWriteErrorRecovery = 0x01;
constexpr uint8_t kCaching = 0x08;
constexpr uint8_t kControl = 0x0A;
constexpr uint8_t kInformationalExceptions = 0x1C;
constexpr uint8_t kAllPages = 0x3F;

uint8_t highest_bit(uint8_t v) {
  uint8_t b = 7;
  while (!(v & (1u << b))) --b;
  return b;
}

}  // namespace

ModePages::ModePages(const ModePagesConfig& config) {
  auto add = [&](uint8_t code, uint8_t length) -> Page& {
    Page& p = pages_.emplace_back();
    p.code = code;
    p.length = length;
    p.defaults[0] = code;
    p.defaults[1] = static_cast<uint8_t>(length - 2);
    p.changeable[0] = code;
    p.changeable[1] = static_cast<uint8_t>(length - 2);
    return p;
  };
  if (config.device_type == 0x00) {
    // SBC-3 6.4.7: AWRE and ARRE set (reassignment is the device's business).
    Page& rw = add(kReadWriteErrorRecovery, 12);
    rw.defaults[2] = 0xC0;
    // SBC-3 6.4.5: WCE (byte 2 bit 2), RCD (bit 0).
    Page& caching = add(kCaching, 20);
    caching.defaults[2] = config.write_cache ? 0x04 : 0x00;
    if (config.wce_changeable) caching.changeable[2] = 0x04;
  }
  // SPC-4 7.5.8: QUEUE ALGORITHM MODIFIER 1 (unrestricted reordering), GLTSD
  // (no log parameters are saved), D_SENSE, SWP and TAS changeable.
  Page& control = add(kControl, 12);
  control.defaults[2] = static_cast<uint8_t>(0x02 | (config.d_sense ? 0x04 : 0));
  control.defaults[3] = 0x10;
  control.defaults[8] = 0xFF;  // BUSY TIMEOUT PERIOD FFFFh: unlimited
  control.defaults[9] = 0xFF;
  control.changeable[2] = 0x04;
  control.changeable[4] = 0x08;
  control.changeable[5] = 0x40;
  // SPC-4 7.5.13: DEXCPT set (no informational exceptions are reported).
  Page& ie = add(kInformationalExceptions, 12);
  ie.defaults[2] = 0x08;
  ie.changeable[2] = 0x08;
  for (Page& p : pages_) {
    p.current = p.defaults;
    p.saved = p.defaults;
  }
  mirror_locked();
}

ModePages::Page* ModePages::find(uint8_t code) {
  for (Page& p : pages_)
    if (p.code == code) return &p;
  return nullptr;
}

const ModePages::Page* ModePages::find(uint8_t code) const {
  for (const Page& p : pages_)
    if (p.code == code) return &p;
  return nullptr;
}

void ModePages::mirror_locked() {
  if (const Page* c = find(kCaching)) wce_.store(c->current[2] & 0x04, std::memory_order_relaxed);
  if (const Page* c = find(kControl)) {
    d_sense_.store(c->current[2] & 0x04, std::memory_order_relaxed);
    swp_.store(c->current[4] & 0x08, std::memory_order_relaxed);
    tas_.store(c->current[5] & 0x40, std::memory_order_relaxed);
  }
}

bool ModePages::sense(uint8_t page_code, uint8_t subpage, PageControl pc,
                      std::vector<uint8_t>& out) const {
  // Only subpage 00h exists; 0x3F/0xFF asks for every page and subpage.
  if (subpage != 0 && !(page_code == kAllPages && subpage == 0xFF)) return false;
  std::lock_guard lock(mutex_);
  auto emit = [&](const Page& p) {
    const uint8_t* src = nullptr;
    switch (pc) {
      case PageControl::kCurrent:
        src = p.current.data();
        break;
      case PageControl::kChangeable:
        src = p.changeable.data();
        break;
      case PageControl::kDefault:
        src = p.defaults.data();
        break;
      case PageControl::kSaved:
        src = p.saved.data();
        break;
    }
    const size_t at = out.size();
    out.insert(out.end(), src, src + p.length);
    out[at] = p.code | 0x80;  // PS: the page is saveable
    out[at + 1] = static_cast<uint8_t>(p.length - 2);
  };
  if (page_code == kAllPages) {
    for (const Page& p : pages_) emit(p);
    return true;
  }
  const Page* p = find(page_code);
  if (p == nullptr) return false;
  emit(*p);
  return true;
}

std::optional<ModeSelectError> ModePages::select(std::span<const uint8_t> list, size_t base,
                                                 bool save, bool* changed) {
  *changed = false;
  auto error = [&](SenseCode code, size_t at, uint8_t bit) {
    return ModeSelectError{code, FieldPointer{false, static_cast<uint16_t>(base + at), bit}};
  };
  std::lock_guard lock(mutex_);
  // Pass 1: validate every page against its length and changeable mask.
  struct Update {
    Page* page;
    size_t at;
  };
  std::array<Update, 16> updates{};
  size_t n_updates = 0;
  size_t at = 0;
  while (at < list.size()) {
    if (list.size() - at < 2) return error(kParameterListLengthError, at, kNoBit);
    const uint8_t code = list[at] & 0x3F;
    if (list[at] & 0x40) {
      // SPF: a sub-page format page; no subpage is supported.
      return error(kInvalidFieldInParameterList, at, 6);
    }
    Page* page = find(code);
    if (page == nullptr) return error(kInvalidFieldInParameterList, at, 5);
    const size_t length = size_t{list[at + 1]} + 2;
    if (length != page->length) return error(kInvalidFieldInParameterList, at + 1, 7);
    if (list.size() - at < length) return error(kParameterListLengthError, at, kNoBit);
    for (size_t i = 2; i < length; ++i) {
      const uint8_t diff = list[at + i] ^ page->current[i];
      const uint8_t bad = static_cast<uint8_t>(diff & ~page->changeable[i]);
      if (bad) return error(kInvalidFieldInParameterList, at + i, highest_bit(bad));
    }
    if (n_updates == updates.size()) return error(kInvalidFieldInParameterList, at, 5);
    updates[n_updates++] = {page, at};
    at += length;
  }
  // Pass 2: apply. A list may carry the same page twice (the later one wins), so
  // "changed" (which raises MODE PARAMETERS CHANGED, SPC-4 6.11) compares the
  // final state with the state before the command, not each step.
  std::vector<std::array<uint8_t, kMaxPageLength>> before;
  before.reserve(pages_.size());
  for (const Page& p : pages_) before.push_back(p.current);
  for (size_t u = 0; u < n_updates; ++u) {
    Page& page = *updates[u].page;
    const uint8_t* src = list.data() + updates[u].at;
    for (size_t i = 2; i < page.length; ++i) {
      const uint8_t mask = page.changeable[i];
      page.current[i] = static_cast<uint8_t>((page.current[i] & ~mask) | (src[i] & mask));
    }
    if (save) page.saved = page.current;
  }
  for (size_t i = 0; i < pages_.size(); ++i) {
    if (pages_[i].current != before[i]) *changed = true;
  }
  mirror_locked();
  return std::nullopt;
}

std::string ModePages::saved_text() const {
  std::lock_guard lock(mutex_);
  std::string out;
  char hex[4];
  for (const Page& p : pages_) {
    std::snprintf(hex, sizeof(hex), "%02x", p.code);
    out += hex;
    out += ' ';
    for (size_t i = 0; i < p.length; ++i) {
      std::snprintf(hex, sizeof(hex), "%02x", p.saved[i]);
      out += hex;
    }
    out += '\n';
  }
  return out;
}

std::string ModePages::load_saved_text(const std::string& text) {
  std::lock_guard lock(mutex_);
  std::vector<std::pair<Page*, std::array<uint8_t, kMaxPageLength>>> loaded;
  size_t line_start = 0;
  while (line_start < text.size()) {
    size_t end = text.find('\n', line_start);
    if (end == std::string::npos) end = text.size();
    const std::string line = text.substr(line_start, end - line_start);
    line_start = end + 1;
    if (line.empty()) continue;
    unsigned code = 0;
    char bytes[2 * kMaxPageLength + 1] = {};
    if (std::sscanf(line.c_str(), "%x %128s", &code, bytes) != 2) return "malformed line: " + line;
    Page* page = find(static_cast<uint8_t>(code));
    if (page == nullptr) return "unknown page " + line.substr(0, 2);
    const std::string_view hex(bytes);
    if (hex.size() != 2u * page->length) return "wrong length of page " + line.substr(0, 2);
    std::array<uint8_t, kMaxPageLength> v{};
    for (size_t i = 0; i < page->length; ++i) {
      unsigned b = 0;
      if (std::sscanf(bytes + 2 * i, "%2x", &b) != 1) return "bad hex in page " + line.substr(0, 2);
      v[i] = static_cast<uint8_t>(b);
      if (i >= 2 && ((v[i] ^ page->defaults[i]) & ~page->changeable[i])) {
        return "unchangeable bits differ in page " + line.substr(0, 2);
      }
    }
    v[0] = page->defaults[0];
    v[1] = page->defaults[1];
    loaded.emplace_back(page, v);
  }
  for (auto& [page, v] : loaded) {
    page->saved = v;
    page->current = v;
  }
  mirror_locked();
  return "";
}

void ModePages::reset_to_saved() {
  std::lock_guard lock(mutex_);
  for (Page& p : pages_) p.current = p.saved;
  mirror_locked();
}

}  // namespace scstu::scsi
