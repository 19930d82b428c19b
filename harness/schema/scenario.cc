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
  // The lower bound is the value of the sibling field min_name, read first.
  bool min_is_field = false;
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

// >= the sibling field `field` (and <= max).
template <typename T>
constexpr Range<T> AtLeastField(std::string_view field, T max = std::numeric_limits<T>::max()) {
  Range<T> r = AtLeast(std::numeric_limits<T>::lowest(), max);
  r.min_name = field;
  r.min_is_field = true;
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

// ----------------------------------------------------------------------------------------------
// Knob tables (knobs.h): each section's scalar knobs, read, checked and written from one list.

// No range: a bool or a string.
constexpr std::monostate kAny{};
using KnobRange = std::variant<std::monostate, Range<int64_t>, Range<double>>;

// What the loader needs of the scenario beyond the section it reads.
struct ReadContext {
  const std::vector<AccountTypeSpec>* types = nullptr;
};

template <typename S>
struct Knob {
  std::string_view name;
  // The member; none for a field the section reads with its own code.
  std::variant<std::monostate, bool S::*, int64_t S::*, double S::*, std::string S::*> member;
  Need need = Need::kOptional;
  KnobRange range;
  std::string_view unit;
  std::string_view doc;

  bool custom() const { return std::holds_alternative<std::monostate>(member); }
};

// A rule across fields, checked once `after` is read; its error names `at`
// ("" = the section's object), with " (the default)" when mark_default and
// `at` was absent.
template <typename S>
struct Rule {
  std::string_view after;
  std::string_view at;
  std::optional<std::string> (*check)(const S&, const ReadContext&);
  bool mark_default = false;
};

// A section: its knobs in order, its rules, and its own code for custom fields.
template <typename S>
struct Section {
  std::vector<Knob<S>> knobs;
  std::vector<Rule<S>> rules;
  void (*read_custom)(Reader&, ObjectReader&, std::string_view field, const ReadContext&,
                      S*) = nullptr;
  nlohmann::json (*write_custom)(std::string_view field, const S&) = nullptr;

  std::vector<std::string_view> FieldNames() const {
    std::vector<std::string_view> names;
    for (const Knob<S>& k : knobs) {
      names.push_back(k.name);
    }
    return names;
  }
};

#define PAYLAB_KNOB_ENTRY(type, name, default_value, need, range, unit, doc) \
  Knob<S>{#name, &S::name, Need::need, KnobRange(range), unit, doc},
#define PAYLAB_FIELD_ENTRY(name, doc) Knob<S>{#name, std::monostate{}, Need::kOptional, kAny, "", doc},

// The range of `k` for the value being read: a bound named after a sibling
// field takes that field's value (already read, or its default).
template <typename S, typename T>
Range<T> ResolvedRange(const Section<S>& section, const Range<T>& range, const S& out) {
  if (!range.min_is_field) {
    return range;
  }
  Range<T> resolved = range;
  for (const Knob<S>& k : section.knobs) {
    if (k.name == range.min_name) {
      resolved.min = out.*std::get<T S::*>(k.member);
    }
  }
  return resolved;
}

template <typename S>
void ReadKnob(Reader& r, ObjectReader& o, const Section<S>& section, const Knob<S>& k, S* out) {
  std::visit(
      [&](auto member) {
        using M = decltype(member);
        if constexpr (std::is_same_v<M, bool S::*>) {
          o.Bool(k.name, k.need, &(out->*member));
        } else if constexpr (std::is_same_v<M, std::string S::*>) {
          o.String(k.name, k.need, &(out->*member));
        } else if constexpr (std::is_same_v<M, int64_t S::*>) {
          o.Integer(k.name, k.need, ResolvedRange(section, std::get<Range<int64_t>>(k.range), *out),
                    &(out->*member));
        } else if constexpr (std::is_same_v<M, double S::*>) {
          o.Number(k.name, k.need, ResolvedRange(section, std::get<Range<double>>(k.range), *out),
                   &(out->*member));
        }
      },
      k.member);
}

// Reads a section's object: every knob in order, each rule once its field is read.
template <typename S>
void ReadSection(Reader& r, const Json& j, const std::string& pointer, const Section<S>& section,
                 const ReadContext& context, S* out) {
  const std::vector<std::string_view> names = section.FieldNames();
  ObjectReader o(r, j, pointer, names);
  for (const Knob<S>& k : section.knobs) {
    if (k.custom()) {
      section.read_custom(r, o, k.name, context, out);
    } else {
      ReadKnob(r, o, section, k, out);
    }
    for (const Rule<S>& rule : section.rules) {
      if (rule.after != k.name || !r.ok()) {
        continue;
      }
      if (std::optional<std::string> why = rule.check(*out, context)) {
        const bool defaulted = rule.mark_default && !o.Has(rule.at);
        r.Fail(rule.at.empty() ? pointer : o.PointerTo(rule.at),
               defaulted ? *why + " (the default)" : *why);
      }
    }
  }
}

// A section as canonical JSON: every field, defaults included.
template <typename S>
nlohmann::json WriteSection(const Section<S>& section, const S& s) {
  nlohmann::json out = nlohmann::json::object();
  for (const Knob<S>& k : section.knobs) {
    std::visit(
        [&](auto member) {
          if constexpr (std::is_same_v<decltype(member), std::monostate>) {
            out[std::string(k.name)] = section.write_custom(k.name, s);
          } else {
            out[std::string(k.name)] = s.*member;
          }
        },
        k.member);
  }
  return out;
}

// Field lists, in the order the walk reads them (and README.md documents them).
constexpr std::string_view kScenarioFields[] = {
    "name",    "description", "duration_s", "settle_s",  "account_types", "population", "workload",
    "network", "faults",      "wallet",     "messaging", "payments",      "migration",  "checks"};
constexpr std::string_view kChecksFields[] = {"required"};
constexpr std::string_view kAccountTypeFields[] = {
    "name", "debit_priority", "allow_negative", "expires_after_days", "auto_create", "balance_cap"};
constexpr std::string_view kPopulationFields[] = {"users", "initial_balances"};
constexpr std::string_view kNetworkFields[] = {"latency_ms"};
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

const Section<Mix>& MixSection() {
  using S = Mix;
  static const Section<Mix> kSection{
      {PAYLAB_MIX_KNOBS(PAYLAB_KNOB_ENTRY, PAYLAB_FIELD_ENTRY)},
      {{"misuse", "",
        [](const Mix& m, const ReadContext&) -> std::optional<std::string> {
          const double sum = m.deposit + m.transfer + m.two_phase + m.misuse;
          if (!(sum > 0) || !std::isfinite(sum)) {
            return fmt::format("weights must have a finite sum > 0, got {}", sum);
          }
          return std::nullopt;
        }}}};
  return kSection;
}

// The deposit type: a type the scenario names, by default the one with the
// highest debit_priority.
void ReadDepositType(Reader& r, ObjectReader& o, const std::vector<AccountTypeSpec>& types,
                     std::string* out) {
  if (const Json* deposit = o.Get("deposit_type", Need::kOptional)) {
    std::string deposit_pointer = o.PointerTo("deposit_type");
    if (r.ReadString(*deposit, deposit_pointer, out) && FindType(types, *out) == nullptr) {
      r.Fail(deposit_pointer, UnknownTypeReason(*out, types));
    }
  } else if (r.ok() && !types.empty()) {
    auto highest = std::max_element(types.begin(), types.end(),
                                    [](const AccountTypeSpec& a, const AccountTypeSpec& b) {
                                      return a.debit_priority < b.debit_priority;
                                    });
    *out = highest->name;
  }
}

const Section<Workload>& WorkloadSection() {
  using S = Workload;
  static const Section<Workload> kSection{
      {PAYLAB_WORKLOAD_KNOBS(PAYLAB_KNOB_ENTRY, PAYLAB_FIELD_ENTRY)},
      {{"abandon_ratio", "abandon_ratio",
        [](const Workload& w, const ReadContext&) -> std::optional<std::string> {
          if (w.rollback_ratio + w.abandon_ratio > 1) {
            return fmt::format("rollback_ratio + abandon_ratio must be <= 1, got {} + {}",
                               w.rollback_ratio, w.abandon_ratio);
          }
          return std::nullopt;
        }}},
      [](Reader& r, ObjectReader& o, std::string_view field, const ReadContext& context,
         Workload* w) {
        if (field == "mix") {
          if (const Json* mix = o.Get("mix", Need::kOptional)) {
            ReadSection(r, *mix, o.PointerTo("mix"), MixSection(), context, &w->mix);
          }
        } else {
          ReadDepositType(r, o, *context.types, &w->deposit_type);
        }
      },
      [](std::string_view field, const Workload& w) -> nlohmann::json {
        if (field == "mix") {
          return WriteSection(MixSection(), w.mix);
        }
        return w.deposit_type;
      }};
  return kSection;
}

void ReadDistribution(Reader& r, ObjectReader& o, LatencySpec* l) {
  const Json* d = o.Get("distribution", Need::kOptional);
  std::string name;
  if (d == nullptr || !r.ReadString(*d, o.PointerTo("distribution"), &name)) {
    return;
  }
  auto it = std::find_if(std::begin(kDistributions), std::end(kDistributions),
                         [&](LatencyDistribution x) { return ToString(x) == name; });
  if (it == std::end(kDistributions)) {
    r.Fail(o.PointerTo("distribution"),
           fmt::format("must be one of {}; got {}",
                       JoinNames(kDistributions,
                                 [](LatencyDistribution x) { return Quote(ToString(x)); }),
                       Quote(name)));
  } else {
    l->distribution = *it;
  }
}

const Section<LatencySpec>& LatencySection() {
  using S = LatencySpec;
  static const Section<LatencySpec> kSection{
      {PAYLAB_LATENCY_KNOBS(PAYLAB_KNOB_ENTRY, PAYLAB_FIELD_ENTRY)},
      {{"median", "median",
        [](const LatencySpec& l, const ReadContext&) -> std::optional<std::string> {
          Range<double> in = Within(l.min, l.max);
          in.min_name = "min";
          in.max_name = "max";
          return RangeViolation(l.median, in);
        },
        /*mark_default=*/true}},
      [](Reader& r, ObjectReader& o, std::string_view, const ReadContext&, LatencySpec* l) {
        ReadDistribution(r, o, l);
      },
      [](std::string_view, const LatencySpec& l) -> nlohmann::json {
        return std::string(ToString(l.distribution));
      }};
  return kSection;
}

void ReadNetwork(Reader& r, const Json& j, const std::string& pointer, Network* n) {
  ObjectReader o(r, j, pointer, kNetworkFields);
  if (const Json* latency = o.Get("latency_ms", Need::kOptional)) {
    ReadSection(r, *latency, o.PointerTo("latency_ms"), LatencySection(), ReadContext{},
                &n->latency_ms);
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

const Section<WalletOptions>& WalletSection() {
  using S = WalletOptions;
  static const Section<WalletOptions> kSection{
      {PAYLAB_WALLET_KNOBS(PAYLAB_KNOB_ENTRY, PAYLAB_FIELD_ENTRY)}, {}, nullptr, nullptr};
  return kSection;
}

const Section<MessagingOptions>& MessagingSection() {
  using S = MessagingOptions;
  static const Section<MessagingOptions> kSection{
      {PAYLAB_MESSAGING_KNOBS(PAYLAB_KNOB_ENTRY, PAYLAB_FIELD_ENTRY)}, {}, nullptr, nullptr};
  return kSection;
}

const Section<PaymentsOptions>& PaymentsSection() {
  using S = PaymentsOptions;
  using P = PaymentsOptions;
  using Why = std::optional<std::string>;
  static const Section<PaymentsOptions> kSection{
      {PAYLAB_PAYMENTS_KNOBS(PAYLAB_KNOB_ENTRY, PAYLAB_FIELD_ENTRY)},
      {{"misuse_rate_per_s", "amount_max",
        [](const P& p, const ReadContext&) -> Why {
          return p.amount_max < p.amount_min ? Why("must be at least amount_min") : std::nullopt;
        }},
       {"misuse_rate_per_s", "partner_service_ms_max",
        [](const P& p, const ReadContext&) -> Why {
          return p.partner_service_ms_max < p.partner_service_ms_min
                     ? Why("must be at least partner_service_ms_min")
                     : std::nullopt;
        }},
       {"misuse_rate_per_s", "capture_delay_s_max",
        [](const P& p, const ReadContext&) -> Why {
          return p.capture_delay_s_max < p.capture_delay_s_min
                     ? Why("must be at least capture_delay_s_min")
                     : std::nullopt;
        }},
       {"misuse_rate_per_s", "queue_backoff_s_max",
        [](const P& p, const ReadContext&) -> Why {
          return p.queue_backoff_s_max < p.queue_backoff_s_min
                     ? Why("must be at least queue_backoff_s_min")
                     : std::nullopt;
        }}}};
  return kSection;
}

// Why the migration names an account type the scenario lacks (the types
// must exist when the migration runs; a disabled section may keep its
// defaults in any scenario).
std::optional<std::string> MissingType(const MigrationOptions& m, const std::string& name,
                                       const ReadContext& context) {
  const bool found = FindType(*context.types, name) != nullptr;
  if (m.enabled && !found) {
    return fmt::format("no account type is named {} (see /account_types)", Quote(name));
  }
  return std::nullopt;
}

const Section<MigrationOptions>& MigrationSection() {
  using S = MigrationOptions;
  using M = MigrationOptions;
  using Why = std::optional<std::string>;
  static const Section<MigrationOptions> kSection{
      {PAYLAB_MIGRATION_KNOBS(PAYLAB_KNOB_ENTRY, PAYLAB_FIELD_ENTRY)},
      {{"strategy", "strategy",
        [](const M& m, const ReadContext&) -> Why {
          if (ParseStrategy(m.strategy)) {
            return std::nullopt;
          }
          return fmt::format("unknown strategy {}; expected one of {}", Quote(m.strategy),
                             StrategyNames());
        }},
       {"cashback_type", "cashback_type",
        [](const M& m, const ReadContext& c) { return MissingType(m, m.cashback_type, c); }},
       {"money_type", "money_type",
        [](const M& m, const ReadContext& c) { return MissingType(m, m.money_type, c); }},
       {"money_type", "money_type",
        [](const M& m, const ReadContext&) -> Why {
          return m.cashback_type == m.money_type ? Why("must differ from cashback_type")
                                                 : std::nullopt;
        }},
       {"lookup", "pay",
        [](const M& m, const ReadContext&) -> Why {
          if (m.pay + m.earn + m.topup + m.lookup <= 0) {
            return Why("the weights pay, earn, topup and lookup must not all be 0");
          }
          return std::nullopt;
        }},
       {"earn_max", "earn_max", [](const M& m, const ReadContext&) -> Why {
          return m.earn_max < m.earn_min ? Why("must be at least earn_min") : std::nullopt;
        }}}};
  return kSection;
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

// The rules between sections: which platform a scenario builds, and what
// it needs of the others.
void CheckPlatformRules(Reader& r, const Scenario& s) {
  if (r.ok() && s.migration.enabled && (s.payments.enabled || s.messaging.enabled)) {
    r.Fail(s.payments.enabled ? "/payments/enabled" : "/messaging/enabled",
           "the migration world has its own services (the wallet, the point service, a broker "
           "for the dual-write): turn payments and messaging off when /migration/enabled is true");
  }
  if (r.ok() && s.migration.enabled && s.population.users < 2) {
    r.Fail("/population/users", "a migration needs at least 2 users (payments go to a user)");
  }
  if (r.ok() && s.migration.enabled && s.workload.hold_ttl_s > s.wallet.hold_ttl_max_s) {
    r.Fail("/workload/hold_ttl_s",
           fmt::format("must be at most /wallet/hold_ttl_max_s ({})", s.wallet.hold_ttl_max_s));
  }
  if (r.ok() && s.payments.enabled && !s.messaging.enabled) {
    r.Fail("/payments/enabled",
           "payments need messaging (the completion notifications): set /messaging/enabled");
  }
  if (r.ok() && s.payments.enabled && s.payments.hold_ttl_s > s.wallet.hold_ttl_max_s) {
    r.Fail("/payments/hold_ttl_s",
           fmt::format("must be at most /wallet/hold_ttl_max_s ({}), or the wallet refuses the "
                       "payments' holds",
                       s.wallet.hold_ttl_max_s));
  }
  if (r.ok() && s.payments.enabled && s.population.users < 2) {
    r.Fail("/population/users", "payments need at least 2 users (P2P transfers)");
  }
}

// Every node a fault names must exist in the platform the scenario builds.
void CheckFaultNodesExist(Reader& r, const Scenario& s) {
  // The payment nodes only with
  // payments on, the broker and the mirror only with messaging on.
  std::vector<std::pair<std::string, std::string_view>> named;  // pointer, node
  for (size_t i = 0; i < s.faults.crashes.size(); ++i) {
    named.emplace_back(fmt::format("/faults/crashes/{}/node", i), s.faults.crashes[i].node);
  }
  for (size_t i = 0; i < s.faults.partitions.size(); ++i) {
    for (size_t k = 0; k < 2; ++k) {
      named.emplace_back(fmt::format("/faults/partitions/{}/between/{}", i, k),
                         s.faults.partitions[i].between[k]);
    }
  }
  for (size_t i = 0; i < s.faults.schedule.crashes.size(); ++i) {
    named.emplace_back(fmt::format("/faults/schedule/crashes/{}/node", i),
                       s.faults.schedule.crashes[i].node);
  }
  for (size_t i = 0; i < s.faults.schedule.clock_steps.size(); ++i) {
    named.emplace_back(fmt::format("/faults/schedule/clock_steps/{}/node", i),
                       s.faults.schedule.clock_steps[i].node);
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
    if (s.migration.enabled) {
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
    if (r.ok() && !s.payments.enabled && needs_payments(node)) {
      r.Fail(pointer,
             fmt::format("node {} exists only when /payments/enabled is true", Quote(node)));
    }
    if (r.ok() && node == "hostile" &&
        (!s.payments.enabled || s.payments.misuse_rate_per_s <= 0)) {
      r.Fail(pointer, fmt::format("node {} exists only when /payments/enabled is true and "
                                  "/payments/misuse_rate_per_s is above 0",
                                  Quote(node)));
    }
    if (r.ok() && !s.messaging.enabled && needs_messaging(node)) {
      r.Fail(pointer,
             fmt::format("node {} exists only when /messaging/enabled is true", Quote(node)));
    }
  }}

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
    ReadSection(r, *workload, o.PointerTo("workload"), WorkloadSection(),
                ReadContext{&s->account_types}, &s->workload);
  }
  if (const Json* network = o.Get("network", Need::kOptional)) {
    ReadNetwork(r, *network, o.PointerTo("network"), &s->network);
  }
  if (const Json* faults = o.Get("faults", Need::kOptional)) {
    ReadFaults(r, *faults, o.PointerTo("faults"), &s->faults);
  }
  if (const Json* wallet = o.Get("wallet", Need::kOptional)) {
    ReadSection(r, *wallet, o.PointerTo("wallet"), WalletSection(), ReadContext{}, &s->wallet);
  }
  if (const Json* messaging = o.Get("messaging", Need::kOptional)) {
    ReadSection(r, *messaging, o.PointerTo("messaging"), MessagingSection(), ReadContext{},
                &s->messaging);
  }
  if (const Json* payments = o.Get("payments", Need::kOptional)) {
    ReadSection(r, *payments, o.PointerTo("payments"), PaymentsSection(), ReadContext{},
                &s->payments);
  }
  if (const Json* migration = o.Get("migration", Need::kOptional)) {
    ReadSection(r, *migration, o.PointerTo("migration"), MigrationSection(),
                ReadContext{&s->account_types}, &s->migration);
  }
  if (const Json* checks = o.Get("checks", Need::kOptional)) {
    ReadChecks(r, *checks, o.PointerTo("checks"), &s->checks);
  }
  CheckPlatformRules(r, *s);
  CheckFaultNodesExist(r, *s);
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

namespace {

std::string DefaultText(const nlohmann::json& value) {
  if (value.is_number_float()) {
    const double d = value.get<double>();
    if (d == std::trunc(d) && std::fabs(d) < 1e15) {
      return fmt::format("`{}`", static_cast<int64_t>(d));
    }
    return fmt::format("`{}`", d);
  }
  return fmt::format("`{}`", value.dump());
}

template <typename S>
std::vector<KnobDoc> DocsOf(const Section<S>& section) {
  const nlohmann::json defaults = WriteSection(section, S{});
  std::vector<KnobDoc> docs;
  for (const Knob<S>& k : section.knobs) {
    KnobDoc d{std::string(k.name), "", std::string(k.unit), "", std::string(k.doc)};
    std::visit(
        [&](auto member) {
          using M = decltype(member);
          if constexpr (std::is_same_v<M, bool S::*>) {
            d.type = "bool";
          } else if constexpr (std::is_same_v<M, int64_t S::*>) {
            d.type = "integer";
          } else if constexpr (std::is_same_v<M, double S::*>) {
            d.type = "number";
          } else if constexpr (std::is_same_v<M, std::string S::*>) {
            d.type = "string";
          }
        },
        k.member);
    if (!k.custom()) {
      d.default_value = k.need == Need::kRequired ? "required"
                                                  : DefaultText(defaults[std::string(k.name)]);
    }
    docs.push_back(std::move(d));
  }
  return docs;
}

}  // namespace

std::vector<std::pair<std::string, std::vector<KnobDoc>>> KnobReference() {
  return {
      {"workload", DocsOf(WorkloadSection())},
      {"workload.mix", DocsOf(MixSection())},
      {"network.latency_ms", DocsOf(LatencySection())},
      {"wallet", DocsOf(WalletSection())},
      {"messaging", DocsOf(MessagingSection())},
      {"payments", DocsOf(PaymentsSection())},
      {"migration", DocsOf(MigrationSection())},
  };
}

namespace {

nlohmann::json AccountTypesJson(const std::vector<AccountTypeSpec>& account_types) {
  nlohmann::json types = nlohmann::json::array();
  for (const AccountTypeSpec& t : account_types) {
    types.push_back({
        {"name", t.name},
        {"debit_priority", t.debit_priority},
        {"allow_negative", t.allow_negative},
        {"expires_after_days", t.expires_after_days},
        {"auto_create", t.auto_create},
        {"balance_cap", t.balance_cap},
    });
  }
  return types;
}

nlohmann::json ScheduleJson(const FaultSchedule& schedule) {
  nlohmann::json crashes = nlohmann::json::array();
  for (const ScheduledCrashSpec& c : schedule.crashes) {
    crashes.push_back({{"node", c.node}, {"at_s", c.at_s}, {"downtime_s", c.downtime_s}});
  }
  nlohmann::json clock_steps = nlohmann::json::array();
  for (const ClockStepSpec& c : schedule.clock_steps) {
    clock_steps.push_back({{"node", c.node}, {"at_s", c.at_s}, {"step_ms", c.step_ms}});
  }
  nlohmann::json rpc_faults = nlohmann::json::array();
  for (const RpcFaultSpec& f : schedule.rpc_faults) {
    rpc_faults.push_back({{"method", f.method},
                          {"nth", f.nth},
                          {"fault", f.fault},
                          {"delay_ms", f.delay_ms},
                          {"reply", f.reply}});
  }
  return {{"crashes", std::move(crashes)},
          {"clock_steps", std::move(clock_steps)},
          {"rpc_faults", std::move(rpc_faults)}};
}

nlohmann::json FaultsJson(const Faults& f) {
  nlohmann::json crashes = nlohmann::json::array();
  for (const CrashSpec& c : f.crashes) {
    crashes.push_back({
        {"node", c.node},
        {"mean_interval_s", c.mean_interval_s},
        {"downtime_s_min", c.downtime_s_min},
        {"downtime_s_max", c.downtime_s_max},
    });
  }
  nlohmann::json partitions = nlohmann::json::array();
  for (const PartitionSpec& p : f.partitions) {
    partitions.push_back({
        {"between", nlohmann::json::array({p.between[0], p.between[1]})},
        {"from_s", p.from_s},
        {"to_s", p.to_s},
    });
  }
  nlohmann::json points = nlohmann::json::array();
  for (const FaultPointSpec& p : f.points) {
    points.push_back({
        {"point", p.point},
        {"probability", p.probability},
        {"hits", p.hits},
        {"downtime_s_min", p.downtime_s_min},
        {"downtime_s_max", p.downtime_s_max},
    });
  }
  return {
      {"drop_request", f.drop_request},
      {"drop_reply", f.drop_reply},
      {"duplicate_request", f.duplicate_request},
      {"delay", f.delay},
      {"delay_ms_max", f.delay_ms_max},
      {"crashes", std::move(crashes)},
      {"partitions", std::move(partitions)},
      {"points", std::move(points)},
      {"schedule", ScheduleJson(f.schedule)},
  };
}

}  // namespace

nlohmann::json ToJson(const Scenario& s) {
  nlohmann::json balances = nlohmann::json::object();
  for (const auto& [name, amount] : s.population.initial_balances) {
    balances[name] = amount;
  }
  return nlohmann::json{
      {"name", s.name},
      {"description", s.description},
      {"duration_s", s.duration_s},
      {"settle_s", s.settle_s},
      {"account_types", AccountTypesJson(s.account_types)},
      {"population",
       {
           {"users", s.population.users},
           {"initial_balances", std::move(balances)},
       }},
      {"workload", WriteSection(WorkloadSection(), s.workload)},
      {"network", {{"latency_ms", WriteSection(LatencySection(), s.network.latency_ms)}}},
      {"faults", FaultsJson(s.faults)},
      {"wallet", WriteSection(WalletSection(), s.wallet)},
      {"messaging", WriteSection(MessagingSection(), s.messaging)},
      {"payments", WriteSection(PaymentsSection(), s.payments)},
      {"migration", WriteSection(MigrationSection(), s.migration)},
      {"checks", {{"required", s.checks.required}}},
  };
}

}  // namespace paylab::scenarios
