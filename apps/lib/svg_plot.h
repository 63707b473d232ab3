// Plots as standalone SVG documents for the score report: a confusion-matrix heat map and a line chart with
// named series (ROC curves; training curves per epoch). Written by hand, so the report needs no plotting
// library and the files open in any browser or markdown viewer.
//
// A chart is described by plain structs (what to draw) and turned into a complete `<svg>` document by one
// function; layout (margins, legend width, label rotation) is derived from the text lengths, estimated at
// 0.6 em per character since an SVG writer cannot measure fonts. Series take the Tableau 10 colours in
// order, a qualitative palette chosen to keep neighbouring lines apart. All text is XML-escaped.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace dscope::apps {

// One line of a chart: the points (x[i], y[i]) joined in order. A non-finite value breaks the line (an
// epoch without validation), and a point with no drawable neighbour is shown as a dot so it stays visible.
struct Series {
  std::string name;  // legend entry; empty: not in the legend
  std::vector<double> x, y;
  std::string colour;  // any SVG colour; empty: palette_colour(position of the series in the chart)
  bool dashed = false;
};

struct AxisRange {
  double min = 0.0, max = 1.0;  // min < max
};

struct LineChart {
  std::string title, x_title, y_title;
  std::vector<Series> series;
  // Absent: fitted to the finite data, the y range widened to whole tick steps, the x range kept to the data.
  // Lines outside a given range are clipped.
  std::optional<AxisRange> x_range, y_range;
  bool integer_x_ticks = false;  // ticks at whole numbers only (epochs)
  bool diagonal = false;         // a dashed grey y = x line, labelled "chance" (the ROC of a coin toss)
  bool markers = false;          // a dot at every point, not just isolated ones
  double plot_width = 360.0, plot_height = 300.0;  // the plotting area in px; axes and legend lie outside
};

struct ConfusionMatrixChart {
  std::string title;
  std::vector<std::string> labels;                // in class order, naming both rows and columns
  std::vector<std::vector<std::int64_t>> counts;  // [true][predicted], labels.size() square
};

// The i-th colour of the Tableau 10 palette ("#1f77b4", ...), repeating after ten.
std::string_view palette_colour(std::size_t index);

// `text` with &, <, >, " and ' replaced by entities, safe in element content and attribute values.
std::string escape_xml(std::string_view text);

// A complete SVG document for one chart. ValueError when a series has different numbers of x and y values
// or a given range is empty.
std::string line_chart_svg(const LineChart& chart);

// Several charts side by side in one SVG document (e.g. loss and accuracy per epoch), tops aligned.
std::string line_charts_svg(const std::vector<LineChart>& panels);

// The heat map: one cell per (true, predicted) pair holding the count and the row percentage, coloured from
// white to dark blue by the row-normalised value (the share of that true class's images), so classes of
// very different sizes read alike. Rows without images are grey. ValueError unless counts is square and
// matches the labels.
std::string confusion_matrix_svg(const ConfusionMatrixChart& chart);

}  // namespace dscope::apps
