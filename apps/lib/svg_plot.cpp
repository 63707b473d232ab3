// SVG rendering of the report's charts (see svg_plot.h for what each chart shows).
//
// Each chart is drawn by a function returning a Drawing (its size and its SVG elements, origin at the top
// left), so a document is one Drawing wrapped in <svg>, and side-by-side panels are Drawings shifted with
// <g transform="translate(...)">. Coordinates are written with two decimals: finer steps are invisible,
// and shorter numbers keep the files small and diffable.
#include "apps/lib/svg_plot.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <limits>
#include <numbers>
#include <sstream>

#include "tensor/error.h"

namespace dscope::apps {
namespace {

constexpr double kFontSize = 12.0, kTitleFontSize = 14.0;
constexpr const char* kFont = "font-family=\"Helvetica, Arial, sans-serif\"";
constexpr const char* kTextColour = "#222222";
constexpr const char* kGridColour = "#e5e5e5";
constexpr const char* kAxisColour = "#555555";

struct Drawing {
  double width = 0.0, height = 0.0;
  std::string body;  // SVG elements, origin at the top left
};

std::string number(double value) {
  char text[32];
  std::snprintf(text, sizeof text, "%.2f", value);
  return text;
}

// Estimated width of `text` in px: code points (not bytes, so "—" counts once) times 0.6 em.
double text_width(std::string_view text, double font_size) {
  const auto code_points = std::count_if(text.begin(), text.end(), [](char c) {
    return (static_cast<unsigned char>(c) & 0xC0) != 0x80;  // skip UTF-8 continuation bytes
  });
  return 0.6 * font_size * static_cast<double>(code_points);
}

struct TextStyle {
  double size = kFontSize;
  const char* anchor = "middle";  // start, middle or end
  const char* fill = kTextColour;
  bool bold = false;
  double rotate = 0.0;  // degrees, about the anchor point
};

// Appends SVG elements to a string; nothing more than attribute formatting in one place.
class Canvas {
 public:
  void text(double x, double y, std::string_view content, const TextStyle& style) {
    out_ << "<text x=\"" << number(x) << "\" y=\"" << number(y) << "\" font-size=\"" << number(style.size)
         << "\" text-anchor=\"" << style.anchor << "\" fill=\"" << style.fill << '"';
    if (style.bold) out_ << " font-weight=\"bold\"";
    if (style.rotate != 0.0)
      out_ << " transform=\"rotate(" << number(style.rotate) << ' ' << number(x) << ' ' << number(y) << ")\"";
    out_ << '>' << escape_xml(content) << "</text>\n";
  }
  void line(double x1, double y1, double x2, double y2, std::string_view stroke, double stroke_width,
            bool dashed = false) {
    out_ << "<line x1=\"" << number(x1) << "\" y1=\"" << number(y1) << "\" x2=\"" << number(x2) << "\" y2=\""
         << number(y2) << "\" stroke=\"" << escape_xml(stroke) << "\" stroke-width=\"" << number(stroke_width)
         << '"' << (dashed ? " stroke-dasharray=\"6 4\"" : "") << "/>\n";
  }
  void rect(double x, double y, double width, double height, std::string_view fill, std::string_view stroke) {
    out_ << "<rect x=\"" << number(x) << "\" y=\"" << number(y) << "\" width=\"" << number(width)
         << "\" height=\"" << number(height) << "\" fill=\"" << escape_xml(fill) << "\" stroke=\""
         << escape_xml(stroke) << "\"/>\n";
  }
  void circle(double x, double y, double radius, std::string_view fill) {
    out_ << "<circle cx=\"" << number(x) << "\" cy=\"" << number(y) << "\" r=\"" << number(radius)
         << "\" fill=\"" << escape_xml(fill) << "\"/>\n";
  }
  void polyline(const std::vector<std::pair<double, double>>& points, std::string_view stroke, bool dashed,
                std::string_view clip_id) {
    out_ << "<polyline fill=\"none\" stroke=\"" << escape_xml(stroke)
         << "\" stroke-width=\"2\" stroke-linejoin=\"round\"" << (dashed ? " stroke-dasharray=\"6 4\"" : "")
         << " clip-path=\"url(#" << clip_id << ")\" points=\"";
    for (std::size_t i = 0; i < points.size(); ++i)
      out_ << (i ? " " : "") << number(points[i].first) << ',' << number(points[i].second);
    out_ << "\"/>\n";
  }
  void raw(std::string_view element) { out_ << element; }
  std::string str() const { return out_.str(); }

 private:
  std::ostringstream out_;
};

std::string document(const Drawing& drawing) {
  std::ostringstream out;
  out << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << number(drawing.width) << "\" height=\""
      << number(drawing.height) << "\" viewBox=\"0 0 " << number(drawing.width) << ' '
      << number(drawing.height) << "\" " << kFont << ">\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << drawing.body << "</svg>\n";
  return out.str();
}

// ---- axes -------------------------------------------------------------------------------------------------

// 1, 2 or 5 times a power of ten, the nearest at or above `raw`: ticks people read without arithmetic.
double nice_step(double raw) {
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  const double fraction = raw / power;
  return (fraction <= 1.0 ? 1.0 : fraction <= 2.0 ? 2.0 : fraction <= 5.0 ? 5.0 : 10.0) * power;
}

struct Axis {
  double min = 0.0, max = 1.0, step = 0.2;

  std::vector<double> ticks() const {
    std::vector<double> values;
    const double slack = 1e-9 * step;  // so that 0.1 + 0.2 style rounding keeps the last tick
    // The cap only guards against a degenerate range (huge or denormal bounds); sane axes have ~6 ticks.
    for (double i = std::ceil((min - slack) / step); i * step <= max + slack && values.size() < 100; i += 1.0)
      values.push_back(std::abs(i * step) < slack ? 0.0 : i * step);
    return values;
  }
  std::string label(double value) const {
    const int decimals = std::max(0, static_cast<int>(-std::floor(std::log10(step) + 1e-9)));
    char text[32];
    std::snprintf(text, sizeof text, "%.*f", decimals, value);
    return text;
  }
};

// Five or six ticks over the range. A fitted range is widened to whole steps when `widen` (a value axis
// reads best from a round number) and kept to the data otherwise (epochs 1..12 should not run on to 15);
// a given range is kept as is.
Axis make_axis(const std::optional<AxisRange>& given, double data_min, double data_max, bool integer_ticks,
               bool widen) {
  Axis axis;
  if (given) {
    axis.min = given->min;
    axis.max = given->max;
  } else if (!(data_min <= data_max)) {  // no finite data
    axis.min = 0.0;
    axis.max = 1.0;
  } else {
    axis.min = data_min;
    axis.max = data_max;
    if (axis.min == axis.max) {  // one value: centre it in a range of sensible size
      const double pad = integer_ticks ? 1.0 : std::max(0.5, std::abs(axis.min) * 0.1);
      axis.min -= pad;
      axis.max += pad;
    }
  }
  axis.step = nice_step((axis.max - axis.min) / 6.0);
  if (integer_ticks) axis.step = std::max(1.0, std::round(axis.step));
  if (!given && widen) {
    axis.min = std::floor(axis.min / axis.step) * axis.step;
    axis.max = std::ceil(axis.max / axis.step) * axis.step;
  }
  return axis;
}

// ---- line chart -------------------------------------------------------------------------------------------

void check_chart(const char* operation, const LineChart& chart) {
  for (const Series& series : chart.series)
    DSCOPE_CHECK(series.x.size() == series.y.size(), ValueError, operation, ": series '", series.name,
                 "' has ", series.x.size(), " x values but ", series.y.size(),
                 " y values; expected as many of each");
  for (const auto& [name, range] : {std::pair{"x", chart.x_range}, std::pair{"y", chart.y_range}})
    DSCOPE_CHECK(!range || range->min < range->max, ValueError, operation, ": ", name,
                 " range must have min < max, got [", range->min, ", ", range->max, "]");
}

struct LegendEntry {
  std::string name, colour;
  bool dashed = false;
  bool dot = false;  // a series of one point is drawn as a dot, so its legend shows one too
};

// `clip_id` must be unique within the document: panels of one document each clip to their own area.
Drawing draw_line_chart(const LineChart& chart, const std::string& clip_id) {
  constexpr double inf = std::numeric_limits<double>::infinity();
  double x_min = inf, x_max = -inf, y_min = inf, y_max = -inf;
  for (const Series& series : chart.series)
    for (std::size_t i = 0; i < series.x.size(); ++i) {
      if (!std::isfinite(series.x[i]) || !std::isfinite(series.y[i])) continue;
      x_min = std::min(x_min, series.x[i]);
      x_max = std::max(x_max, series.x[i]);
      y_min = std::min(y_min, series.y[i]);
      y_max = std::max(y_max, series.y[i]);
    }
  const Axis x_axis = make_axis(chart.x_range, x_min, x_max, chart.integer_x_ticks, false);
  const Axis y_axis = make_axis(chart.y_range, y_min, y_max, false, true);

  std::vector<LegendEntry> legend;
  for (std::size_t s = 0; s < chart.series.size(); ++s) {
    const Series& series = chart.series[s];
    if (series.name.empty()) continue;
    std::size_t points = 0;
    for (std::size_t i = 0; i < series.x.size(); ++i)
      points += std::isfinite(series.x[i]) && std::isfinite(series.y[i]);
    legend.push_back(LegendEntry{series.name,
                                 series.colour.empty() ? std::string(palette_colour(s)) : series.colour,
                                 series.dashed, points == 1});
  }
  if (chart.diagonal) legend.push_back(LegendEntry{"chance", "#999999", true, false});

  double tick_label_width = 0.0;
  for (double tick : y_axis.ticks())
    tick_label_width = std::max(tick_label_width, text_width(y_axis.label(tick), kFontSize));
  double legend_width = 0.0;
  for (const LegendEntry& entry : legend)
    legend_width = std::max(legend_width, 34.0 + text_width(entry.name, kFontSize));
  const double left = 28.0 + tick_label_width + 8.0, top = chart.title.empty() ? 16.0 : 38.0;
  const double width = chart.plot_width, height = chart.plot_height;
  const double legend_row = 18.0;

  Drawing drawing;
  drawing.width = left + width + 16.0 + (legend.empty() ? 0.0 : legend_width + 8.0);
  drawing.height =
      std::max(top + height + 52.0, top + 8.0 + legend_row * static_cast<double>(legend.size()) + 8.0);
  const auto px = [&](double x) { return left + (x - x_axis.min) / (x_axis.max - x_axis.min) * width; };
  const auto py = [&](double y) {
    return top + height - (y - y_axis.min) / (y_axis.max - y_axis.min) * height;
  };

  Canvas canvas;
  canvas.raw("<clipPath id=\"" + clip_id + "\"><rect x=\"" + number(left) + "\" y=\"" + number(top) +
             "\" width=\"" + number(width) + "\" height=\"" + number(height) + "\"/></clipPath>\n");
  if (!chart.title.empty())
    canvas.text(left + width / 2.0, 22.0, chart.title,
                TextStyle{kTitleFontSize, "middle", kTextColour, true, 0.0});

  // Grid and tick labels first, so that the lines are drawn over them.
  for (double tick : x_axis.ticks()) {
    canvas.line(px(tick), top, px(tick), top + height, kGridColour, 1.0);
    canvas.text(px(tick), top + height + 16.0, x_axis.label(tick), TextStyle{});
  }
  for (double tick : y_axis.ticks()) {
    canvas.line(left, py(tick), left + width, py(tick), kGridColour, 1.0);
    canvas.text(left - 6.0, py(tick) + 4.0, y_axis.label(tick),
                TextStyle{kFontSize, "end", kTextColour, false, 0.0});
  }
  canvas.rect(left, top, width, height, "none", kAxisColour);
  canvas.text(left + width / 2.0, top + height + 40.0, chart.x_title, TextStyle{});
  canvas.text(14.0, top + height / 2.0, chart.y_title,
              TextStyle{kFontSize, "middle", kTextColour, false, -90.0});

  if (chart.diagonal) {
    // y = x across the visible square where the two ranges overlap.
    const double low = std::max(x_axis.min, y_axis.min), high = std::min(x_axis.max, y_axis.max);
    if (low < high) canvas.line(px(low), py(low), px(high), py(high), "#999999", 1.5, true);
  }

  for (std::size_t s = 0; s < chart.series.size(); ++s) {
    const Series& series = chart.series[s];
    const std::string colour = series.colour.empty() ? std::string(palette_colour(s)) : series.colour;
    std::vector<std::pair<double, double>> segment;
    const auto flush = [&] {
      if (segment.size() == 1 && !chart.markers)
        canvas.circle(segment[0].first, segment[0].second, 3.5, colour);
      if (segment.size() >= 2) canvas.polyline(segment, colour, series.dashed, clip_id);
      segment.clear();
    };
    for (std::size_t i = 0; i < series.x.size(); ++i) {
      if (!std::isfinite(series.x[i]) || !std::isfinite(series.y[i])) {
        flush();
        continue;
      }
      segment.emplace_back(px(series.x[i]), py(series.y[i]));
    }
    flush();
    if (chart.markers)
      for (std::size_t i = 0; i < series.x.size(); ++i)
        if (std::isfinite(series.x[i]) && std::isfinite(series.y[i]))
          canvas.circle(px(series.x[i]), py(series.y[i]), 3.0, colour);
  }

  const double legend_x = left + width + 16.0;
  for (std::size_t e = 0; e < legend.size(); ++e) {
    const double y = top + 8.0 + legend_row * static_cast<double>(e);
    if (legend[e].dot)
      canvas.circle(legend_x + 12.0, y, 3.5, legend[e].colour);
    else
      canvas.line(legend_x, y, legend_x + 24.0, y, legend[e].colour, 2.0, legend[e].dashed);
    canvas.text(legend_x + 30.0, y + 4.0, legend[e].name,
                TextStyle{kFontSize, "start", kTextColour, false, 0.0});
  }
  drawing.body = canvas.str();
  return drawing;
}

// ---- confusion matrix -------------------------------------------------------------------------------------

// White to dark blue, linear in RGB: a sequential scale, so darker always means a larger share.
std::string heat_colour(double share) {
  constexpr std::array<int, 3> low = {255, 255, 255}, high = {8, 69, 148};
  char text[8];
  std::array<int, 3> rgb{};
  for (std::size_t c = 0; c < 3; ++c)
    rgb[c] = static_cast<int>(std::lround(low[c] + (high[c] - low[c]) * std::clamp(share, 0.0, 1.0)));
  std::snprintf(text, sizeof text, "#%02x%02x%02x", rgb[0], rgb[1], rgb[2]);
  return text;
}

}  // namespace

std::string_view palette_colour(std::size_t index) {
  static constexpr std::array<std::string_view, 10> kTableau10 = {"#1f77b4", "#ff7f0e", "#2ca02c", "#d62728",
                                                                  "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                                                                  "#bcbd22", "#17becf"};
  return kTableau10[index % kTableau10.size()];
}

std::string escape_xml(std::string_view text) {
  std::string escaped;
  escaped.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        escaped += "&amp;";
        break;
      case '<':
        escaped += "&lt;";
        break;
      case '>':
        escaped += "&gt;";
        break;
      case '"':
        escaped += "&quot;";
        break;
      case '\'':
        escaped += "&apos;";
        break;
      default:
        escaped += c;
    }
  }
  return escaped;
}

std::string line_chart_svg(const LineChart& chart) {
  check_chart("line_chart_svg", chart);
  return document(draw_line_chart(chart, "plot-area-0"));
}

std::string line_charts_svg(const std::vector<LineChart>& panels) {
  Drawing combined;
  std::string body;
  for (std::size_t p = 0; p < panels.size(); ++p) {
    check_chart("line_charts_svg", panels[p]);
    const Drawing panel = draw_line_chart(panels[p], "plot-area-" + std::to_string(p));
    body += "<g transform=\"translate(" + number(combined.width) + " 0)\">\n" + panel.body + "</g>\n";
    combined.width += panel.width;
    combined.height = std::max(combined.height, panel.height);
  }
  combined.body = std::move(body);
  return document(combined);
}

std::string confusion_matrix_svg(const ConfusionMatrixChart& chart) {
  const std::size_t classes = chart.labels.size();
  DSCOPE_CHECK(classes > 0, ValueError, "confusion_matrix_svg: no labels");
  DSCOPE_CHECK(chart.counts.size() == classes, ValueError, "confusion_matrix_svg: ", chart.counts.size(),
               " rows of counts for ", classes, " labels; expected one row per label");
  for (std::size_t row = 0; row < classes; ++row)
    DSCOPE_CHECK(chart.counts[row].size() == classes, ValueError, "confusion_matrix_svg: row ", row, " ('",
                 chart.labels[row], "') has ", chart.counts[row].size(), " counts, expected ", classes);

  double label_width = 0.0, count_width = 0.0;
  for (std::size_t row = 0; row < classes; ++row) {
    label_width = std::max(label_width, text_width(chart.labels[row], kFontSize));
    for (std::int64_t count : chart.counts[row])
      count_width = std::max(count_width, text_width(std::to_string(count), kTitleFontSize));
  }
  const double cell = std::max(64.0, count_width + 16.0);
  // Column labels stay horizontal when they fit a cell, and turn 40° when they would collide.
  const bool rotate_columns = label_width > cell - 8.0;
  const double column_labels_height =
      rotate_columns ? label_width * std::sin(40.0 * std::numbers::pi / 180.0) + 20.0 : 22.0;
  const double left = 28.0 + label_width + 10.0, top = chart.title.empty() ? 16.0 : 40.0;
  const double size = cell * static_cast<double>(classes);

  constexpr std::string_view caption = "colour and %: share of the row's images (its true class)";
  Drawing drawing;
  // Wide enough for the caption, which is centred under a matrix that may be narrower (two classes).
  drawing.width = std::max(left + size + 20.0, left + size / 2.0 + text_width(caption, 11.0) / 2.0 + 10.0);
  drawing.height = top + size + column_labels_height + 48.0;
  Canvas canvas;
  if (!chart.title.empty())
    canvas.text(drawing.width / 2.0, 24.0, chart.title,
                TextStyle{kTitleFontSize, "middle", kTextColour, true, 0.0});

  for (std::size_t row = 0; row < classes; ++row) {
    std::int64_t support = 0;
    for (std::int64_t count : chart.counts[row])
      support += count;
    const double y = top + cell * static_cast<double>(row);
    for (std::size_t column = 0; column < classes; ++column) {
      const double x = left + cell * static_cast<double>(column);
      const std::int64_t count = chart.counts[row][column];
      const double share = support > 0 ? static_cast<double>(count) / static_cast<double>(support) : 0.0;
      canvas.rect(x, y, cell, cell, support > 0 ? heat_colour(share) : "#f0f0f0", "#ffffff");
      // Dark text on light cells, white on dark ones, so both stay legible.
      const char* ink = share > 0.5 ? "#ffffff" : kTextColour;
      char percent[16];
      std::snprintf(percent, sizeof percent, "%.1f%%", 100.0 * share);
      canvas.text(x + cell / 2.0, y + cell / 2.0 - 2.0, std::to_string(count),
                  TextStyle{kTitleFontSize, "middle", ink, true, 0.0});
      canvas.text(x + cell / 2.0, y + cell / 2.0 + 14.0, support > 0 ? percent : "—",
                  TextStyle{11.0, "middle", ink, false, 0.0});
    }
    canvas.text(left - 8.0, y + cell / 2.0 + 4.0, chart.labels[row],
                TextStyle{kFontSize, "end", kTextColour, false, 0.0});
  }
  for (std::size_t column = 0; column < classes; ++column) {
    const double x = left + cell * (static_cast<double>(column) + 0.5);
    if (rotate_columns)
      canvas.text(x, top + size + 14.0, chart.labels[column],
                  TextStyle{kFontSize, "end", kTextColour, false, -40.0});
    else
      canvas.text(x, top + size + 16.0, chart.labels[column], TextStyle{});
  }
  canvas.rect(left, top, size, size, "none", kAxisColour);
  canvas.text(left + size / 2.0, top + size + column_labels_height + 8.0, "predicted",
              TextStyle{kFontSize, "middle", kTextColour, true, 0.0});
  canvas.text(14.0, top + size / 2.0, "true", TextStyle{kFontSize, "middle", kTextColour, true, -90.0});
  canvas.text(left + size / 2.0, top + size + column_labels_height + 30.0, caption,
              TextStyle{11.0, "middle", "#666666", false, 0.0});
  drawing.body = canvas.str();
  return document(drawing);
}

}  // namespace dscope::apps
