// The scenario loader: JSON text in, a validated Scenario or the first error out.
//
// Parsing happens in three passes over a small document. A SAX pass checks the syntax and
// refuses keys repeated within one object (a DOM parse would silently keep the last value). Then
// nlohmann::json builds the document, keeping keys in file order so that "the first unknown
// field" means the first one in the file. Last, a schema walk reads the document field by field
// into a Scenario. The walk's Reader records the first error and turns every later check into a
// no-op, so "the first error found" is simply the first one reported. Nothing here throws to the
// caller: the entry points catch whatever could escape (std::bad_alloc on a huge document).
#include "harness/schema/scenario.h"

#include <fmt/format.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <exception>
#include <limits>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <system_error>
#include <utility>

namespace paylab::scenarios {
namespace {

// File order matters for error reporting ("the first unknown field" should be the first one in
// the file), so the document is an ordered_json. ToJson() returns a sorted nlohmann::json.
using Json = nlohmann::ordered_json;

// Scenario files are small; anything larger is a mistake (and reading it is a bounded loop).
constexpr size_t kFileBytesMax = size_t{16} << 20;

// ----------------------------------------------------------------------------------------------
// JSON pointers and value descriptions.

// Escapes one reference token of a JSON pointer (RFC 6901): "~" -> "~0", "/" -> "~1".
std::string EscapeToken(std::string_view token) {
  std::string out;
  out.reserve(token.size());
  for (char c : token) {
    if (c == '~') {
      out += "~0";
    } else if (c == '/') {
      out += "~1";
    } else {
      out += c;
    }
  }
  return out;
}

std::string Child(std::string_view pointer, std::string_view key) {
  return fmt::format("{}/{}", pointer, EscapeToken(key));
}

std::string Child(std::string_view pointer, size_t index) {
  return fmt::format("{}/{}", pointer, index);
}

// "a string", "an object", "null"...: what a value is, for "expected X, got Y".
std::string_view Describe(const Json& j) {
  switch (j.type()) {
    case Json::value_t::null:
      return "null";
    case Json::value_t::object:
      return "an object";
    case Json::value_t::array:
      return "an array";
    case Json::value_t::string:
      return "a string";
    case Json::value_t::boolean:
      return "a boolean";
    case Json::value_t::number_integer:
    case Json::value_t::number_unsigned:
    case Json::value_t::number_float:
      return "a number";
    case Json::value_t::binary:
      return "binary data";
    case Json::value_t::discarded:
      return "a discarded value";
  }
  return "an unknown value";
}

std::string Expected(std::string_view what, const Json& got) {
  return fmt::format("expected {}, got {}", what, Describe(got));
}

// A string as a JSON literal, so that control characters and quotes stay readable in one line.
std::string Quote(std::string_view s) {
  return Json(std::string(s)).dump(-1, ' ', false, Json::error_handler_t::replace);
}

template <typename List, typename NameOf>
std::string JoinNames(const List& list, NameOf name_of) {
  std::string out;
  for (const auto& item : list) {
    if (!out.empty()) {
      out += ", ";
    }
    out += name_of(item);
  }
  return out;
}

// Levenshtein distance, for "did you mean". Both strings are short (keys are capped by the caller).
size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) {
    row[j] = j;
  }
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      size_t above = row[j];
      size_t substitute = diagonal + (a[i - 1] == b[j - 1] ? 0 : 1);
      row[j] = std::min({above + 1, row[j - 1] + 1, substitute});
      diagonal = above;
    }
  }
  return row[b.size()];
}

std::string UnknownFieldReason(std::string_view key, std::span<const std::string_view> fields) {
  constexpr size_t kKeyLengthMax = 64;
  if (key.size() > kKeyLengthMax) {
    return "unknown field";
  }
  std::string_view best;
  size_t best_distance = std::numeric_limits<size_t>::max();
  for (std::string_view field : fields) {
    size_t d = EditDistance(key, field);
    if (d < best_distance) {
      best = field;
      best_distance = d;
    }
  }
  // A suggestion is only useful when it is close: a typo, not a different word.
  size_t threshold = std::clamp<size_t>(key.size() / 3, 1, 3);
  if (best_distance <= threshold) {
    return fmt::format("unknown field; did you mean {}?", Quote(best));
  }
  return "unknown field";
}

// Replaces each byte that is not part of well-formed UTF-8 (RFC 3629) with U+FFFD. nlohmann
// quotes the raw bytes it choked on in its messages; a reason must stay valid UTF-8 so that it
// can itself be written into a JSON report.
std::string ValidUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    auto byte = [&](size_t k) { return static_cast<unsigned char>(s[i + k]); };
    unsigned char c = byte(0);
    size_t length = 0;
    unsigned char second_min = 0x80;
    unsigned char second_max = 0xBF;
    if (c < 0x80) {
      length = 1;
    } else if (c >= 0xC2 && c <= 0xDF) {
      length = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
      length = 3;
      second_min = c == 0xE0 ? 0xA0 : 0x80;  // no overlong forms
      second_max = c == 0xED ? 0x9F : 0xBF;  // no surrogates
    } else if (c >= 0xF0 && c <= 0xF4) {
      length = 4;
      second_min = c == 0xF0 ? 0x90 : 0x80;  // no overlong forms
      second_max = c == 0xF4 ? 0x8F : 0xBF;  // nothing above U+10FFFF
    }
    bool valid = length > 0 && i + length <= s.size();
    for (size_t k = 1; valid && k < length; ++k) {
      unsigned char min = k == 1 ? second_min : 0x80;
      unsigned char max = k == 1 ? second_max : 0xBF;
      valid = byte(k) >= min && byte(k) <= max;
    }
    if (valid) {
      out.append(s.substr(i, length));
      i += length;
    } else {
      out += "\xEF\xBF\xBD";  // U+FFFD REPLACEMENT CHARACTER
      ++i;
    }
  }
  return out;
}

// ----------------------------------------------------------------------------------------------
// Syntax: a first pass over the text.

// A SAX handler for nlohmann's parser that builds nothing. It stops at the first syntax error and
// reports it with nlohmann's byte position, and it also stops at the first key repeated within one
// object: a DOM parse would silently keep the last value, and a scenario file that sets a field
// twice is almost always a mistake. It tracks the path to the current value (for each open
// container, the current key or the index of the current element) to name that key.
class SyntaxChecker {
 public:
  explicit SyntaxChecker(std::string_view text) : text_(text) {}

  bool null() { return Value(); }
  bool boolean(bool) { return Value(); }
  bool number_integer(Json::number_integer_t) { return Value(); }
  bool number_unsigned(Json::number_unsigned_t) { return Value(); }
  bool number_float(Json::number_float_t, const Json::string_t&) { return Value(); }
  bool string(Json::string_t&) { return Value(); }
  bool binary(Json::binary_t&) { return Value(); }

  bool start_object(std::size_t) {
    Value();
    frames_.emplace_back().is_array = false;
    return true;
  }

  bool key(Json::string_t& key) {
    if (frames_.empty() || frames_.back().is_array) {
      return true;  // Cannot happen with nlohmann's parser; let the DOM parse decide.
    }
    Frame& frame = frames_.back();
    frame.key = key;
    if (!frame.keys.insert(key).second) {
      std::string pointer;
      for (const Frame& f : frames_) {
        pointer = f.is_array ? Child(pointer, f.next_index - 1) : Child(pointer, f.key);
      }
      error_ = ScenarioError{std::move(pointer), "duplicate key"};
      return false;
    }
    return true;
  }

  bool end_object() { return Pop(); }

  bool start_array(std::size_t) {
    Value();
    frames_.emplace_back().is_array = true;
    return true;
  }

  bool end_array() { return Pop(); }

  bool parse_error(std::size_t position, const std::string&, const Json::exception& e) {
    error_ = ScenarioError{"", MalformedReason(position, e.what())};
    return false;
  }

  // Set once the pass has stopped early.
  std::optional<ScenarioError>& error() { return error_; }

 private:
  struct Frame {
    bool is_array = false;
    size_t next_index = 0;       // arrays: index of the next element
    std::string key;             // objects: the current key
    std::set<std::string> keys;  // objects: keys seen so far
  };

  // A value (scalar or container) starts: inside an array, it is the next element.
  bool Value() {
    if (!frames_.empty() && frames_.back().is_array) {
      ++frames_.back().next_index;
    }
    return true;
  }

  bool Pop() {
    if (!frames_.empty()) {
      frames_.pop_back();
    }
    return true;
  }

  // "malformed JSON at byte 57 (line 3, column 12): syntax error while parsing ...", from
  // nlohmann's message, minus its "[json.exception.parse_error.101] parse error at ...: " prefix.
  // The line and column are computed here because some of nlohmann's errors (number overflow)
  // carry none. `position` counts the characters nlohmann read, the offending one included.
  std::string MalformedReason(size_t position, std::string_view message) const {
    if (message.starts_with("[json.exception.")) {
      size_t end = message.find("] ");
      if (end != std::string_view::npos) {
        message.remove_prefix(end + 2);
      }
    }
    if (message.starts_with("parse error")) {
      size_t colon = message.find(": ");
      if (colon != std::string_view::npos) {
        message.remove_prefix(colon + 2);
      }
    }
    std::string_view read = text_.substr(0, std::min(position, text_.size()));
    size_t line = 1 + static_cast<size_t>(std::count(read.begin(), read.end(), '\n'));
    size_t last_newline = read.rfind('\n');
    size_t column = last_newline == std::string_view::npos ? position : position - last_newline - 1;
    return fmt::format("malformed JSON at byte {} (line {}, column {}): {}", position, line, column,
                       ValidUtf8(message));
  }

  std::string_view text_;
  std::vector<Frame> frames_;
  std::optional<ScenarioError> error_;
};

// ----------------------------------------------------------------------------------------------
// Ranges of allowed values.

// [min, max] or (min, max]; a bound named after another field reads "must be >= amount_min (5)".
template <typename T>
struct Range {
  T min = std::numeric_limits<T>::lowest();
  bool min_exclusive = false;
  T max = std::numeric_limits<T>::max();
  bool interval = false;  // report as "must be in [min, max]" rather than one side
  std::string_view min_name;
  std::string_view max_name;
};

// >= min (and <= max, reported separately).
template <typename T>
constexpr Range<T> AtLeast(T min, T max = std::numeric_limits<T>::max()) {
  Range<T> r;
  r.min = min;
  r.max = max;
  return r;
}

// > min (and <= max, reported separately).
template <typename T>
constexpr Range<T> Above(T min, T max = std::numeric_limits<T>::max()) {
  Range<T> r = AtLeast(min, max);
  r.min_exclusive = true;
  return r;
}

// In [min, max], reported as an interval.
template <typename T>
constexpr Range<T> Within(T min, T max) {
  Range<T> r = AtLeast(min, max);
  r.interval = true;
  return r;
}

constexpr Range<double> kProbability = Within(0.0, 1.0);
constexpr Range<double> kSecondsPositive = Above(0.0, kDurationSecondsMax);
constexpr Range<double> kSecondsNonNegative = AtLeast(0.0, kDurationSecondsMax);
constexpr Range<double> kMillisPositive = Above(0.0, kDurationMillisMax);
constexpr Range<double> kDaysPositive = Above(0.0, kExpiryDaysMax);
constexpr Range<double> kRatePositive = Above(0.0, 1e6);
constexpr Range<double> kMillisNonNegative = AtLeast(0.0, kDurationMillisMax);

template <typename T>
std::string Bound(T value, std::string_view name) {
  if (name.empty()) {
    return fmt::format("{}", value);
  }
  return fmt::format("{} ({})", name, value);
}

// Returns why `v` is outside `r`, or nothing. NaN is outside every range.
template <typename T>
std::optional<std::string> RangeViolation(T v, const Range<T>& r) {
  bool below = r.min_exclusive ? !(v > r.min) : !(v >= r.min);
  bool above = !(v <= r.max);
  if (r.interval && (below || above)) {
    return fmt::format("must be in [{}, {}], got {}", Bound(r.min, r.min_name),
                       Bound(r.max, r.max_name), v);
  }
  if (below) {
    return fmt::format("must be {} {}, got {}",
                       r.min_exclusive ? ">" : ">=", Bound(r.min, r.min_name), v);
  }
  if (above) {
    return fmt::format("must be <= {}, got {}", Bound(r.max, r.max_name), v);
  }
  return std::nullopt;
}

// ----------------------------------------------------------------------------------------------
// The schema walk.

// Holds the first error. Every check below starts with `if (failed()) return` in some form, so
// once an error is recorded the rest of the walk does nothing.
class Reader {
 public:
  bool ok() const { return !error_.has_value(); }
  bool failed() const { return error_.has_value(); }

  void Fail(std::string pointer, std::string reason) {
    if (!error_) {
      error_ = ScenarioError{std::move(pointer), std::move(reason)};
    }
  }

  template <typename T>
  void CheckRange(const std::string& pointer, T value, const Range<T>& range, bool is_default) {
    if (failed()) {
      return;
    }
    if (std::optional<std::string> why = RangeViolation(value, range)) {
      Fail(pointer, is_default ? *why + " (the default)" : *why);
    }
  }

  // Scalars: type checks (and integral checks) only; ranges are separate.
  bool ReadNumber(const Json& j, const std::string& pointer, double* out) {
    if (failed()) {
      return false;
    }
    if (!j.is_number()) {
      Fail(pointer, Expected("a number", j));
      return false;
    }
    double v = j.get<double>();
    if (!std::isfinite(v)) {
      Fail(pointer, "must be a finite number");
      return false;
    }
    *out = v;
    return true;
  }

  bool ReadInteger(const Json& j, const std::string& pointer, int64_t* out) {
    if (failed()) {
      return false;
    }
    if (j.is_number_unsigned()) {
      uint64_t u = j.get<uint64_t>();
      if (u > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        Fail(pointer, fmt::format("must be an integer within int64, got {}", u));
        return false;
      }
      *out = static_cast<int64_t>(u);
      return true;
    }
    if (j.is_number_integer()) {
      *out = j.get<int64_t>();
      return true;
    }
    if (j.is_number_float()) {
      // An integral float such as 1e3 or 5.0 is accepted as the integer it denotes.
      double d = j.get<double>();
      if (!std::isfinite(d) || d != std::trunc(d)) {
        Fail(pointer, fmt::format("expected an integer, got {}", d));
        return false;
      }
      constexpr double kTwoTo63 = 9223372036854775808.0;
      if (d < -kTwoTo63 || d >= kTwoTo63) {
        Fail(pointer, fmt::format("must be an integer within int64, got {}", d));
        return false;
      }
      *out = static_cast<int64_t>(d);
      return true;
    }
    Fail(pointer, Expected("an integer", j));
    return false;
  }

  bool ReadBool(const Json& j, const std::string& pointer, bool* out) {
    if (failed()) {
      return false;
    }
    if (!j.is_boolean()) {
      Fail(pointer, Expected("a boolean", j));
      return false;
    }
    *out = j.get<bool>();
    return true;
  }

  bool ReadString(const Json& j, const std::string& pointer, std::string* out) {
    if (failed()) {
      return false;
    }
    if (!j.is_string()) {
      Fail(pointer, Expected("a string", j));
      return false;
    }
    *out = j.get<std::string>();
    return true;
  }

  ScenarioError TakeError() { return std::move(*error_); }

 private:
  std::optional<ScenarioError> error_;
};

enum class Need { kRequired, kOptional };

// Reads the fields of one JSON object. Construction checks that the value is an object and that
// all its keys are in `fields` (the first unknown key, in file order, is the error). Each reading
// method leaves *out untouched (its default) when the field is absent and optional.
class ObjectReader {
 public:
  ObjectReader(Reader& reader, const Json& value, std::string pointer,
               std::span<const std::string_view> fields)
      : reader_(reader), value_(value), pointer_(std::move(pointer)) {
    if (reader_.failed()) {
      return;
    }
    if (!value_.is_object()) {
      reader_.Fail(pointer_, Expected("an object", value_));
      return;
    }
    for (const auto& item : value_.items()) {
      const std::string& key = item.key();
      if (std::find(fields.begin(), fields.end(), key) == fields.end()) {
        reader_.Fail(Child(pointer_, key), UnknownFieldReason(key, fields));
        return;
      }
    }
  }

  const std::string& pointer() const { return pointer_; }
  std::string PointerTo(std::string_view key) const { return Child(pointer_, key); }
  bool Has(std::string_view key) const {
    return reader_.ok() && value_.is_object() && value_.contains(std::string(key));
  }

  // The member `key`, or nullptr when it is absent (an error if it is required) or when an error
  // has already been found.
  const Json* Get(std::string_view key, Need need) {
    if (reader_.failed()) {
      return nullptr;
    }
    auto it = value_.find(std::string(key));
    if (it == value_.end()) {
      if (need == Need::kRequired) {
        reader_.Fail(PointerTo(key), "required field missing");
      }
      return nullptr;
    }
    return &*it;
  }

  void Number(std::string_view key, Need need, const Range<double>& range, double* out) {
    const Json* j = Get(key, need);
    if (j != nullptr) {
      reader_.ReadNumber(*j, PointerTo(key), out);
    }
    reader_.CheckRange(PointerTo(key), *out, range, j == nullptr);
  }

  void Integer(std::string_view key, Need need, const Range<int64_t>& range, int64_t* out) {
    const Json* j = Get(key, need);
    if (j != nullptr) {
      reader_.ReadInteger(*j, PointerTo(key), out);
    }
    reader_.CheckRange(PointerTo(key), *out, range, j == nullptr);
  }

  void Bool(std::string_view key, Need need, bool* out) {
    if (const Json* j = Get(key, need)) {
      reader_.ReadBool(*j, PointerTo(key), out);
    }
  }

  void String(std::string_view key, Need need, std::string* out) {
    if (const Json* j = Get(key, need)) {
      reader_.ReadString(*j, PointerTo(key), out);
    }
  }

 private:
  Reader& reader_;
  const Json& value_;
  std::string pointer_;
};

// Field lists, in the order the walk reads them (and README.md documents them).
constexpr std::string_view kScenarioFields[] = {
    "name",    "description", "duration_s", "settle_s",  "account_types", "population", "workload",
    "network", "faults",      "wallet",     "messaging", "payments",      "migration",  "checks"};
constexpr std::string_view kChecksFields[] = {"required"};
constexpr std::string_view kAccountTypeFields[] = {
    "name", "debit_priority", "allow_negative", "expires_after_days", "auto_create", "balance_cap"};
constexpr std::string_view kPopulationFields[] = {"users", "initial_balances"};
constexpr std::string_view kWorkloadFields[] = {
    "operations",      "rate_per_s",       "mix",           "amount_min", "amount_max",
    "deposit_type",    "rollback_ratio",   "abandon_ratio", "hold_ttl_s", "timeout_ms",
    "retry_count_max", "retry_backoff_ms", "boundary_ratio"};
constexpr std::string_view kMixFields[] = {"deposit", "transfer", "two_phase", "misuse"};
constexpr std::string_view kNetworkFields[] = {"latency_ms"};
constexpr std::string_view kLatencyFields[] = {"distribution", "min", "max", "median", "sigma"};
constexpr std::string_view kFaultsFields[] = {"drop_request", "drop_reply",   "duplicate_request",
                                              "delay",        "delay_ms_max", "crashes",
                                              "partitions",   "points",       "schedule"};
constexpr std::string_view kFaultPointFields[] = {"point", "probability", "hits", "downtime_s_min",
                                                  "downtime_s_max"};
constexpr std::string_view kScheduleFields[] = {"crashes", "clock_steps", "rpc_faults"};
constexpr std::string_view kScheduledCrashFields[] = {"node", "at_s", "downtime_s"};
constexpr std::string_view kClockStepFields[] = {"node", "at_s", "step_ms"};
constexpr std::string_view kRpcFaultFields[] = {"method", "nth", "fault", "delay_ms", "reply"};
constexpr std::string_view kRpcFaultKinds[] = {"drop_request", "drop_reply", "duplicate_request",
                                               "delay"};
constexpr std::string_view kCrashFields[] = {"node", "mean_interval_s", "downtime_s_min",
                                             "downtime_s_max"};
constexpr std::string_view kPartitionFields[] = {"between", "from_s", "to_s"};
constexpr std::string_view kWalletFields[] = {"expiry_scan_interval_s", "hold_ttl_max_s"};
constexpr std::string_view kMessagingFields[] = {"enabled",
                                                 "partitions",
                                                 "idempotent_producer",
                                                 "relay_interval_ms",
                                                 "relay_batch_max",
                                                 "consumer_members",
                                                 "poll_interval_ms",
                                                 "fetch_max",
                                                 "session_timeout_ms",
                                                 "rpc_timeout_ms",
                                                 "duplicate_delivery",
                                                 "audit_queue",
                                                 "visibility_timeout_ms",
                                                 "max_receives",
                                                 "dead_letter_queue",
                                                 "poison_messages",
                                                 "redrive_at_s"};

constexpr std::string_view kMigrationFields[] = {"enabled",
                                                 "strategy",
                                                 "cashback_type",
                                                 "money_type",
                                                 "start_s",
                                                 "copy_ms_per_user",
                                                 "batch_size",
                                                 "cohorts",
                                                 "cohort_gap_s",
                                                 "banner_lead_s",
                                                 "cohort_attempts_max",
                                                 "drain_timeout_s",
                                                 "job_rate_per_s",
                                                 "dual_write",
                                                 "reconcile_interval_s",
                                                 "reconcile_batch",
                                                 "rpc_timeout_ms",
                                                 "sample_interval_s",
                                                 "pay",
                                                 "earn",
                                                 "topup",
                                                 "lookup",
                                                 "use_points_ratio",
                                                 "new_api_ratio",
                                                 "pair_ratio",
                                                 "misuse_ratio",
                                                 "earn_min",
                                                 "earn_max",
                                                 "commit_delay_s_max",
                                                 "maintenance_retry_s"};
constexpr std::string_view kPaymentsFields[] = {
    "enabled",
    "merchants",
    "initial_points",
    "point_expiry_days",
    "charges",
    "charge_rate_per_s",
    "escrows",
    "escrow_rate_per_s",
    "p2p_ratio",
    "partner_ratio",
    "partner_amount_max",
    "partner_initial_balance",
    "partner_unavailable",
    "partner_service_ms_min",
    "partner_service_ms_max",
    "amount_min",
    "amount_max",
    "void_ratio",
    "capture_delay_s_min",
    "capture_delay_s_max",
    "upstream_timeout_ms",
    "upstream_retry_count_max",
    "rpc_timeout_ms",
    "partner_timeout_ms",
    "worker_attempts_max",
    "queue_backoff_s_min",
    "queue_backoff_s_max",
    "batch_interval_s",
    "recovery_horizon_days",
    "hold_ttl_s",
    "fee_bp",
    "clearing_interval_s",
    "reward_bp",
    "assignment_failure",
    "assignment_redrive_at_s",
    "misuse_ratio",
    "misuse_rate_per_s",
};

constexpr LatencyDistribution kDistributions[] = {
    LatencyDistribution::kConstant, LatencyDistribution::kUniform, LatencyDistribution::kLogNormal};

const AccountTypeSpec* FindType(const std::vector<AccountTypeSpec>& types, std::string_view name) {
  for (const AccountTypeSpec& t : types) {
    if (t.name == name) {
      return &t;
    }
  }
  return nullptr;
}

std::string UnknownTypeReason(std::string_view name, const std::vector<AccountTypeSpec>& types) {
  return fmt::format("unknown account type {}; known types: {}", Quote(name),
                     JoinNames(types, [](const AccountTypeSpec& t) { return t.name; }));
}

}  // namespace

std::optional<system::MigrationStrategy> ParseStrategy(std::string_view name) {
  for (size_t i = 0; i < system::kMigrationStrategies; ++i) {
    const auto st = static_cast<system::MigrationStrategy>(i);
    if (system::MigrationStrategyName(st) == name) {
      return st;
    }
  }
  return std::nullopt;
}

std::string StrategyNames() {
  std::string out;
  for (size_t i = 0; i < system::kMigrationStrategies; ++i) {
    if (!out.empty()) {
      out += ", ";
    }
    out += system::MigrationStrategyName(static_cast<system::MigrationStrategy>(i));
  }
  return out;
}

namespace {

const KnownNode* FindNode(std::string_view name) {
  for (const KnownNode& n : kKnownNodes) {
    if (n.name == name) {
      return &n;
    }
  }
  return nullptr;
}

std::string KnownNodeNames(bool crashable_only) {
  std::string out;
  for (const KnownNode& n : kKnownNodes) {
    if (crashable_only && !n.crashable) {
      continue;
    }
    if (!out.empty()) {
      out += ", ";
    }
    out += n.name;
  }
  return out;
}

// Reads a node name at `pointer` and checks it against kKnownNodes.
void ReadNodeName(Reader& r, const Json& j, const std::string& pointer, bool must_be_crashable,
                  std::string* out) {
  if (!r.ReadString(j, pointer, out)) {
    return;
  }
  const KnownNode* node = FindNode(*out);
  if (node == nullptr) {
    r.Fail(pointer,
           fmt::format("unknown node {}; known nodes: {}", Quote(*out), KnownNodeNames(false)));
    return;
  }
  if (must_be_crashable && !node->crashable) {
    r.Fail(pointer, fmt::format("node {} cannot crash; crashable nodes: {}", Quote(*out),
                                KnownNodeNames(true)));
  }
}

bool IsValidTypeName(std::string_view name) {
  if (name.empty() || name[0] < 'A' || name[0] > 'Z') {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
  });
}

void ReadAccountTypes(Reader& r, const Json& j, const std::string& pointer,
                      std::vector<AccountTypeSpec>* out) {
  if (r.failed()) {
    return;
  }
  if (!j.is_array()) {
    r.Fail(pointer, Expected("an array", j));
    return;
  }
  if (j.empty()) {
    r.Fail(pointer, "must not be empty");
    return;
  }
  if (j.size() > kAccountTypesMax) {
    r.Fail(pointer, fmt::format("at most {} account types, got {}", kAccountTypesMax, j.size()));
    return;
  }
  for (size_t i = 0; i < j.size() && r.ok(); ++i) {
    ObjectReader o(r, j[i], Child(pointer, i), kAccountTypeFields);
    AccountTypeSpec t;
    o.String("name", Need::kRequired, &t.name);
    if (r.ok() && !IsValidTypeName(t.name)) {
      r.Fail(o.PointerTo("name"), fmt::format("must match [A-Z][A-Z0-9_]*, got {}", Quote(t.name)));
    }
    if (r.ok() && t.name.starts_with(kReservedTypePrefix)) {
      r.Fail(o.PointerTo("name"), fmt::format("names starting with {} are reserved, got {}",
                                              Quote(kReservedTypePrefix), Quote(t.name)));
    }
    for (size_t k = 0; k < out->size() && r.ok(); ++k) {
      if ((*out)[k].name == t.name) {
        r.Fail(o.PointerTo("name"), fmt::format("duplicate account type name {}, also at {}",
                                                Quote(t.name), Child(Child(pointer, k), "name")));
      }
    }
    o.Integer("debit_priority", Need::kRequired, AtLeast<int64_t>(0), &t.debit_priority);
    for (size_t k = 0; k < out->size() && r.ok(); ++k) {
      if ((*out)[k].debit_priority == t.debit_priority) {
        r.Fail(o.PointerTo("debit_priority"),
               fmt::format("duplicate debit_priority {}, also used by {} at {}", t.debit_priority,
                           (*out)[k].name, Child(Child(pointer, k), "debit_priority")));
      }
    }
    o.Bool("allow_negative", Need::kOptional, &t.allow_negative);
    o.Number("expires_after_days", Need::kOptional, AtLeast(0.0, kExpiryDaysMax),
             &t.expires_after_days);
    o.Bool("auto_create", Need::kOptional, &t.auto_create);
    o.Integer("balance_cap", Need::kOptional, AtLeast<int64_t>(0), &t.balance_cap);
    out->push_back(std::move(t));
  }
}

void ReadInitialBalances(Reader& r, const Json& j, const std::string& pointer,
                         const std::vector<AccountTypeSpec>& types, int64_t users,
                         std::map<std::string, int64_t>* out) {
  if (r.failed()) {
    return;
  }
  if (!j.is_object()) {
    r.Fail(pointer, Expected("an object", j));
    return;
  }
  for (const auto& item : j.items()) {
    const std::string& name = item.key();
    const Json& value = item.value();
    std::string key_pointer = Child(pointer, name);
    const AccountTypeSpec* type = FindType(types, name);
    if (type == nullptr) {
      r.Fail(key_pointer, UnknownTypeReason(name, types));
      return;
    }
    int64_t amount = 0;
    if (!r.ReadInteger(value, key_pointer, &amount)) {
      return;
    }
    r.CheckRange(key_pointer, amount, AtLeast<int64_t>(0), false);
    if (r.ok() && type->balance_cap > 0 && amount > type->balance_cap) {
      r.Fail(key_pointer, fmt::format("must be <= the balance_cap of {} ({}), got {}", name,
                                      type->balance_cap, amount));
    }
    if (r.failed()) {
      return;
    }
    (*out)[name] = amount;
  }
  // Checkers add up all the money in the system; make sure that sum fits.
  int64_t per_user = 0;
  int64_t total = 0;
  for (const auto& [name, amount] : *out) {
    if (__builtin_add_overflow(per_user, amount, &per_user)) {
      per_user = std::numeric_limits<int64_t>::max();
    }
  }
  if (__builtin_mul_overflow(per_user, users, &total)) {
    r.Fail(pointer,
           fmt::format("users ({}) times the sum of initial balances overflows int64", users));
  }
}

void ReadMix(Reader& r, const Json& j, const std::string& pointer, Mix* mix) {
  ObjectReader o(r, j, pointer, kMixFields);
  o.Number("deposit", Need::kOptional, AtLeast(0.0), &mix->deposit);
  o.Number("transfer", Need::kOptional, AtLeast(0.0), &mix->transfer);
  o.Number("two_phase", Need::kOptional, AtLeast(0.0), &mix->two_phase);
  o.Number("misuse", Need::kOptional, AtLeast(0.0), &mix->misuse);
  if (r.failed()) {
    return;
  }
  double sum = mix->deposit + mix->transfer + mix->two_phase + mix->misuse;
  if (!(sum > 0) || !std::isfinite(sum)) {
    r.Fail(pointer, fmt::format("weights must have a finite sum > 0, got {}", sum));
  }
}

void ReadWorkload(Reader& r, const Json& j, const std::string& pointer,
                  const std::vector<AccountTypeSpec>& types, Workload* w) {
  ObjectReader o(r, j, pointer, kWorkloadFields);
  o.Integer("operations", Need::kRequired, AtLeast<int64_t>(1), &w->operations);
  o.Number("rate_per_s", Need::kRequired, Above(0.0), &w->rate_per_s);
  if (const Json* mix = o.Get("mix", Need::kOptional)) {
    ReadMix(r, *mix, o.PointerTo("mix"), &w->mix);
  }
  o.Integer("amount_min", Need::kOptional, AtLeast<int64_t>(1), &w->amount_min);
  Range<int64_t> amount_max_range = AtLeast<int64_t>(w->amount_min);
  amount_max_range.min_name = "amount_min";
  o.Integer("amount_max", Need::kOptional, amount_max_range, &w->amount_max);

  if (const Json* deposit = o.Get("deposit_type", Need::kOptional)) {
    std::string deposit_pointer = o.PointerTo("deposit_type");
    if (r.ReadString(*deposit, deposit_pointer, &w->deposit_type) &&
        FindType(types, w->deposit_type) == nullptr) {
      r.Fail(deposit_pointer, UnknownTypeReason(w->deposit_type, types));
    }
  } else if (r.ok() && !types.empty()) {
    auto highest = std::max_element(types.begin(), types.end(),
                                    [](const AccountTypeSpec& a, const AccountTypeSpec& b) {
                                      return a.debit_priority < b.debit_priority;
                                    });
    w->deposit_type = highest->name;
  }

  o.Number("rollback_ratio", Need::kOptional, kProbability, &w->rollback_ratio);
  o.Number("abandon_ratio", Need::kOptional, kProbability, &w->abandon_ratio);
  if (r.ok() && w->rollback_ratio + w->abandon_ratio > 1) {
    r.Fail(o.PointerTo("abandon_ratio"),
           fmt::format("rollback_ratio + abandon_ratio must be <= 1, got {} + {}",
                       w->rollback_ratio, w->abandon_ratio));
  }
  o.Number("hold_ttl_s", Need::kOptional, kSecondsPositive, &w->hold_ttl_s);
  o.Number("timeout_ms", Need::kOptional, kMillisPositive, &w->timeout_ms);
  o.Integer("retry_count_max", Need::kOptional, Within<int64_t>(0, 100), &w->retry_count_max);
  o.Number("retry_backoff_ms", Need::kOptional, kMillisNonNegative, &w->retry_backoff_ms);
  o.Number("boundary_ratio", Need::kOptional, kProbability, &w->boundary_ratio);
}

void ReadLatency(Reader& r, const Json& j, const std::string& pointer, LatencySpec* l) {
  ObjectReader o(r, j, pointer, kLatencyFields);
  if (const Json* d = o.Get("distribution", Need::kOptional)) {
    std::string d_pointer = o.PointerTo("distribution");
    std::string name;
    if (r.ReadString(*d, d_pointer, &name)) {
      auto it = std::find_if(std::begin(kDistributions), std::end(kDistributions),
                             [&](LatencyDistribution x) { return ToString(x) == name; });
      if (it == std::end(kDistributions)) {
        r.Fail(d_pointer,
               fmt::format("must be one of {}; got {}",
                           JoinNames(kDistributions,
                                     [](LatencyDistribution x) { return Quote(ToString(x)); }),
                           Quote(name)));
      } else {
        l->distribution = *it;
      }
    }
  }
  o.Number("min", Need::kOptional, kMillisNonNegative, &l->min);
  Range<double> max_range = AtLeast(l->min, kDurationMillisMax);
  max_range.min_name = "min";
  o.Number("max", Need::kOptional, max_range, &l->max);
  o.Number("median", Need::kOptional, kMillisPositive, &l->median);
  Range<double> median_range = Within(l->min, l->max);
  median_range.min_name = "min";
  median_range.max_name = "max";
  r.CheckRange(o.PointerTo("median"), l->median, median_range, !o.Has("median"));
  o.Number("sigma", Need::kOptional, AtLeast(0.0), &l->sigma);
}

void ReadNetwork(Reader& r, const Json& j, const std::string& pointer, Network* n) {
  ObjectReader o(r, j, pointer, kNetworkFields);
  if (const Json* latency = o.Get("latency_ms", Need::kOptional)) {
    ReadLatency(r, *latency, o.PointerTo("latency_ms"), &n->latency_ms);
  }
}

void ReadCrash(Reader& r, const Json& j, const std::string& pointer, CrashSpec* c) {
  ObjectReader o(r, j, pointer, kCrashFields);
  if (const Json* node = o.Get("node", Need::kRequired)) {
    ReadNodeName(r, *node, o.PointerTo("node"), /*must_be_crashable=*/true, &c->node);
  }
  o.Number("mean_interval_s", Need::kRequired, kSecondsPositive, &c->mean_interval_s);
  o.Number("downtime_s_min", Need::kOptional, kSecondsNonNegative, &c->downtime_s_min);
  Range<double> max_range = AtLeast(c->downtime_s_min, kDurationSecondsMax);
  max_range.min_name = "downtime_s_min";
  o.Number("downtime_s_max", Need::kOptional, max_range, &c->downtime_s_max);
}

void ReadPartition(Reader& r, const Json& j, const std::string& pointer, PartitionSpec* p) {
  ObjectReader o(r, j, pointer, kPartitionFields);
  if (const Json* between = o.Get("between", Need::kRequired)) {
    std::string b_pointer = o.PointerTo("between");
    if (!between->is_array()) {
      r.Fail(b_pointer, Expected("an array", *between));
    } else if (between->size() != 2) {
      r.Fail(b_pointer, fmt::format("must name exactly 2 nodes, got {}", between->size()));
    } else {
      ReadNodeName(r, (*between)[0], Child(b_pointer, 0), false, &p->between[0]);
      ReadNodeName(r, (*between)[1], Child(b_pointer, 1), false, &p->between[1]);
      if (r.ok() && p->between[0] == p->between[1]) {
        r.Fail(Child(b_pointer, 1),
               fmt::format("must differ from {}: a node cannot be partitioned from itself",
                           Child(b_pointer, 0)));
      }
    }
  }
  o.Number("from_s", Need::kRequired, kSecondsNonNegative, &p->from_s);
  Range<double> to_range = Above(p->from_s, kDurationSecondsMax);
  to_range.min_name = "from_s";
  o.Number("to_s", Need::kRequired, to_range, &p->to_s);
}

template <typename T, typename ReadElement>
void ReadArray(Reader& r, const Json& j, const std::string& pointer, std::vector<T>* out,
               ReadElement read_element) {
  if (r.failed()) {
    return;
  }
  if (!j.is_array()) {
    r.Fail(pointer, Expected("an array", j));
    return;
  }
  for (size_t i = 0; i < j.size() && r.ok(); ++i) {
    T element;
    read_element(r, j[i], Child(pointer, i), &element);
    out->push_back(std::move(element));
  }
}

void ReadFaultPoint(Reader& r, const Json& j, const std::string& pointer, FaultPointSpec* p) {
  ObjectReader o(r, j, pointer, kFaultPointFields);
  if (const Json* name = o.Get("point", Need::kRequired)) {
    if (r.ReadString(*name, o.PointerTo("point"), &p->point) &&
        std::find(kFaultPoints.begin(), kFaultPoints.end(), p->point) == kFaultPoints.end()) {
      std::string known;
      for (std::string_view k : kFaultPoints) {
        known += known.empty() ? "" : ", ";
        known += k;
      }
      r.Fail(o.PointerTo("point"),
             fmt::format("unknown fault point {}; known points: {}", Quote(p->point), known));
    }
  }
  o.Number("probability", Need::kOptional, kProbability, &p->probability);
  if (const Json* hits = o.Get("hits", Need::kOptional)) {
    ReadArray(r, *hits, o.PointerTo("hits"), &p->hits,
              [](Reader& r, const Json& j, const std::string& pointer, int64_t* out) {
                if (r.ReadInteger(j, pointer, out)) {
                  r.CheckRange(pointer, *out, AtLeast<int64_t>(1), false);
                }
              });
  }
  o.Number("downtime_s_min", Need::kOptional, kSecondsNonNegative, &p->downtime_s_min);
  Range<double> max_range = AtLeast(p->downtime_s_min, kDurationSecondsMax);
  max_range.min_name = "downtime_s_min";
  o.Number("downtime_s_max", Need::kOptional, max_range, &p->downtime_s_max);
  if (r.ok() && p->probability == 0 && p->hits.empty()) {
    r.Fail(pointer, "arms nothing: give a probability > 0 or a list of hits");
  }
}

void ReadScheduledCrash(Reader& r, const Json& j, const std::string& pointer,
                        ScheduledCrashSpec* c) {
  ObjectReader o(r, j, pointer, kScheduledCrashFields);
  if (const Json* node = o.Get("node", Need::kRequired)) {
    ReadNodeName(r, *node, o.PointerTo("node"), /*must_be_crashable=*/true, &c->node);
  }
  o.Number("at_s", Need::kRequired, kSecondsNonNegative, &c->at_s);
  o.Number("downtime_s", Need::kOptional, kSecondsNonNegative, &c->downtime_s);
}

void ReadClockStep(Reader& r, const Json& j, const std::string& pointer, ClockStepSpec* c) {
  ObjectReader o(r, j, pointer, kClockStepFields);
  if (const Json* node = o.Get("node", Need::kRequired)) {
    ReadNodeName(r, *node, o.PointerTo("node"), /*must_be_crashable=*/true, &c->node);
  }
  o.Number("at_s", Need::kRequired, kSecondsNonNegative, &c->at_s);
  // A year either way keeps every ID timestamp inside its 41 bits.
  o.Number("step_ms", Need::kRequired, Within(-3.2e10, 3.2e10), &c->step_ms);
  if (r.ok() && c->step_ms == 0) {
    r.Fail(o.PointerTo("step_ms"), "must not be 0: a step of nothing is no fault");
  }
}

void ReadRpcFault(Reader& r, const Json& j, const std::string& pointer, RpcFaultSpec* f) {
  ObjectReader o(r, j, pointer, kRpcFaultFields);
  o.String("method", Need::kRequired, &f->method);
  if (r.ok() && f->method.empty()) {
    r.Fail(o.PointerTo("method"), "must name an RPC method, e.g. \"wallet.commit\"");
  }
  o.Integer("nth", Need::kRequired, AtLeast<int64_t>(1), &f->nth);
  if (const Json* fault = o.Get("fault", Need::kRequired)) {
    if (r.ReadString(*fault, o.PointerTo("fault"), &f->fault) &&
        std::find(std::begin(kRpcFaultKinds), std::end(kRpcFaultKinds), f->fault) ==
            std::end(kRpcFaultKinds)) {
      r.Fail(o.PointerTo("fault"),
             fmt::format("unknown fault {}; expected drop_request, drop_reply, "
                         "duplicate_request or delay",
                         Quote(f->fault)));
    }
  }
  o.Number("delay_ms", Need::kOptional, kMillisNonNegative, &f->delay_ms);
  o.Integer("reply", Need::kOptional, Within<int64_t>(1, 2), &f->reply);
}

void ReadSchedule(Reader& r, const Json& j, const std::string& pointer, FaultSchedule* s) {
  ObjectReader o(r, j, pointer, kScheduleFields);
  if (const Json* crashes = o.Get("crashes", Need::kOptional)) {
    ReadArray(r, *crashes, o.PointerTo("crashes"), &s->crashes, ReadScheduledCrash);
  }
  if (const Json* steps = o.Get("clock_steps", Need::kOptional)) {
    ReadArray(r, *steps, o.PointerTo("clock_steps"), &s->clock_steps, ReadClockStep);
  }
  if (const Json* rpcs = o.Get("rpc_faults", Need::kOptional)) {
    ReadArray(r, *rpcs, o.PointerTo("rpc_faults"), &s->rpc_faults, ReadRpcFault);
  }
}

void ReadFaults(Reader& r, const Json& j, const std::string& pointer, Faults* f) {
  ObjectReader o(r, j, pointer, kFaultsFields);
  o.Number("drop_request", Need::kOptional, kProbability, &f->drop_request);
  o.Number("drop_reply", Need::kOptional, kProbability, &f->drop_reply);
  o.Number("duplicate_request", Need::kOptional, kProbability, &f->duplicate_request);
  o.Number("delay", Need::kOptional, kProbability, &f->delay);
  o.Number("delay_ms_max", Need::kOptional, kMillisNonNegative, &f->delay_ms_max);
  if (const Json* crashes = o.Get("crashes", Need::kOptional)) {
    ReadArray(r, *crashes, o.PointerTo("crashes"), &f->crashes, ReadCrash);
  }
  if (const Json* partitions = o.Get("partitions", Need::kOptional)) {
    ReadArray(r, *partitions, o.PointerTo("partitions"), &f->partitions, ReadPartition);
  }
  if (const Json* points = o.Get("points", Need::kOptional)) {
    ReadArray(r, *points, o.PointerTo("points"), &f->points, ReadFaultPoint);
  }
  if (const Json* schedule = o.Get("schedule", Need::kOptional)) {
    ReadSchedule(r, *schedule, o.PointerTo("schedule"), &f->schedule);
  }
}

void ReadWallet(Reader& r, const Json& j, const std::string& pointer, WalletOptions* w) {
  ObjectReader o(r, j, pointer, kWalletFields);
  o.Number("expiry_scan_interval_s", Need::kOptional, kSecondsPositive, &w->expiry_scan_interval_s);
  o.Number("hold_ttl_max_s", Need::kOptional, kSecondsPositive, &w->hold_ttl_max_s);
}

void ReadMessaging(Reader& r, const Json& j, const std::string& pointer, MessagingOptions* m) {
  ObjectReader o(r, j, pointer, kMessagingFields);
  o.Bool("enabled", Need::kOptional, &m->enabled);
  o.Integer("partitions", Need::kOptional, Within<int64_t>(1, 64), &m->partitions);
  o.Bool("idempotent_producer", Need::kOptional, &m->idempotent_producer);
  o.Number("relay_interval_ms", Need::kOptional, kMillisPositive, &m->relay_interval_ms);
  o.Integer("relay_batch_max", Need::kOptional, Within<int64_t>(1, 10000), &m->relay_batch_max);
  o.Integer("consumer_members", Need::kOptional, Within<int64_t>(1, 16), &m->consumer_members);
  o.Number("poll_interval_ms", Need::kOptional, kMillisPositive, &m->poll_interval_ms);
  o.Integer("fetch_max", Need::kOptional, Within<int64_t>(1, 10000), &m->fetch_max);
  o.Number("session_timeout_ms", Need::kOptional, kMillisPositive, &m->session_timeout_ms);
  o.Number("rpc_timeout_ms", Need::kOptional, kMillisPositive, &m->rpc_timeout_ms);
  o.Number("duplicate_delivery", Need::kOptional, kProbability, &m->duplicate_delivery);
  o.Bool("audit_queue", Need::kOptional, &m->audit_queue);
  o.Number("visibility_timeout_ms", Need::kOptional, kMillisPositive, &m->visibility_timeout_ms);
  o.Integer("max_receives", Need::kOptional, Within<int64_t>(1, 1000), &m->max_receives);
  o.Bool("dead_letter_queue", Need::kOptional, &m->dead_letter_queue);
  o.Integer("poison_messages", Need::kOptional, Within<int64_t>(0, 1000), &m->poison_messages);
  o.Number("redrive_at_s", Need::kOptional, kSecondsNonNegative, &m->redrive_at_s);
}

void ReadPayments(Reader& r, const Json& j, const std::string& pointer, PaymentsOptions* p) {
  ObjectReader o(r, j, pointer, kPaymentsFields);
  o.Bool("enabled", Need::kOptional, &p->enabled);
  o.Integer("merchants", Need::kOptional, Within<int64_t>(1, 1000000), &p->merchants);
  o.Integer("initial_points", Need::kOptional, AtLeast<int64_t>(0), &p->initial_points);
  o.Number("point_expiry_days", Need::kOptional, kDaysPositive, &p->point_expiry_days);
  o.Integer("charges", Need::kOptional, AtLeast<int64_t>(0), &p->charges);
  o.Number("charge_rate_per_s", Need::kOptional, kRatePositive, &p->charge_rate_per_s);
  o.Integer("escrows", Need::kOptional, AtLeast<int64_t>(0), &p->escrows);
  o.Number("escrow_rate_per_s", Need::kOptional, kRatePositive, &p->escrow_rate_per_s);
  o.Number("p2p_ratio", Need::kOptional, kProbability, &p->p2p_ratio);
  o.Number("partner_ratio", Need::kOptional, kProbability, &p->partner_ratio);
  o.Integer("partner_amount_max", Need::kOptional, AtLeast<int64_t>(1), &p->partner_amount_max);
  o.Integer("partner_initial_balance", Need::kOptional, AtLeast<int64_t>(0),
            &p->partner_initial_balance);
  o.Number("partner_unavailable", Need::kOptional, kProbability, &p->partner_unavailable);
  o.Number("partner_service_ms_min", Need::kOptional, kMillisNonNegative,
           &p->partner_service_ms_min);
  o.Number("partner_service_ms_max", Need::kOptional, kMillisNonNegative,
           &p->partner_service_ms_max);
  o.Integer("amount_min", Need::kOptional, AtLeast<int64_t>(1), &p->amount_min);
  o.Integer("amount_max", Need::kOptional, AtLeast<int64_t>(1), &p->amount_max);
  o.Number("void_ratio", Need::kOptional, kProbability, &p->void_ratio);
  o.Number("capture_delay_s_min", Need::kOptional, kSecondsNonNegative, &p->capture_delay_s_min);
  o.Number("capture_delay_s_max", Need::kOptional, kSecondsNonNegative, &p->capture_delay_s_max);
  o.Number("upstream_timeout_ms", Need::kOptional, kMillisPositive, &p->upstream_timeout_ms);
  o.Integer("upstream_retry_count_max", Need::kOptional, Within<int64_t>(0, 100),
            &p->upstream_retry_count_max);
  o.Number("rpc_timeout_ms", Need::kOptional, kMillisPositive, &p->rpc_timeout_ms);
  o.Number("partner_timeout_ms", Need::kOptional, kMillisPositive, &p->partner_timeout_ms);
  o.Integer("worker_attempts_max", Need::kOptional, Within<int64_t>(1, 100),
            &p->worker_attempts_max);
  o.Number("queue_backoff_s_min", Need::kOptional, kSecondsPositive, &p->queue_backoff_s_min);
  o.Number("queue_backoff_s_max", Need::kOptional, kSecondsPositive, &p->queue_backoff_s_max);
  o.Number("batch_interval_s", Need::kOptional, kSecondsNonNegative, &p->batch_interval_s);
  o.Number("recovery_horizon_days", Need::kOptional, kDaysPositive, &p->recovery_horizon_days);
  o.Number("hold_ttl_s", Need::kOptional, kSecondsPositive, &p->hold_ttl_s);
  o.Integer("fee_bp", Need::kOptional, Within<int64_t>(0, 10000), &p->fee_bp);
  o.Number("clearing_interval_s", Need::kOptional, kSecondsNonNegative, &p->clearing_interval_s);
  o.Integer("reward_bp", Need::kOptional, Within<int64_t>(0, 10000), &p->reward_bp);
  o.Number("assignment_failure", Need::kOptional, kProbability, &p->assignment_failure);
  o.Number("assignment_redrive_at_s", Need::kOptional, kSecondsNonNegative,
           &p->assignment_redrive_at_s);
  o.Number("misuse_ratio", Need::kOptional, kProbability, &p->misuse_ratio);
  o.Number("misuse_rate_per_s", Need::kOptional, AtLeast(0.0, 1e6), &p->misuse_rate_per_s);
  if (r.ok() && p->amount_max < p->amount_min) {
    r.Fail(o.PointerTo("amount_max"), "must be at least amount_min");
  }
  if (r.ok() && p->partner_service_ms_max < p->partner_service_ms_min) {
    r.Fail(o.PointerTo("partner_service_ms_max"), "must be at least partner_service_ms_min");
  }
  if (r.ok() && p->capture_delay_s_max < p->capture_delay_s_min) {
    r.Fail(o.PointerTo("capture_delay_s_max"), "must be at least capture_delay_s_min");
  }
  if (r.ok() && p->queue_backoff_s_max < p->queue_backoff_s_min) {
    r.Fail(o.PointerTo("queue_backoff_s_max"), "must be at least queue_backoff_s_min");
  }
}

void ReadMigration(Reader& r, const Json& j, const std::string& pointer,
                   const std::vector<AccountTypeSpec>& types, MigrationOptions* m) {
  ObjectReader o(r, j, pointer, kMigrationFields);
  o.Bool("enabled", Need::kOptional, &m->enabled);
  o.String("strategy", Need::kOptional, &m->strategy);
  if (r.ok() && !ParseStrategy(m->strategy)) {
    r.Fail(o.PointerTo("strategy"), fmt::format("unknown strategy {}; expected one of {}",
                                                Quote(m->strategy), StrategyNames()));
  }
  for (auto [field, out] :
       {std::pair{"cashback_type", &m->cashback_type}, std::pair{"money_type", &m->money_type}}) {
    o.String(field, Need::kOptional, out);
    bool found = false;
    for (const AccountTypeSpec& t : types) {
      found = found || t.name == *out;
    }
    // The types must exist when the migration runs (a disabled section may
    // keep its defaults in any scenario).
    if (r.ok() && m->enabled && !found) {
      r.Fail(o.PointerTo(field),
             fmt::format("no account type is named {} (see /account_types)", Quote(*out)));
    }
  }
  if (r.ok() && m->cashback_type == m->money_type) {
    r.Fail(o.PointerTo("money_type"), "must differ from cashback_type");
  }
  o.Number("start_s", Need::kOptional, kSecondsNonNegative, &m->start_s);
  o.Number("copy_ms_per_user", Need::kOptional, AtLeast(0.0, 60000.0), &m->copy_ms_per_user);
  o.Integer("batch_size", Need::kOptional, Within<int64_t>(1, 100000), &m->batch_size);
  o.Integer("cohorts", Need::kOptional, Within<int64_t>(1, 10000), &m->cohorts);
  o.Number("cohort_gap_s", Need::kOptional, kSecondsNonNegative, &m->cohort_gap_s);
  o.Number("banner_lead_s", Need::kOptional, kSecondsNonNegative, &m->banner_lead_s);
  o.Integer("cohort_attempts_max", Need::kOptional, Within<int64_t>(1, 100),
            &m->cohort_attempts_max);
  o.Number("drain_timeout_s", Need::kOptional, kSecondsPositive, &m->drain_timeout_s);
  o.Number("job_rate_per_s", Need::kOptional, kRatePositive, &m->job_rate_per_s);
  o.Bool("dual_write", Need::kOptional, &m->dual_write);
  o.Number("reconcile_interval_s", Need::kOptional, kSecondsNonNegative, &m->reconcile_interval_s);
  o.Integer("reconcile_batch", Need::kOptional, Within<int64_t>(1, 100000), &m->reconcile_batch);
  o.Number("rpc_timeout_ms", Need::kOptional, kMillisPositive, &m->rpc_timeout_ms);
  o.Number("sample_interval_s", Need::kOptional, Above(0.0, 86400.0), &m->sample_interval_s);
  for (auto [field, out] : {std::pair{"pay", &m->pay}, std::pair{"earn", &m->earn},
                            std::pair{"topup", &m->topup}, std::pair{"lookup", &m->lookup}}) {
    o.Number(field, Need::kOptional, AtLeast(0.0, 1e6), out);
  }
  if (r.ok() && m->pay + m->earn + m->topup + m->lookup <= 0) {
    r.Fail(o.PointerTo("pay"), "the weights pay, earn, topup and lookup must not all be 0");
  }
  o.Number("use_points_ratio", Need::kOptional, kProbability, &m->use_points_ratio);
  o.Number("new_api_ratio", Need::kOptional, kProbability, &m->new_api_ratio);
  o.Number("pair_ratio", Need::kOptional, kProbability, &m->pair_ratio);
  o.Number("misuse_ratio", Need::kOptional, kProbability, &m->misuse_ratio);
  o.Integer("earn_min", Need::kOptional, AtLeast<int64_t>(1), &m->earn_min);
  o.Integer("earn_max", Need::kOptional, AtLeast<int64_t>(1), &m->earn_max);
  if (r.ok() && m->earn_max < m->earn_min) {
    r.Fail(o.PointerTo("earn_max"), "must be at least earn_min");
  }
  o.Number("commit_delay_s_max", Need::kOptional, kSecondsNonNegative, &m->commit_delay_s_max);
  o.Number("maintenance_retry_s", Need::kOptional, kSecondsPositive, &m->maintenance_retry_s);
}

bool IsValidCheckName(std::string_view name) {
  if (name.empty() || name.front() < 'a' || name.front() > 'z') {
    return false;
  }
  return std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_';
  });
}

void ReadRequiredCheck(Reader& r, const Json& j, const std::string& pointer, std::string* name) {
  if (r.ReadString(j, pointer, name) && !IsValidCheckName(*name)) {
    r.Fail(pointer, fmt::format("{} is not a check name (lowercase letters, digits and _, "
                                "starting with a letter, as the summary lists them)",
                                Quote(*name)));
  }
}

void ReadChecks(Reader& r, const Json& j, const std::string& pointer, ChecksOptions* c) {
  ObjectReader o(r, j, pointer, kChecksFields);
  if (const Json* required = o.Get("required", Need::kOptional)) {
    ReadArray(r, *required, o.PointerTo("required"), &c->required, ReadRequiredCheck);
  }
  for (size_t i = 0; r.ok() && i < c->required.size(); ++i) {
    for (size_t k = 0; k < i; ++k) {
      if (c->required[k] == c->required[i]) {
        r.Fail(Child(o.PointerTo("required"), i),
               fmt::format("{} is listed twice (also at {})", Quote(c->required[i]),
                           Child(o.PointerTo("required"), k)));
        break;
      }
    }
  }
}

void ReadScenario(Reader& r, const Json& doc, Scenario* s) {
  ObjectReader o(r, doc, "", kScenarioFields);
  o.String("name", Need::kRequired, &s->name);
  if (r.ok() && s->name.empty()) {
    r.Fail(o.PointerTo("name"), "must not be empty");
  }
  o.String("description", Need::kOptional, &s->description);
  o.Number("duration_s", Need::kRequired, kSecondsPositive, &s->duration_s);
  o.Number("settle_s", Need::kOptional, kSecondsNonNegative, &s->settle_s);
  if (const Json* types = o.Get("account_types", Need::kRequired)) {
    ReadAccountTypes(r, *types, o.PointerTo("account_types"), &s->account_types);
  }
  if (const Json* population = o.Get("population", Need::kRequired)) {
    ObjectReader p(r, *population, o.PointerTo("population"), kPopulationFields);
    p.Integer("users", Need::kRequired, AtLeast<int64_t>(1), &s->population.users);
    if (const Json* balances = p.Get("initial_balances", Need::kOptional)) {
      ReadInitialBalances(r, *balances, p.PointerTo("initial_balances"), s->account_types,
                          s->population.users, &s->population.initial_balances);
    }
  }
  if (const Json* workload = o.Get("workload", Need::kRequired)) {
    ReadWorkload(r, *workload, o.PointerTo("workload"), s->account_types, &s->workload);
  }
  if (const Json* network = o.Get("network", Need::kOptional)) {
    ReadNetwork(r, *network, o.PointerTo("network"), &s->network);
  }
  if (const Json* faults = o.Get("faults", Need::kOptional)) {
    ReadFaults(r, *faults, o.PointerTo("faults"), &s->faults);
  }
  if (const Json* wallet = o.Get("wallet", Need::kOptional)) {
    ReadWallet(r, *wallet, o.PointerTo("wallet"), &s->wallet);
  }
  if (const Json* messaging = o.Get("messaging", Need::kOptional)) {
    ReadMessaging(r, *messaging, o.PointerTo("messaging"), &s->messaging);
  }
  if (const Json* payments = o.Get("payments", Need::kOptional)) {
    ReadPayments(r, *payments, o.PointerTo("payments"), &s->payments);
  }
  if (const Json* migration = o.Get("migration", Need::kOptional)) {
    ReadMigration(r, *migration, o.PointerTo("migration"), s->account_types, &s->migration);
  }
  if (const Json* checks = o.Get("checks", Need::kOptional)) {
    ReadChecks(r, *checks, o.PointerTo("checks"), &s->checks);
  }
  if (r.ok() && s->migration.enabled && (s->payments.enabled || s->messaging.enabled)) {
    r.Fail(s->payments.enabled ? "/payments/enabled" : "/messaging/enabled",
           "the migration world has its own services (the wallet, the point service, a broker "
           "for the dual-write): turn payments and messaging off when /migration/enabled is true");
  }
  if (r.ok() && s->migration.enabled && s->population.users < 2) {
    r.Fail("/population/users", "a migration needs at least 2 users (payments go to a user)");
  }
  if (r.ok() && s->migration.enabled && s->workload.hold_ttl_s > s->wallet.hold_ttl_max_s) {
    r.Fail("/workload/hold_ttl_s",
           fmt::format("must be at most /wallet/hold_ttl_max_s ({})", s->wallet.hold_ttl_max_s));
  }
  if (r.ok() && s->payments.enabled && !s->messaging.enabled) {
    r.Fail("/payments/enabled",
           "payments need messaging (the completion notifications): set /messaging/enabled");
  }
  if (r.ok() && s->payments.enabled && s->payments.hold_ttl_s > s->wallet.hold_ttl_max_s) {
    r.Fail("/payments/hold_ttl_s",
           fmt::format("must be at most /wallet/hold_ttl_max_s ({}), or the wallet refuses the "
                       "payments' holds",
                       s->wallet.hold_ttl_max_s));
  }
  if (r.ok() && s->payments.enabled && s->population.users < 2) {
    r.Fail("/population/users", "payments need at least 2 users (P2P transfers)");
  }
  // Every node a fault names must exist: the payment nodes only with
  // payments on, the broker and the mirror only with messaging on.
  std::vector<std::pair<std::string, std::string_view>> named;  // pointer, node
  for (size_t i = 0; i < s->faults.crashes.size(); ++i) {
    named.emplace_back(fmt::format("/faults/crashes/{}/node", i), s->faults.crashes[i].node);
  }
  for (size_t i = 0; i < s->faults.partitions.size(); ++i) {
    for (size_t k = 0; k < 2; ++k) {
      named.emplace_back(fmt::format("/faults/partitions/{}/between/{}", i, k),
                         s->faults.partitions[i].between[k]);
    }
  }
  for (size_t i = 0; i < s->faults.schedule.crashes.size(); ++i) {
    named.emplace_back(fmt::format("/faults/schedule/crashes/{}/node", i),
                       s->faults.schedule.crashes[i].node);
  }
  for (size_t i = 0; i < s->faults.schedule.clock_steps.size(); ++i) {
    named.emplace_back(fmt::format("/faults/schedule/clock_steps/{}/node", i),
                       s->faults.schedule.clock_steps[i].node);
  }
  auto needs_payments = [](std::string_view node) {
    return node == "point" || node == "payment" || node == "partner" || node == "checkout" ||
           node == "marketplace";
  };
  auto needs_messaging = [](std::string_view node) { return node == "broker" || node == "mirror"; };
  auto in_migration = [](std::string_view node) {
    return node == "client" || node == "wallet" || node == "broker" || node == "point" ||
           node == "controller" || node == "migrator";
  };
  for (const auto& [pointer, node] : named) {
    if (s->migration.enabled) {
      if (r.ok() && !in_migration(node)) {
        r.Fail(pointer, fmt::format("node {} is not part of the migration world (its nodes: "
                                    "client, wallet, broker, point, controller, migrator)",
                                    Quote(node)));
      }
      continue;
    }
    if (r.ok() && (node == "controller" || node == "migrator")) {
      r.Fail(pointer,
             fmt::format("node {} exists only when /migration/enabled is true", Quote(node)));
    }
    if (r.ok() && !s->payments.enabled && needs_payments(node)) {
      r.Fail(pointer,
             fmt::format("node {} exists only when /payments/enabled is true", Quote(node)));
    }
    if (r.ok() && node == "hostile" &&
        (!s->payments.enabled || s->payments.misuse_rate_per_s <= 0)) {
      r.Fail(pointer, fmt::format("node {} exists only when /payments/enabled is true and "
                                  "/payments/misuse_rate_per_s is above 0",
                                  Quote(node)));
    }
    if (r.ok() && !s->messaging.enabled && needs_messaging(node)) {
      r.Fail(pointer,
             fmt::format("node {} exists only when /messaging/enabled is true", Quote(node)));
    }
  }
}

std::variant<Scenario, ScenarioError> ParseUnguarded(std::string_view json_text) {
  SyntaxChecker checker(json_text);
  bool well_formed = Json::sax_parse(json_text.begin(), json_text.end(), &checker,
                                     Json::input_format_t::json, /*strict=*/true,
                                     /*ignore_comments=*/false);
  if (!well_formed) {
    if (checker.error()) {
      return std::move(*checker.error());
    }
    return ScenarioError{"", "malformed JSON"};  // The parser stopped without saying why.
  }
  Json doc = Json::parse(json_text.begin(), json_text.end(), nullptr, /*allow_exceptions=*/false,
                         /*ignore_comments=*/false);
  if (doc.is_discarded()) {
    return ScenarioError{"", "malformed JSON"};  // Unreachable: the SAX pass accepted the text.
  }
  Reader reader;
  Scenario scenario;
  ReadScenario(reader, doc, &scenario);
  if (reader.failed()) {
    return reader.TakeError();
  }
  return scenario;
}

struct FileCloser {
  void operator()(std::FILE* f) const { std::fclose(f); }
};

std::variant<Scenario, ScenarioError> LoadUnguarded(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    return ScenarioError{"", "cannot read file: it is a directory"};
  }
  errno = 0;
  std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
  if (file == nullptr) {
    int err = errno;
    return ScenarioError{"",
                         fmt::format("cannot open file: {}", std::generic_category().message(err))};
  }
  std::string text;
  char buffer[1 << 16];
  while (true) {
    size_t n = std::fread(buffer, 1, sizeof(buffer), file.get());
    text.append(buffer, n);
    if (text.size() > kFileBytesMax) {
      return ScenarioError{"",
                           fmt::format("cannot read file: larger than {} bytes", kFileBytesMax)};
    }
    if (n < sizeof(buffer)) {
      break;
    }
  }
  if (std::ferror(file.get())) {
    int err = errno;
    return ScenarioError{"",
                         fmt::format("cannot read file: {}", std::generic_category().message(err))};
  }
  return ParseUnguarded(text);
}

// Shows control characters as \u00XX, so that a key holding a newline cannot split a message.
std::string OneLine(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    if (static_cast<unsigned char>(c) < 0x20 || c == 0x7F) {
      out += fmt::format("\\u{:04X}", static_cast<unsigned char>(c));
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

std::string_view ToString(LatencyDistribution d) {
  switch (d) {
    case LatencyDistribution::kConstant:
      return "constant";
    case LatencyDistribution::kUniform:
      return "uniform";
    case LatencyDistribution::kLogNormal:
      return "lognormal";
  }
  return "unknown";
}

std::variant<Scenario, ScenarioError> ParseScenario(std::string_view json_text) {
  // The schema walk checks types before every access, so nothing below should throw; the guard
  // is for what cannot be ruled out (std::bad_alloc on a huge document).
  try {
    return ParseUnguarded(json_text);
  } catch (const std::exception& e) {
    return ScenarioError{"", fmt::format("internal error while parsing: {}", e.what())};
  }
}

std::variant<Scenario, ScenarioError> LoadScenario(const std::filesystem::path& path) {
  try {
    return LoadUnguarded(path);
  } catch (const std::exception& e) {
    return ScenarioError{"", fmt::format("internal error while loading: {}", e.what())};
  }
}

std::string FormatError(const std::filesystem::path& file, const ScenarioError& e) {
  if (e.pointer.empty()) {
    return fmt::format("{}: {}", file.string(), OneLine(e.reason));
  }
  return fmt::format("{}: {}: {}", file.string(), OneLine(e.pointer), OneLine(e.reason));
}

nlohmann::json ToJson(const Scenario& s) {
  nlohmann::json types = nlohmann::json::array();
  for (const AccountTypeSpec& t : s.account_types) {
    types.push_back({
        {"name", t.name},
        {"debit_priority", t.debit_priority},
        {"allow_negative", t.allow_negative},
        {"expires_after_days", t.expires_after_days},
        {"auto_create", t.auto_create},
        {"balance_cap", t.balance_cap},
    });
  }
  nlohmann::json balances = nlohmann::json::object();
  for (const auto& [name, amount] : s.population.initial_balances) {
    balances[name] = amount;
  }
  const Workload& w = s.workload;
  const LatencySpec& l = s.network.latency_ms;
  nlohmann::json crashes = nlohmann::json::array();
  for (const CrashSpec& c : s.faults.crashes) {
    crashes.push_back({
        {"node", c.node},
        {"mean_interval_s", c.mean_interval_s},
        {"downtime_s_min", c.downtime_s_min},
        {"downtime_s_max", c.downtime_s_max},
    });
  }
  nlohmann::json partitions = nlohmann::json::array();
  for (const PartitionSpec& p : s.faults.partitions) {
    partitions.push_back({
        {"between", nlohmann::json::array({p.between[0], p.between[1]})},
        {"from_s", p.from_s},
        {"to_s", p.to_s},
    });
  }
  nlohmann::json points = nlohmann::json::array();
  for (const FaultPointSpec& p : s.faults.points) {
    points.push_back({
        {"point", p.point},
        {"probability", p.probability},
        {"hits", p.hits},
        {"downtime_s_min", p.downtime_s_min},
        {"downtime_s_max", p.downtime_s_max},
    });
  }
  nlohmann::json scheduled_crashes = nlohmann::json::array();
  for (const ScheduledCrashSpec& c : s.faults.schedule.crashes) {
    scheduled_crashes.push_back({{"node", c.node}, {"at_s", c.at_s}, {"downtime_s", c.downtime_s}});
  }
  nlohmann::json clock_steps = nlohmann::json::array();
  for (const ClockStepSpec& c : s.faults.schedule.clock_steps) {
    clock_steps.push_back({{"node", c.node}, {"at_s", c.at_s}, {"step_ms", c.step_ms}});
  }
  nlohmann::json rpc_faults = nlohmann::json::array();
  for (const RpcFaultSpec& f : s.faults.schedule.rpc_faults) {
    rpc_faults.push_back({{"method", f.method},
                          {"nth", f.nth},
                          {"fault", f.fault},
                          {"delay_ms", f.delay_ms},
                          {"reply", f.reply}});
  }
  return nlohmann::json{
      {"name", s.name},
      {"description", s.description},
      {"duration_s", s.duration_s},
      {"settle_s", s.settle_s},
      {"account_types", std::move(types)},
      {"population",
       {
           {"users", s.population.users},
           {"initial_balances", std::move(balances)},
       }},
      {"workload",
       {
           {"operations", w.operations},
           {"rate_per_s", w.rate_per_s},
           {"mix",
            {
                {"deposit", w.mix.deposit},
                {"transfer", w.mix.transfer},
                {"two_phase", w.mix.two_phase},
                {"misuse", w.mix.misuse},
            }},
           {"amount_min", w.amount_min},
           {"amount_max", w.amount_max},
           {"deposit_type", w.deposit_type},
           {"rollback_ratio", w.rollback_ratio},
           {"abandon_ratio", w.abandon_ratio},
           {"hold_ttl_s", w.hold_ttl_s},
           {"timeout_ms", w.timeout_ms},
           {"retry_count_max", w.retry_count_max},
           {"retry_backoff_ms", w.retry_backoff_ms},
           {"boundary_ratio", w.boundary_ratio},
       }},
      {"network",
       {
           {"latency_ms",
            {
                {"distribution", std::string(ToString(l.distribution))},
                {"min", l.min},
                {"max", l.max},
                {"median", l.median},
                {"sigma", l.sigma},
            }},
       }},
      {"faults",
       {
           {"drop_request", s.faults.drop_request},
           {"drop_reply", s.faults.drop_reply},
           {"duplicate_request", s.faults.duplicate_request},
           {"delay", s.faults.delay},
           {"delay_ms_max", s.faults.delay_ms_max},
           {"crashes", std::move(crashes)},
           {"partitions", std::move(partitions)},
           {"points", std::move(points)},
           {"schedule",
            {
                {"crashes", std::move(scheduled_crashes)},
                {"clock_steps", std::move(clock_steps)},
                {"rpc_faults", std::move(rpc_faults)},
            }},
       }},
      {"wallet",
       {
           {"expiry_scan_interval_s", s.wallet.expiry_scan_interval_s},
           {"hold_ttl_max_s", s.wallet.hold_ttl_max_s},
       }},
      {"messaging",
       {
           {"enabled", s.messaging.enabled},
           {"partitions", s.messaging.partitions},
           {"idempotent_producer", s.messaging.idempotent_producer},
           {"relay_interval_ms", s.messaging.relay_interval_ms},
           {"relay_batch_max", s.messaging.relay_batch_max},
           {"consumer_members", s.messaging.consumer_members},
           {"poll_interval_ms", s.messaging.poll_interval_ms},
           {"fetch_max", s.messaging.fetch_max},
           {"session_timeout_ms", s.messaging.session_timeout_ms},
           {"rpc_timeout_ms", s.messaging.rpc_timeout_ms},
           {"duplicate_delivery", s.messaging.duplicate_delivery},
           {"audit_queue", s.messaging.audit_queue},
           {"visibility_timeout_ms", s.messaging.visibility_timeout_ms},
           {"max_receives", s.messaging.max_receives},
           {"dead_letter_queue", s.messaging.dead_letter_queue},
           {"poison_messages", s.messaging.poison_messages},
           {"redrive_at_s", s.messaging.redrive_at_s},
       }},
      {"payments",
       {
           {"enabled", s.payments.enabled},
           {"merchants", s.payments.merchants},
           {"initial_points", s.payments.initial_points},
           {"point_expiry_days", s.payments.point_expiry_days},
           {"charges", s.payments.charges},
           {"charge_rate_per_s", s.payments.charge_rate_per_s},
           {"escrows", s.payments.escrows},
           {"escrow_rate_per_s", s.payments.escrow_rate_per_s},
           {"p2p_ratio", s.payments.p2p_ratio},
           {"partner_ratio", s.payments.partner_ratio},
           {"partner_amount_max", s.payments.partner_amount_max},
           {"partner_initial_balance", s.payments.partner_initial_balance},
           {"partner_unavailable", s.payments.partner_unavailable},
           {"partner_service_ms_min", s.payments.partner_service_ms_min},
           {"partner_service_ms_max", s.payments.partner_service_ms_max},
           {"amount_min", s.payments.amount_min},
           {"amount_max", s.payments.amount_max},
           {"void_ratio", s.payments.void_ratio},
           {"capture_delay_s_min", s.payments.capture_delay_s_min},
           {"capture_delay_s_max", s.payments.capture_delay_s_max},
           {"upstream_timeout_ms", s.payments.upstream_timeout_ms},
           {"upstream_retry_count_max", s.payments.upstream_retry_count_max},
           {"rpc_timeout_ms", s.payments.rpc_timeout_ms},
           {"partner_timeout_ms", s.payments.partner_timeout_ms},
           {"worker_attempts_max", s.payments.worker_attempts_max},
           {"queue_backoff_s_min", s.payments.queue_backoff_s_min},
           {"queue_backoff_s_max", s.payments.queue_backoff_s_max},
           {"batch_interval_s", s.payments.batch_interval_s},
           {"recovery_horizon_days", s.payments.recovery_horizon_days},
           {"hold_ttl_s", s.payments.hold_ttl_s},
           {"fee_bp", s.payments.fee_bp},
           {"clearing_interval_s", s.payments.clearing_interval_s},
           {"reward_bp", s.payments.reward_bp},
           {"assignment_failure", s.payments.assignment_failure},
           {"assignment_redrive_at_s", s.payments.assignment_redrive_at_s},
           {"misuse_ratio", s.payments.misuse_ratio},
           {"misuse_rate_per_s", s.payments.misuse_rate_per_s},
       }},
      {"migration",
       {
           {"enabled", s.migration.enabled},
           {"strategy", s.migration.strategy},
           {"cashback_type", s.migration.cashback_type},
           {"money_type", s.migration.money_type},
           {"start_s", s.migration.start_s},
           {"copy_ms_per_user", s.migration.copy_ms_per_user},
           {"batch_size", s.migration.batch_size},
           {"cohorts", s.migration.cohorts},
           {"cohort_gap_s", s.migration.cohort_gap_s},
           {"banner_lead_s", s.migration.banner_lead_s},
           {"cohort_attempts_max", s.migration.cohort_attempts_max},
           {"drain_timeout_s", s.migration.drain_timeout_s},
           {"job_rate_per_s", s.migration.job_rate_per_s},
           {"dual_write", s.migration.dual_write},
           {"reconcile_interval_s", s.migration.reconcile_interval_s},
           {"reconcile_batch", s.migration.reconcile_batch},
           {"rpc_timeout_ms", s.migration.rpc_timeout_ms},
           {"sample_interval_s", s.migration.sample_interval_s},
           {"pay", s.migration.pay},
           {"earn", s.migration.earn},
           {"topup", s.migration.topup},
           {"lookup", s.migration.lookup},
           {"use_points_ratio", s.migration.use_points_ratio},
           {"new_api_ratio", s.migration.new_api_ratio},
           {"pair_ratio", s.migration.pair_ratio},
           {"misuse_ratio", s.migration.misuse_ratio},
           {"earn_min", s.migration.earn_min},
           {"earn_max", s.migration.earn_max},
           {"commit_delay_s_max", s.migration.commit_delay_s_max},
           {"maintenance_retry_s", s.migration.maintenance_retry_s},
       }},
      {"checks", {{"required", s.checks.required}}},
  };
}

}  // namespace paylab::scenarios
