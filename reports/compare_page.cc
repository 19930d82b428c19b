// Implementation of the compare page (see compare_page.h).
#include "reports/compare_page.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <utility>

#include "reports/sweep_results.h"

namespace paylab::reports {

namespace {

constexpr CompareFigure kFigures[] = {
    {"unavailable_user_s", "Unavailability, user-seconds",
     "the time users could not use their points, summed over all users"},
    {"unavailable_p50_s", "Per user, median (s)",
     "half of the users were unavailable at most this long"},
    {"unavailable_p99_s", "Per user, p99 (s)",
     "99% of the users were unavailable at most this long"},
    {"unavailable_max_s", "Per user, max (s)", "the longest any one user waited"},
    {"full_maintenance_s", "Full maintenance (s)", "how long everything was stopped for everyone"},
    {"operations_rejected", "Requests rejected",
     "requests refused for maintenance, retries included"},
    {"payments_failed", "Payments failed", "declined, expired, refused or given up"},
    {"recon_differences", "Reconciliation: differences", "copies reconciliation found wrong"},
    {"switch_inconsistencies", "Inconsistencies at the switch",
     "copies that differed from the moved balance when a user switched"},
    {"repairs", "Repairs", "differences repaired (by reconciliation or at the switch)"},
    {"money_errors", "Money errors", "violations of the money checks: must be 0"},
    {"duplicates_prevented", "Duplicates prevented",
     "retries of proxied requests routed to the wallet by attempt tracking"},
    {"cohorts_rolled_back", "Cohorts rolled back", "partial maintenance: windows that failed"},
    {"time_to_complete_s", "Time to complete (s)", "from the migration's start to its end"},
};

// The figure the bar chart shows.
constexpr size_t kUnavailableUserS = 0;
static_assert(kFigures[kUnavailableUserS].key == "unavailable_user_s");

// A figure as the page prints it: whole numbers exactly, others to three
// significant digits (or none from 100 up).
std::string Num(double v) {
  if (v == static_cast<double>(static_cast<int64_t>(v)) && std::abs(v) < 1e15) {
    return fmt::format("{}", static_cast<int64_t>(v));
  }
  return std::abs(v) >= 100 ? fmt::format("{:.0f}", v) : fmt::format("{:.3g}", v);
}

constexpr std::string_view kColours[] = {"#c0392b", "#d68910", "#2471a3", "#229954"};

std::string_view ColourOf(const StrategySummary& s) { return kColours[s.colour % 4]; }

// One strategy's line in a time chart.
struct ChartLine {
  const StrategySummary* strategy;
  std::vector<std::pair<double, double>> points;  // (virtual time in s, value)
};

// A line chart's axes (both from 0), grid, ticks and labels.
struct LineChartFrame {
  static constexpr double W = 720, H = 300, L = 70, R = 20, T = 30, B = 45;
  double xmax = 1;
  double ymax = 1;

  double X(double x) const { return L + (W - L - R) * x / xmax; }
  double Y(double y) const { return H - B - (H - T - B) * y / ymax; }

  std::string Open(std::string_view id, std::string_view title, std::string_view y_label) const {
    std::string svg = fmt::format(
        "<svg id=\"{}\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {} {}\" "
        "width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"{}\">\n",
        id, W, H, W, H, XmlEscape(title));
    svg += fmt::format("<text x=\"{}\" y=\"18\" class=\"title\">{}</text>\n", L, XmlEscape(title));
    for (int i = 0; i <= 4; ++i) {
      const double y = ymax * i / 4;
      svg += fmt::format(
          "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" class=\"grid\"/>"
          "<text x=\"{:.1f}\" y=\"{:.1f}\" class=\"tick\" text-anchor=\"end\">{}</text>\n",
          L, Y(y), W - R, Y(y), L - 6, Y(y) + 4, Num(std::round(y)));
      const double x = xmax * i / 4;
      svg += fmt::format(
          "<text x=\"{:.1f}\" y=\"{:.1f}\" class=\"tick\" text-anchor=\"middle\">{}"
          "</text>\n",
          X(x), H - B + 16, Num(std::round(x)));
    }
    svg += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" class=\"axis\" text-anchor=\"middle\">virtual time (s)"
        "</text>\n<text x=\"14\" y=\"{:.1f}\" class=\"axis\" transform=\"rotate(-90 14 {:.1f})\" "
        "text-anchor=\"middle\">{}</text>\n",
        (L + W - R) / 2, H - 8, (T + H - B) / 2, (T + H - B) / 2, XmlEscape(y_label));
    return svg;
  }

  // The i-th line and its entry in the legend.
  std::string Line(const ChartLine& line, size_t i) const {
    const std::string_view colour = ColourOf(*line.strategy);
    std::string d;
    for (const auto& [x, y] : line.points) {
      d += fmt::format("{}{:.1f},{:.1f}", d.empty() ? "M" : " L", X(x), Y(y));
    }
    std::string svg = fmt::format(
        "<path class=\"series\" data-strategy=\"{}\" d=\"{}\" stroke=\"{}\" fill=\"none\" "
        "stroke-width=\"2\"/>\n",
        line.strategy->name, d.empty() ? "M0,0" : d, colour);
    svg += fmt::format(
        "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"12\" height=\"4\" fill=\"{}\"/><text x=\"{:.1f}\" "
        "y=\"{:.1f}\" class=\"legend\">{}</text>\n",
        L + 10, T + 8 + 16.0 * static_cast<double>(i), colour, L + 28,
        T + 13 + 16.0 * static_cast<double>(i), line.strategy->name);
    return svg;
  }
};

// A line chart of one series per strategy.
std::string LineChart(std::string_view id, std::string_view title, std::string_view y_label,
                      const std::vector<ChartLine>& lines) {
  LineChartFrame frame;
  for (const ChartLine& line : lines) {
    for (const auto& [x, y] : line.points) {
      frame.xmax = std::max(frame.xmax, x);
      frame.ymax = std::max(frame.ymax, y);
    }
  }
  std::string svg = frame.Open(id, title, y_label);
  for (size_t i = 0; i < lines.size(); ++i) {
    svg += frame.Line(lines[i], i);
  }
  svg += "</svg>\n";
  return svg;
}

// A horizontal bar chart: one bar per strategy, the mean of one figure.
std::string BarChart(std::string_view id, std::string_view title, const Comparison& c,
                     size_t figure) {
  constexpr double W = 720, L = 170, R = 90, T = 30, Row = 28;
  const double H = T + Row * static_cast<double>(c.strategies.size()) + 10;
  double vmax = 1;
  for (const StrategySummary& st : c.strategies) {
    vmax = std::max(vmax, st.figures.at(figure).mean);
  }
  std::string svg = fmt::format(
      "<svg id=\"{}\" class=\"chart\" xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {} {}\" "
      "width=\"{}\" height=\"{}\" role=\"img\" aria-label=\"{}\">\n"
      "<text x=\"10\" y=\"18\" class=\"title\">{}</text>\n",
      id, W, H, W, H, XmlEscape(title), XmlEscape(title));
  double y = T;
  for (const StrategySummary& st : c.strategies) {
    const double v = st.figures.at(figure).mean;
    const double w = (W - L - R) * v / vmax;
    svg += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" class=\"tick\" text-anchor=\"end\">{}</text>"
        "<rect class=\"bar\" data-strategy=\"{}\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" "
        "height=\"18\" fill=\"{}\"/><text x=\"{:.1f}\" y=\"{:.1f}\" class=\"tick\">{}</text>\n",
        L - 8, y + 13, st.name, st.name, L, y, std::max(w, 1.0), ColourOf(st),
        L + std::max(w, 1.0) + 6, y + 13, Num(v));
    y += Row;
  }
  svg += "</svg>\n";
  return svg;
}

// The mean series of every strategy, one of its two values (`value`
// picks it) against time.
std::vector<ChartLine> LinesOf(const Comparison& c, double MeanSample::*value) {
  std::vector<ChartLine> lines;
  for (const StrategySummary& st : c.strategies) {
    ChartLine line{&st, {}};
    for (const MeanSample& p : st.series) {
      line.points.emplace_back(p.t_s, p.*value);
    }
    lines.push_back(std::move(line));
  }
  return lines;
}

std::string Charts(const Comparison& c) {
  std::string h = "<h2>Charts</h2>\n";
  h += BarChart("chart-unavailability", "User-visible unavailability (user-seconds, mean)", c,
                kUnavailableUserS);
  h += LineChart("chart-migrated", "Users migrated over time (mean over seeds)", "users migrated",
                 LinesOf(c, &MeanSample::migrated));
  h += LineChart("chart-rejected", "Requests rejected for maintenance, cumulative (mean)",
                 "requests rejected", LinesOf(c, &MeanSample::rejected));
  return h;
}

std::string Head(const Comparison& c) {
  std::string h = "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n";
  h += fmt::format("<title>paylab compare: {}</title>\n", XmlEscape(c.scenario));
  h += R"css(<style>
body { font-family: system-ui, sans-serif; margin: 2em; color: #222; max-width: 960px; }
table { border-collapse: collapse; margin: 1em 0; }
th, td { border: 1px solid #ccc; padding: 4px 8px; text-align: right; }
th:first-child, td:first-child { text-align: left; }
td.range, .range { color: #777; font-size: 0.85em; }
td.best { background: #e8f6ee; }
tr.money td { font-weight: bold; }
.chart { display: block; margin: 1.5em 0; background: #fafafa; }
.chart .grid { stroke: #ddd; }
.chart .tick, .chart .legend { font-size: 11px; fill: #444; }
.chart .axis { font-size: 12px; fill: #444; }
.chart .title { font-size: 14px; font-weight: bold; }
.pass { color: #229954; } .fail { color: #c0392b; }
</style>
</head>
<body>
)css";
  return h;
}

int64_t FailedRuns(const Comparison& c) {
  int64_t failed = 0;
  for (const StrategySummary& st : c.strategies) {
    failed += static_cast<int64_t>(st.failures.size());
  }
  return failed;
}

std::string Summary(const Comparison& c) {
  const int64_t failed = FailedRuns(c);
  std::string h =
      fmt::format("<h1>Migration strategies compared: {}</h1>\n", XmlEscape(c.scenario));
  h += fmt::format(
      "<p id=\"summary\">{} users; {} strategies &times; seeds {}..{} = {} runs, the same workload "
      "and faults for every strategy. <span class=\"{}\">{} runs failed a check.</span></p>\n",
      c.users, c.strategies.size(), c.seed_first, c.seed_last, c.runs,
      failed == 0 ? "pass" : "fail", failed);
  return h;
}

// Mean over the seeds, and below it the smallest and largest run; a row per
// figure, a column per strategy.
std::string FiguresTable(const Comparison& c) {
  std::string h =
      "<h2>Figures</h2>\n<p>Mean over the seeds; below it, the smallest and largest run.</p>\n";
  h += "<table id=\"figures\">\n<thead><tr><th>Figure</th>";
  for (const StrategySummary& st : c.strategies) {
    h += fmt::format("<th data-strategy=\"{0}\">{0}</th>", st.name);
  }
  h += "</tr></thead>\n<tbody>\n";
  for (size_t i = 0; i < std::size(kFigures); ++i) {
    const CompareFigure& f = kFigures[i];
    h += fmt::format("<tr data-figure=\"{}\"{}><td title=\"{}\">{}</td>", f.key,
                     f.key == "money_errors" ? " class=\"money\"" : "", XmlEscape(f.meaning),
                     XmlEscape(f.label));
    for (const StrategySummary& st : c.strategies) {
      const FigureStats& s = st.figures.at(i);
      h += fmt::format("<td data-mean=\"{}\">{}<br><span class=\"range\">{}&ndash;{}</span></td>",
                       s.mean, Num(s.mean), Num(s.min), Num(s.max));
    }
    h += "</tr>\n";
  }
  h += "</tbody>\n</table>\n";
  return h;
}

std::string FailuresTable(const Comparison& c) {
  std::string h =
      "<h2>Runs that failed a check</h2>\n<table id=\"failures\">\n<thead><tr><th>Strategy</th>"
      "<th>Seed</th><th>Check</th><th>Replay</th></tr></thead>\n<tbody>\n";
  if (FailedRuns(c) == 0) {
    h += "<tr><td colspan=\"4\">none: every run passed every check</td></tr>\n";
  }
  for (const StrategySummary& st : c.strategies) {
    for (const FailedRun& r : st.failures) {
      h += fmt::format(
          "<tr><td>{}</td><td>{}</td><td title=\"{}\">{}</td><td><code>{}</code>"
          "</td></tr>\n",
          st.name, r.seed, XmlEscape(r.detail), XmlEscape(r.check), XmlEscape(r.replay));
    }
  }
  h += "</tbody>\n</table>\n";
  return h;
}

// How to read the page, and the script that shades the best cells.
constexpr std::string_view kGuideAndScript = R"html(<h2>How to read this</h2>
<ul id="guide">
<li><b>Unavailability</b> counts the time a user's points could not be used: the user's
maintenance window, an online job's own time on the user, or a full maintenance window
(then nothing at all works). The table gives the total over all users and the per-user
median, p99 and maximum.</li>
<li><b>Requests rejected</b> are the requests that users actually saw refused; a credit
refused during a window is retried after it and counted each time.</li>
<li><b>Reconciliation and repairs</b> show how often the copies kept by dual-write were
wrong, and were put right before they could matter.</li>
<li><b>Money errors</b> must be 0 for every strategy: every check over both systems held.</li>
<li><b>Duplicates prevented</b> are retries of requests that started at the wallet before the
user's switch, which attempt tracking sent back to the wallet instead of processing them again.</li>
<li>Replay any run with the command in the failures table, or
<code>paylab run SCENARIO --seed N --strategy NAME</code>.</li>
<li>A shaded cell is the lowest mean of its row (lower is better for every figure but
duplicates prevented).</li>
</ul>
<script>
// Shades the lowest mean of each row; the page reads the same without it.
for (const row of document.querySelectorAll('#figures tbody tr')) {
  if (row.dataset.figure === 'duplicates_prevented') continue;
  const cells = [...row.querySelectorAll('td[data-mean]')];
  const low = Math.min(...cells.map(c => Number(c.dataset.mean)));
  for (const c of cells) if (Number(c.dataset.mean) === low) c.classList.add('best');
}
</script>
</body>
</html>
)html";

}  // namespace

std::span<const CompareFigure> CompareFigures() { return kFigures; }

std::string ComparePageHtml(const Comparison& comparison) {
  std::string h = Head(comparison);
  h += Summary(comparison);
  h += FiguresTable(comparison);
  h += Charts(comparison);
  h += FailuresTable(comparison);
  h += kGuideAndScript;
  return h;
}

}  // namespace paylab::reports
