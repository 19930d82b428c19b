// The compare page (compare.html): one migration scenario run under several
// strategies and the same seeds, their figures side by side.
//
// The page is self-contained (inline CSS, SVG charts and one small script
// that only shades the best cells; no network, it opens from disk), and a
// pure function of a Comparison: the same comparison gives the same bytes.
// The harness runs the strategies and works the figures out
// (harness/compare.h); this only lays them out, and knows nothing of the
// runs beyond the plain data below.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace paylab::reports {

// One figure a comparison shows: its key (in a run's migration figures and
// in compare.json), and its label and meaning on the page. README "Reading
// a comparison" explains them at length.
struct CompareFigure {
  std::string_view key;
  std::string_view label;
  std::string_view meaning;
};

// The figures a comparison shows, in the order it shows them.
std::span<const CompareFigure> CompareFigures();

// One figure over a strategy's runs.
struct FigureStats {
  double mean = 0;
  double min = 0;
  double max = 0;
};

// A point of a strategy's time series, the mean over its runs.
struct MeanSample {
  double t_s = 0;
  double migrated = 0;  // users migrated by then
  double rejected = 0;  // requests refused for maintenance by then
};

// A run that failed a check, with the command that replays it.
struct FailedRun {
  uint64_t seed = 0;
  std::string check;
  std::string detail;
  std::string replay;
};

// One strategy's runs, summed up.
struct StrategySummary {
  std::string name;
  size_t colour = 0;  // the strategy's number, so it keeps its colour on every page
  int64_t runs = 0;
  int64_t passed = 0;
  std::vector<FigureStats> figures;  // one per CompareFigures(), in that order
  std::vector<MeanSample> series;    // on the sampling grid of the longest run
  std::vector<FailedRun> failures;   // by seed
};

struct Comparison {
  std::string scenario;  // its name
  int64_t users = 0;
  uint64_t seed_first = 0;  // seeds first..last, inclusive, for every strategy
  uint64_t seed_last = 0;
  int64_t runs = 0;                         // over all strategies
  std::vector<StrategySummary> strategies;  // in the order they were asked for
};

// compare.html. REQUIRES: every strategy has one FigureStats per
// CompareFigures().
std::string ComparePageHtml(const Comparison& comparison);

}  // namespace paylab::reports
