// Tests of the compare page (compare_page.h) from plain figures, without a
// browser: every part the page promises is there once, each strategy
// appears in the table and in every chart, a failed run is listed with its
// replay command, and text from the runs is escaped. tests/migration_test.cc
// renders a real comparison's page in Chromium.
#include "reports/compare_page.h"

#include <gtest/gtest.h>

#include <string>

namespace paylab::reports {
namespace {

size_t Count(const std::string& hay, const std::string& needle) {
  size_t n = 0;
  for (size_t at = hay.find(needle); at != std::string::npos; at = hay.find(needle, at + 1)) {
    ++n;
  }
  return n;
}

StrategySummary Strategy(std::string name, size_t colour, double unavailable_s) {
  StrategySummary s;
  s.name = std::move(name);
  s.colour = colour;
  s.runs = 2;
  s.passed = 2;
  s.figures.assign(CompareFigures().size(), FigureStats{1, 0.5, 1.5});
  s.figures[0] = FigureStats{unavailable_s, unavailable_s, unavailable_s};
  s.series = {{0, 0, 0}, {1, 10, 2}, {2, 20, 3}};
  return s;
}

Comparison Sample() {
  Comparison c;
  c.scenario = "migration <online>";
  c.users = 20;
  c.seed_first = 1;
  c.seed_last = 2;
  c.runs = 4;
  c.strategies = {Strategy("full_maintenance", 0, 120), Strategy("online", 2, 0.25)};
  return c;
}

TEST(ComparePageTest, HasEveryPartOnceAndEveryStrategyEverywhere) {
  const std::string page = ComparePageHtml(Sample());
  for (const char* id :
       {"id=\"summary\"", "id=\"figures\"", "id=\"failures\"", "id=\"chart-unavailability\"",
        "id=\"chart-migrated\"", "id=\"chart-rejected\"", "id=\"guide\""}) {
    EXPECT_EQ(Count(page, id), 1u) << id;
  }
  // A column in the table, a bar, and a line in each time chart.
  EXPECT_EQ(Count(page, "data-strategy=\"full_maintenance\""), 4u);
  EXPECT_EQ(Count(page, "data-strategy=\"online\""), 4u);
  EXPECT_EQ(Count(page, "<tr data-figure="), CompareFigures().size());
  EXPECT_NE(page.find("none: every run passed every check"), std::string::npos);
  EXPECT_NE(page.find("<span class=\"pass\">0 runs failed a check.</span>"), std::string::npos);
}

TEST(ComparePageTest, ListsAFailedRunWithItsReplayCommandEscaped) {
  Comparison c = Sample();
  c.strategies[1].passed = 1;
  c.strategies[1].failures = {{2, "money_exact", "balance <0>", "paylab run a&b.json --seed 2"}};
  const std::string page = ComparePageHtml(c);
  EXPECT_EQ(page.find("none: every run passed every check"), std::string::npos);
  EXPECT_NE(page.find("<span class=\"fail\">1 runs failed a check.</span>"), std::string::npos);
  EXPECT_NE(page.find("<tr><td>online</td><td>2</td><td title=\"balance &lt;0&gt;\">money_exact"
                      "</td><td><code>paylab run a&amp;b.json --seed 2</code></td></tr>"),
            std::string::npos)
      << page;
  EXPECT_NE(page.find("<title>paylab compare: migration &lt;online&gt;</title>"),
            std::string::npos);
}

TEST(ComparePageTest, TheSameFiguresGiveTheSameBytes) {
  EXPECT_EQ(ComparePageHtml(Sample()), ComparePageHtml(Sample()));
}

}  // namespace
}  // namespace paylab::reports
