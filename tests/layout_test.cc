// The layout's rules, checked on the source tree itself:
//  - no function is longer than a screen (100 lines from its opening to its
//    closing brace), so each can be read whole;
//  - includes run one way: a folder includes only the folders below it
//    (kAllowed), so the kernel never depends on a service, a service never
//    on a check, a check never on the harness.
//
// The scanner reads C++ as text: comments, string and character literals
// (raw strings included) are blanked first, so braces inside them do not
// count; a brace opens a function body when it stands outside any function
// and the text before it, back to the last ';', '{' or '}', has a parameter
// list and is not a namespace, class, struct, union, enum or initialiser.
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

namespace paylab {
namespace {

namespace fs = std::filesystem;

const fs::path kSourceDir = PAYLAB_SOURCE_DIR;
constexpr int kMaxFunctionLines = 100;

std::string ReadText(const fs::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// Replaces what the compiler does not read as code (comments, literals,
// preprocessor lines) with spaces, keeping every newline so line numbers hold.
std::string BlankNonCode(const std::string& s) {
  std::string out = s;
  auto blank = [&](size_t from, size_t to) {
    for (size_t i = from; i < to && i < out.size(); ++i) {
      if (out[i] != '\n') out[i] = ' ';
    }
  };
  size_t i = 0;
  bool line_start = true;
  while (i < s.size()) {
    const char c = s[i];
    if (line_start && c == '#') {
      size_t end = i;
      while (end < s.size() && !(s[end] == '\n' && s[end - 1] != '\\')) ++end;
      blank(i, end);
      i = end;
      continue;
    }
    if (c == '\n') {
      line_start = true;
      ++i;
      continue;
    }
    if (c != ' ' && c != '\t') line_start = false;
    if (c == '/' && i + 1 < s.size() && s[i + 1] == '/') {
      const size_t end = s.find('\n', i);
      blank(i, end == std::string::npos ? s.size() : end);
      i = end == std::string::npos ? s.size() : end;
    } else if (c == '/' && i + 1 < s.size() && s[i + 1] == '*') {
      const size_t end = s.find("*/", i + 2);
      const size_t stop = end == std::string::npos ? s.size() : end + 2;
      blank(i, stop);
      i = stop;
    } else if (c == 'R' && i + 1 < s.size() && s[i + 1] == '"' &&
               (i == 0 || !(std::isalnum(static_cast<unsigned char>(s[i - 1])) || s[i - 1] == '_'))) {
      const size_t open = s.find('(', i);
      const std::string closer = ")" + s.substr(i + 2, open - i - 2) + "\"";
      const size_t end = s.find(closer, open);
      const size_t stop = end == std::string::npos ? s.size() : end + closer.size();
      blank(i, stop);
      i = stop;
    } else if (c == '"' || (c == '\'' && !(i > 0 && std::isxdigit(static_cast<unsigned char>(s[i - 1]))))) {
      // A quote after a hex digit is a digit separator (1'000), not a literal.
      size_t j = i + 1;
      while (j < s.size() && s[j] != c && s[j] != '\n') j += (s[j] == '\\') ? 2 : 1;
      blank(i, j + 1);
      i = j + 1;
    } else {
      ++i;
    }
  }
  return out;
}

struct LongFunction {
  std::string where;  // file:line of the opening brace
  int lines;
};

bool StartsWithKeyword(const std::string& head) {
  static const std::regex kNotAFunction(
      R"(^\s*(template\s*<[^{]*>\s*)?(namespace|class|struct|union|enum|extern)\b)");
  return std::regex_search(head, kNotAFunction);
}

bool IsFunctionHead(const std::string& head) {
  if (head.find('(') == std::string::npos) return false;
  if (StartsWithKeyword(head)) return false;
  // An initialiser (x = {...}, or a lambda stored at namespace scope).
  static const std::regex kAssignment(R"([^=!<>]=[^=])");
  return !std::regex_search(head, kAssignment);
}

// A brace inside a constructor's initialiser list (") : a_{x}, b_{y} {"):
// the head has the list's colon and the brace follows a member's name.
bool IsInitialiserBrace(const std::string& head) {
  static const std::regex kInitList(R"(\)\s*(const\s*)?(noexcept\s*)?:[^:].*[A-Za-z0-9_>]\s*$)");
  return std::regex_search(head, kInitList);
}

std::vector<LongFunction> LongFunctionsIn(const fs::path& file, const std::string& rel) {
  const std::string code = BlankNonCode(ReadText(file));
  std::vector<LongFunction> found;
  // Scope kinds: 'o' other (namespace, class, initialiser), 'f' function body.
  std::vector<char> scopes;
  std::vector<int> opened_at;
  std::string head;
  int line = 1, function_depth = -1;
  for (char c : code) {
    if (c == '\n') ++line;
    if (function_depth >= 0) {
      if (c == '{') scopes.push_back('i');
      if (c == '}') {
        scopes.pop_back();
        if (static_cast<int>(scopes.size()) == function_depth) {
          const int lines = line - opened_at.back() + 1;
          if (lines > kMaxFunctionLines) {
            found.push_back({rel + ":" + std::to_string(opened_at.back()), lines});
          }
          opened_at.pop_back();
          function_depth = -1;
          head.clear();
        }
      }
      continue;
    }
    if (c == '{') {
      if (IsInitialiserBrace(head)) {
        scopes.push_back('n');
        head += c;
        continue;
      }
      if (IsFunctionHead(head)) {
        function_depth = static_cast<int>(scopes.size());
        scopes.push_back('f');
        opened_at.push_back(line);
      } else {
        scopes.push_back('o');
        head.clear();
      }
      continue;
    }
    if (c == '}') {
      const char kind = scopes.empty() ? 'o' : scopes.back();
      if (!scopes.empty()) scopes.pop_back();
      if (kind == 'n') {
        head += c;
        continue;
      }
      head.clear();
      continue;
    }
    if (c == ';') {
      head.clear();
      continue;
    }
    head += c;
  }
  return found;
}

std::vector<fs::path> SourceFiles() {
  std::vector<fs::path> files;
  for (auto it = fs::recursive_directory_iterator(kSourceDir); it != fs::recursive_directory_iterator();
       ++it) {
    const std::string name = it->path().filename().string();
    if (it->is_directory() && (name.starts_with(".") || name.starts_with("build"))) {
      it.disable_recursion_pending();
      continue;
    }
    const auto ext = it->path().extension();
    if (it->is_regular_file() && (ext == ".cc" || ext == ".h")) files.push_back(it->path());
  }
  std::sort(files.begin(), files.end());
  return files;
}

TEST(Layout, NoFunctionIsLongerThanAScreen) {
  int scanned = 0;
  std::vector<LongFunction> all;
  for (const auto& file : SourceFiles()) {
    ++scanned;
    for (auto& f : LongFunctionsIn(file, fs::relative(file, kSourceDir).string())) all.push_back(f);
  }
  std::sort(all.begin(), all.end(), [](const auto& a, const auto& b) { return a.lines > b.lines; });
  for (const auto& f : all) {
    ADD_FAILURE() << f.where << ": a function of " << f.lines << " lines (at most "
                  << kMaxFunctionLines << "); split it";
  }
  EXPECT_GT(scanned, 50) << "the scanner found too few source files under " << kSourceDir;
}

// The scanner itself: a planted long function is found, braces in comments,
// strings and raw strings do not count, and classes and namespaces are not
// functions.
TEST(Layout, TheScannerFindsAPlantedLongFunction) {
  const fs::path dir = fs::temp_directory_path() / "paylab_layout_test";
  fs::create_directories(dir);
  std::string text = "namespace a {\nstruct S {\n  int f() const {\n";
  for (int i = 0; i < 120; ++i) text += "    x += \"}\"; // }\n";
  text += "    auto s = R\"x(}})x\";\n    return 1;\n  }\n};\n";
  text += "S::S(int v) : a_{v}, b_(v) {\n  g();\n}\n";
  text += "int short_one() { return '}'; }\n}  // namespace a\n";
  std::ofstream(dir / "planted.cc") << text;
  const auto found = LongFunctionsIn(dir / "planted.cc", "planted.cc");
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].where, "planted.cc:3");
  EXPECT_EQ(found[0].lines, 124);
}

// Each folder and the folders it may include, besides itself. Test files
// (*_test.cc and tests/) may include anything: a test of a service builds
// the world around it. The order is the layout's: sim <- faults <- system
// <- workloads <- checks <- harness <- cli; reports is a leaf the harness
// and the command write through. Inside system, messaging is the
// platform's plumbing (broker, outbox, relay, consumers) and knows no
// domain; the wallet publishes through it, points build on the wallet's
// account types and consume payment events, payments and the migration
// drive both.
struct FolderRule {
  std::string_view folder;
  std::vector<std::string_view> may_include;
};

const std::vector<FolderRule>& Rules() {
  static const std::vector<FolderRule> kRules = {
      {"sim", {}},
      {"faults", {"sim"}},
      {"system/common", {"sim"}},
      {"system/messaging", {"sim", "system/common"}},
      {"system/wallet", {"sim", "system/common", "system/messaging"}},
      {"system/points", {"sim", "system/common", "system/messaging", "system/wallet"}},
      {"system/payments",
       {"sim", "system/common", "system/messaging", "system/wallet", "system/points"}},
      {"system/migration",
       {"sim", "system/common", "system/messaging", "system/wallet", "system/points"}},
      {"workloads", {"sim", "system"}},
      {"checks", {"sim", "system", "workloads"}},
      {"checks/models", {"sim", "system", "workloads"}},
      {"reports", {}},
      {"harness/schema", {"sim", "faults", "system"}},
      {"harness", {"sim", "faults", "system", "workloads", "checks", "reports", "harness/schema"}},
      {"cli", {"sim", "faults", "system", "workloads", "checks", "reports", "harness"}},
  };
  return kRules;
}

// The rule of the deepest folder that holds `path`, or null.
const FolderRule* RuleOf(std::string_view path) {
  const FolderRule* best = nullptr;
  for (const auto& rule : Rules()) {
    if (path.starts_with(std::string(rule.folder) + "/") &&
        (best == nullptr || rule.folder.size() > best->folder.size())) {
      best = &rule;
    }
  }
  return best;
}

bool MayInclude(const FolderRule& rule, std::string_view included) {
  const FolderRule* target = RuleOf(included);
  if (target == &rule) return true;
  for (auto allowed : rule.may_include) {
    if (included.starts_with(std::string(allowed) + "/")) return true;
  }
  return false;
}

std::vector<std::string> UpwardIncludes() {
  static const std::regex kInclude(R"re(^\s*#\s*include\s*"([^"]+)")re");
  std::vector<std::string> wrong;
  for (const auto& file : SourceFiles()) {
    const std::string rel = fs::relative(file, kSourceDir).string();
    if (rel.starts_with("tests/") || rel.ends_with("_test.cc")) continue;
    const FolderRule* rule = RuleOf(rel);
    if (rule == nullptr) {
      wrong.push_back(rel + ": in no folder of the layout");
      continue;
    }
    std::istringstream lines(ReadText(file));
    std::string line;
    for (int n = 1; std::getline(lines, line); ++n) {
      std::smatch m;
      if (std::regex_search(line, m, kInclude) && !MayInclude(*rule, m[1].str())) {
        wrong.push_back(rel + ":" + std::to_string(n) + ": includes " + m[1].str() + ", above " +
                        std::string(rule->folder));
      }
    }
  }
  return wrong;
}

TEST(Layout, IncludesRunOneWay) {
  for (const auto& wrong : UpwardIncludes()) ADD_FAILURE() << wrong;
}

// The rule itself: a planted upward include is refused, a downward one and
// one inside the folder are allowed.
TEST(Layout, TheIncludeRuleRefusesAPlantedUpwardInclude) {
  const FolderRule* wallet = RuleOf("system/wallet/ledger.cc");
  ASSERT_NE(wallet, nullptr);
  EXPECT_EQ(wallet->folder, "system/wallet");
  EXPECT_FALSE(MayInclude(*wallet, "checks/wallet_checker.h"));
  EXPECT_FALSE(MayInclude(*wallet, "system/payments/payment_service.h"));
  EXPECT_TRUE(MayInclude(*wallet, "system/messaging/outbox.h"));
  EXPECT_TRUE(MayInclude(*wallet, "system/wallet/account_types.h"));
  const FolderRule* sim = RuleOf("sim/node.cc");
  ASSERT_NE(sim, nullptr);
  EXPECT_FALSE(MayInclude(*sim, "system/common/ids.h"));
  EXPECT_EQ(RuleOf("harness/worlds/wallet_world.cc")->folder, "harness");
}

TEST(Layout, EveryRuleNamesAFolderThatExists) {
  for (const auto& rule : Rules()) {
    EXPECT_TRUE(fs::is_directory(kSourceDir / rule.folder)) << rule.folder;
  }
}

}  // namespace
}  // namespace paylab
