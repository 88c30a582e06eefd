// The HTML and Markdown reports (report.h): the same tables as the text
// report, the data-flow diagram (data_flow.h) as inline SVG or as a Mermaid
// flowchart, and latency charts. Everything that comes from a scenario file
// (names, titles, descriptions, rule names) is escaped for the format.
#include <algorithm>
#include <cmath>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "rpc/printable.h"
#include "sim/data_flow.h"
#include "sim/report.h"
#include "sim/report_markup.h"

namespace residency::sim {
namespace {

std::string Num(double v) {
  if (std::isfinite(v) && v == std::floor(v) && std::fabs(v) < 1e15) {
    return absl::StrFormat("%.0f", v);
  }
  return absl::StrFormat("%.4g", v);
}

std::string Percent(double share) {
  return absl::StrFormat("%.1f%%", 100 * share);
}

std::string Truncate(const std::string& s, size_t n) {
  if (s.size() <= n) return s;
  return absl::StrCat(rpc::CutAtCharacter(s, n - 1), "~");
}

// Text for one line of markup: line breaks and tabs become spaces, and
// PrintableMessage escapes the rest, as a report saved as a file is also
// read with cat and less, where a control character would act.
std::string OneLine(absl::string_view raw) {
  std::string s(raw);
  for (char& c : s) {
    if (c == '\n' || c == '\r' || c == '\t') c = ' ';
  }
  return rpc::PrintableMessage(s);
}

int FailedExpectations(const Report& r) {
  int failed = 0;
  for (const ExpectationResult& e : r.expectations) failed += !e.passed;
  return failed;
}

std::string Verdict(const Report& r) {
  const int failed = FailedExpectations(r);
  if (failed == 0) {
    return absl::StrCat("All ", r.expectations.size(), " expectations met.");
  }
  return absl::StrCat(failed, " of ", r.expectations.size(),
                      " expectations FAILED.");
}

// ---------------------------------------------------------------- SVG ----

// Inside every SVG, so that one also reads well on its own.
constexpr char kSvgStyle[] =
    "<style>"
    "text{font-family:system-ui,-apple-system,'Segoe UI',sans-serif}"
    "text.boundary{font-size:15px;font-weight:600;fill:#334}"
    "text.party{font-size:13px;font-weight:600;fill:#222}"
    "text.detail{font-size:11px;fill:#333}"
    "text.kind{font-size:11px;font-style:italic}"
    "text.badge{font-size:11px;font-weight:600;text-anchor:middle}"
    "text.legend{font-size:12px;fill:#222}"
    "text.legend.red{fill:#c0392b}.muted{fill:#777}"
    "</style>\n";

struct Point {
  double x = 0, y = 0;
};

int KindOrder(FlowNode::Kind k) {
  switch (k) {
    case FlowNode::Kind::kUsers:
      return 0;
    case FlowNode::Kind::kStorageNode:
      return 1;
    case FlowNode::Kind::kKeyService:
      return 2;
    default:
      return 3;
  }
}

const char* KindFill(FlowNode::Kind k) {
  switch (k) {
    case FlowNode::Kind::kUsers:
      return "#e8f1fc";
    case FlowNode::Kind::kStorageNode:
      return "#f1f1f1";
    case FlowNode::Kind::kKeyService:
      return "#fff6db";
    default:
      return "#efe6fa";
  }
}

}  // namespace

std::string HtmlEscape(absl::string_view raw) {
  const std::string s = OneLine(raw);
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string MarkdownEscape(absl::string_view raw) {
  const std::string s = OneLine(raw);
  std::string out;
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '|':
        out += "\\|";
        break;
      case '\\':
      case '`':
      case '*':
      case '_':
      case '[':
      case ']':
      case '#':
        out += '\\';
        out += c;
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string MermaidEscape(absl::string_view raw) {
  const std::string s = OneLine(raw);
  std::string out;
  for (char c : s) {
    switch (c) {
      case '"':
        out += "#quot;";
        break;
      case '<':
        out += "#lt;";
        break;
      case '>':
        out += "#gt;";
        break;
      case '&':
        out += "#amp;";
        break;
      case '#':
        out += "#35;";
        break;
      case '|':
        out += "#124;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string DataFlowSvg(const DataFlow& flow) {
  constexpr double kMargin = 20, kColW = 300, kGap = 190, kHeader = 40,
                   kBoxW = 210, kBoxH = 84, kRowGap = 54, kLine = 18;
  const double pitch = kBoxH + kRowGap;
  // Place the parties: one column per jurisdiction.
  std::map<std::string, int> column, row;
  std::map<std::string, Point> box;  // top-left
  int max_rows = 1;
  for (size_t c = 0; c < flow.jurisdictions.size(); ++c) {
    std::vector<const FlowNode*> in;
    for (const FlowNode& n : flow.nodes) {
      if (n.jurisdiction == flow.jurisdictions[c]) in.push_back(&n);
    }
    std::stable_sort(in.begin(), in.end(),
                     [](const FlowNode* a, const FlowNode* b) {
                       return KindOrder(a->kind) < KindOrder(b->kind);
                     });
    max_rows = std::max<int>(max_rows, static_cast<int>(in.size()));
    for (size_t i = 0; i < in.size(); ++i) {
      column[in[i]->id] = static_cast<int>(c);
      row[in[i]->id] = static_cast<int>(i);
      box[in[i]->id] = {kMargin + c * (kColW + kGap) + (kColW - kBoxW) / 2,
                        kMargin + kHeader + i * pitch};
    }
  }
  const double columns = std::max<size_t>(1, flow.jurisdictions.size());
  // Wide enough for a readable legend even with one jurisdiction.
  const double width =
      std::max(720.0, 2 * kMargin + columns * kColW + (columns - 1) * kGap);
  const double boundary_h = kHeader + max_rows * pitch - kRowGap + 20;
  const double legend_y = kMargin + boundary_h + 34;
  // The legend says what crossed, one entry per arrow, wrapped to the width.
  struct LegendLine {
    std::string css;
    std::string text;  // not escaped yet
  };
  std::vector<LegendLine> legend;
  const size_t wrap = static_cast<size_t>((width - 2 * kMargin) / 6.8);
  auto add_legend = [&](const std::string& css, const std::string& text) {
    std::string line;
    for (absl::string_view word : absl::StrSplit(text, ' ')) {
      if (!line.empty() && line.size() + 1 + word.size() > wrap) {
        legend.push_back({css, line});
        line = "    ";
      }
      absl::StrAppend(&line, line.empty() || line == "    " ? "" : " ", word);
    }
    legend.push_back({css, line});
  };
  auto name = [&](const std::string& id) {
    const FlowNode* n = flow.Node(id);
    return n == nullptr ? id
                        : absl::StrCat(n->label, " (", n->jurisdiction, ")");
  };
  for (size_t i = 0; i < flow.edges.size(); ++i) {
    const FlowEdge& e = flow.edges[i];
    add_legend(e.red       ? "legend red"
               : e.refused ? "legend muted"
                           : "legend",
               absl::StrCat(i + 1, ". ", name(e.from), " -> ", name(e.to), ": ",
                            e.label, e.crosses ? " [crosses a border]" : ""));
  }
  add_legend("legend muted",
             "Dashed boxes: jurisdictions (trust boundaries). Red: plaintext "
             "or keys reached an authority (or a provider keeps plaintext). "
             "Dashed grey: asked for and refused.");
  const double height = legend_y + legend.size() * kLine + 20;

  // Where each edge leaves and enters: anchors spread along the box sides.
  struct Geometry {
    Point a, c1, c2, b;
    bool curve = false;
  };
  std::vector<Geometry> geometry(flow.edges.size());
  std::map<std::string, std::vector<int>> slots;  // node:side -> edge ends
  std::vector<std::pair<std::string, std::string>> sides(flow.edges.size());
  std::map<int, int> bulge_side;  // column -> alternating 0/1
  for (size_t i = 0; i < flow.edges.size(); ++i) {
    const FlowEdge& e = flow.edges[i];
    const int ca = column[e.from], cb = column[e.to];
    std::string sa, sb;
    if (ca == cb) {
      if (std::abs(row[e.from] - row[e.to]) == 1) {
        sa = row[e.from] < row[e.to] ? "bottom" : "top";
        sb = row[e.from] < row[e.to] ? "top" : "bottom";
      } else {
        sa = sb = (bulge_side[ca]++ % 2 == 0) ? "right" : "left";
      }
    } else {
      sa = ca < cb ? "right" : "left";
      sb = ca < cb ? "left" : "right";
    }
    sides[i] = {sa, sb};
    slots[e.from + ":" + sa].push_back(static_cast<int>(2 * i));
    slots[e.to + ":" + sb].push_back(static_cast<int>(2 * i + 1));
  }
  auto anchor = [&](const std::string& id, const std::string& side,
                    int end) -> Point {
    const std::vector<int>& s = slots[id + ":" + side];
    const int k =
        static_cast<int>(std::find(s.begin(), s.end(), end) - s.begin());
    const double spread = (k - (static_cast<double>(s.size()) - 1) / 2);
    const Point p = box[id];
    if (side == "top") return {p.x + kBoxW / 2 + spread * 26, p.y};
    if (side == "bottom") return {p.x + kBoxW / 2 + spread * 26, p.y + kBoxH};
    const double y = p.y + kBoxH / 2 + spread * 16;
    return {side == "left" ? p.x : p.x + kBoxW, y};
  };
  for (size_t i = 0; i < flow.edges.size(); ++i) {
    const FlowEdge& e = flow.edges[i];
    Geometry& g = geometry[i];
    g.a = anchor(e.from, sides[i].first, static_cast<int>(2 * i));
    g.b = anchor(e.to, sides[i].second, static_cast<int>(2 * i + 1));
    if (sides[i].first == sides[i].second) {
      const double dx = sides[i].first == "right" ? 56 : -56;
      g.curve = true;
      g.c1 = {g.a.x + dx, g.a.y};
      g.c2 = {g.b.x + dx, g.b.y};
    }
  }

  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"flow\" "
      "viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\" "
      "role=\"img\" aria-label=\"data flow between jurisdictions\">\n",
      width, height, width, height);
  absl::StrAppend(
      &svg, kSvgStyle,
      "<defs>"
      "<marker id=\"arr\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" "
      "markerWidth=\"8\" markerHeight=\"8\" orient=\"auto-start-reverse\">"
      "<path d=\"M0,0 L10,5 L0,10 z\" fill=\"#444\"/></marker>"
      "<marker id=\"arr-red\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" "
      "markerWidth=\"8\" markerHeight=\"8\" orient=\"auto-start-reverse\">"
      "<path d=\"M0,0 L10,5 L0,10 z\" fill=\"#c0392b\"/></marker>"
      "<marker id=\"arr-gray\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" "
      "markerWidth=\"8\" markerHeight=\"8\" orient=\"auto-start-reverse\">"
      "<path d=\"M0,0 L10,5 L0,10 z\" fill=\"#999\"/></marker>"
      "</defs>\n");
  // Trust boundaries.
  for (size_t c = 0; c < flow.jurisdictions.size(); ++c) {
    const double x = kMargin + c * (kColW + kGap);
    absl::StrAppendFormat(
        &svg,
        "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" height=\"%.0f\" rx=\"10\" "
        "fill=\"#fcfcfc\" stroke=\"#556\" stroke-width=\"1.5\" "
        "stroke-dasharray=\"8 5\"/>\n"
        "<text x=\"%.0f\" y=\"%.0f\" class=\"boundary\">%s "
        "<tspan class=\"muted\">(trust boundary)</tspan></text>\n",
        x, kMargin, kColW, boundary_h, x + 12, kMargin + 25,
        HtmlEscape(flow.jurisdictions[c]));
  }
  // Parties.
  for (const FlowNode& n : flow.nodes) {
    auto at = box.find(n.id);
    if (at == box.end()) continue;
    const Point p = at->second;
    absl::StrAppendFormat(
        &svg,
        "<g><title>%s</title><rect x=\"%.0f\" y=\"%.0f\" width=\"%.0f\" "
        "height=\"%.0f\" rx=\"6\" fill=\"%s\" stroke=\"%s\" "
        "stroke-width=\"%s\"/>\n",
        HtmlEscape(absl::StrCat(n.label, " (", n.jurisdiction, ")")), p.x, p.y,
        kBoxW, kBoxH, n.exposed ? "#fde2e2" : KindFill(n.kind),
        n.exposed ? "#c0392b" : "#667", n.exposed ? "3" : "1.2");
    absl::StrAppendFormat(
        &svg, "<text x=\"%.0f\" y=\"%.0f\" class=\"party\">%s</text>\n",
        p.x + 10, p.y + 20, HtmlEscape(Truncate(n.label, 30)));
    for (size_t d = 0; d < n.details.size() && d < 3; ++d) {
      absl::StrAppendFormat(
          &svg, "<text x=\"%.0f\" y=\"%.0f\" class=\"detail\">%s</text>\n",
          p.x + 10, p.y + 39 + 16 * d, HtmlEscape(Truncate(n.details[d], 36)));
    }
    absl::StrAppend(&svg, "</g>\n");
  }
  // Flows, numbered; the legend below says what crossed.
  for (size_t i = 0; i < flow.edges.size(); ++i) {
    const FlowEdge& e = flow.edges[i];
    const Geometry& g = geometry[i];
    const char* color = e.red ? "#c0392b" : e.refused ? "#999" : "#444";
    const char* marker = e.red ? "arr-red" : e.refused ? "arr-gray" : "arr";
    std::string d =
        g.curve ? absl::StrFormat("M%.1f,%.1f C%.1f,%.1f %.1f,%.1f %.1f,%.1f",
                                  g.a.x, g.a.y, g.c1.x, g.c1.y, g.c2.x, g.c2.y,
                                  g.b.x, g.b.y)
                : absl::StrFormat("M%.1f,%.1f L%.1f,%.1f", g.a.x, g.a.y, g.b.x,
                                  g.b.y);
    absl::StrAppendFormat(
        &svg,
        "<path d=\"%s\" fill=\"none\" stroke=\"%s\" stroke-width=\"%s\"%s "
        "marker-end=\"url(#%s)\"><title>%s</title></path>\n",
        d, color, e.red ? "3" : "1.6",
        e.refused ? " stroke-dasharray=\"6 4\"" : "", marker,
        HtmlEscape(e.label));
  }
  // Numbered badges over every arrow (after all arrows, so none hides one),
  // each where it does not sit on an earlier badge.
  std::vector<Point> placed;
  for (size_t i = 0; i < flow.edges.size(); ++i) {
    const FlowEdge& e = flow.edges[i];
    const Geometry& g = geometry[i];
    const char* color = e.red ? "#c0392b" : e.refused ? "#999" : "#444";
    auto at = [&](double t) {
      if (!g.curve) {
        return Point{g.a.x + t * (g.b.x - g.a.x), g.a.y + t * (g.b.y - g.a.y)};
      }
      const double u = 1 - t;
      return Point{u * u * u * g.a.x + 3 * u * u * t * g.c1.x +
                       3 * u * t * t * g.c2.x + t * t * t * g.b.x,
                   u * u * u * g.a.y + 3 * u * u * t * g.c1.y +
                       3 * u * t * t * g.c2.y + t * t * t * g.b.y};
    };
    Point mid = at(0.5);
    for (double t : {0.5, 0.35, 0.65, 0.25, 0.75}) {
      const Point p = at(t);
      const bool free =
          std::none_of(placed.begin(), placed.end(), [&](const Point& q) {
            return std::hypot(p.x - q.x, p.y - q.y) < 40;
          });
      if (free) {
        mid = p;
        break;
      }
    }
    placed.push_back(mid);
    absl::StrAppendFormat(
        &svg,
        "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"10\" fill=\"#fff\" stroke=\"%s\" "
        "stroke-width=\"1.5\"/><text x=\"%.1f\" y=\"%.1f\" class=\"badge\" "
        "fill=\"%s\">%d</text>\n",
        mid.x, mid.y, color, mid.x, mid.y + 4, color, i + 1);
    // A curve runs in the narrow margin beside the boxes: its badge alone.
    if (!g.curve) {
      absl::StrAppendFormat(
          &svg,
          "<text x=\"%.1f\" y=\"%.1f\" class=\"kind\" fill=\"%s\">%s</text>\n",
          mid.x + 13, mid.y - 6, color, HtmlEscape(e.kind));
    }
  }
  // Legend.
  double y = legend_y;
  for (const LegendLine& line : legend) {
    absl::StrAppendFormat(&svg,
                          "<text x=\"%.0f\" y=\"%.0f\" class=\"%s\" "
                          "xml:space=\"preserve\">%s</text>\n",
                          kMargin, y, line.css, HtmlEscape(line.text));
    y += kLine;
  }
  absl::StrAppend(&svg, "</svg>\n");
  return svg;
}

std::string LatencySvg(const Report& r) {
  struct Row {
    std::string op;
    double p[3];
  };
  std::vector<Row> rows;
  double max = 0;
  for (const auto& [op, stats] : r.operations) {
    if (stats.latencies_ms.empty()) continue;
    Row row{
        op,
        {Percentile(stats.latencies_ms, 50), Percentile(stats.latencies_ms, 95),
         Percentile(stats.latencies_ms, 99)}};
    max = std::max(max, row.p[2]);
    rows.push_back(row);
  }
  if (rows.empty())
    return "<p class=\"muted\">No successful calls to chart.</p>\n";
  if (max <= 0) max = 1;
  constexpr double kLabelW = 130, kBarW = 440, kBar = 12, kGroup = 3 * 12 + 14,
                   kTop = 30;
  const double width = kLabelW + kBarW + 90;
  const double height = kTop + rows.size() * kGroup + 10;
  const char* colors[3] = {"#4a90d9", "#f5a623", "#c0392b"};
  const char* names[3] = {"p50", "p95", "p99"};
  std::string svg = absl::StrFormat(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" class=\"chart\" "
      "viewBox=\"0 0 %.0f %.0f\" width=\"%.0f\" height=\"%.0f\" role=\"img\" "
      "aria-label=\"latency percentiles per operation\">\n",
      width, height, width, height);
  absl::StrAppend(&svg, kSvgStyle);
  for (int k = 0; k < 3; ++k) {
    absl::StrAppendFormat(
        &svg,
        "<rect x=\"%.0f\" y=\"8\" width=\"12\" height=\"12\" fill=\"%s\"/>"
        "<text x=\"%.0f\" y=\"18\" class=\"detail\">%s ms</text>\n",
        kLabelW + k * 80, colors[k], kLabelW + k * 80 + 16, names[k]);
  }
  for (size_t i = 0; i < rows.size(); ++i) {
    const double y0 = kTop + i * kGroup;
    absl::StrAppendFormat(&svg,
                          "<text x=\"%.0f\" y=\"%.0f\" class=\"party\" "
                          "text-anchor=\"end\">%s</text>\n",
                          kLabelW - 10, y0 + 1.5 * kBar + 4,
                          HtmlEscape(rows[i].op));
    for (int k = 0; k < 3; ++k) {
      const double w = std::max(1.0, rows[i].p[k] / max * kBarW);
      absl::StrAppendFormat(
          &svg,
          "<rect x=\"%.0f\" y=\"%.0f\" width=\"%.1f\" height=\"%.0f\" "
          "fill=\"%s\"><title>%s %s: %.2f ms</title></rect>"
          "<text x=\"%.1f\" y=\"%.0f\" class=\"detail\">%.1f</text>\n",
          kLabelW, y0 + k * kBar, w, kBar - 2, colors[k],
          HtmlEscape(rows[i].op), names[k], rows[i].p[k], kLabelW + w + 4,
          y0 + k * kBar + kBar - 3, rows[i].p[k]);
    }
  }
  absl::StrAppend(&svg, "</svg>\n");
  return svg;
}

std::string MermaidFlowchart(const DataFlow& flow) {
  std::string out = "```mermaid\nflowchart LR\n";
  for (size_t c = 0; c < flow.jurisdictions.size(); ++c) {
    absl::StrAppendFormat(&out, "  subgraph j%d[\"%s (trust boundary)\"]\n", c,
                          MermaidEscape(flow.jurisdictions[c]));
    for (const FlowNode& n : flow.nodes) {
      if (n.jurisdiction != flow.jurisdictions[c]) continue;
      std::vector<std::string> lines = {MermaidEscape(n.label)};
      for (const std::string& d : n.details) lines.push_back(MermaidEscape(d));
      absl::StrAppendFormat(&out, "    %s[\"%s\"]\n", n.id,
                            absl::StrJoin(lines, "<br/>"));
    }
    absl::StrAppend(&out, "  end\n");
  }
  std::vector<std::string> red, refused;
  for (size_t i = 0; i < flow.edges.size(); ++i) {
    const FlowEdge& e = flow.edges[i];
    absl::StrAppendFormat(&out, "  %s %s|\"%d. %s\"| %s\n", e.from,
                          e.refused ? "-.->"
                          : e.red   ? "==>"
                                    : "-->",
                          i + 1, MermaidEscape(e.label), e.to);
    if (e.red) red.push_back(absl::StrCat(i));
    if (e.refused) refused.push_back(absl::StrCat(i));
  }
  if (!red.empty()) {
    absl::StrAppend(&out, "  linkStyle ", absl::StrJoin(red, ","),
                    " stroke:#c0392b,stroke-width:3px,color:#c0392b\n");
  }
  if (!refused.empty()) {
    absl::StrAppend(&out, "  linkStyle ", absl::StrJoin(refused, ","),
                    " stroke:#999,color:#777\n");
  }
  std::vector<std::string> exposed;
  for (const FlowNode& n : flow.nodes) {
    if (n.exposed) exposed.push_back(n.id);
  }
  absl::StrAppend(&out,
                  "  classDef exposed fill:#fde2e2,stroke:#c0392b,"
                  "stroke-width:3px\n");
  if (!exposed.empty()) {
    absl::StrAppend(&out, "  class ", absl::StrJoin(exposed, ","),
                    " exposed\n");
  }
  absl::StrAppend(&out, "```\n");
  return out;
}

namespace {

constexpr char kCss[] = R"(
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;max-width:1200px;margin:2em auto;padding:0 1em}
h1{font-size:1.5em;margin-bottom:.2em}h2{font-size:1.15em;margin-top:1.8em;border-bottom:1px solid #ddd;padding-bottom:.2em}
table{border-collapse:collapse;margin:.6em 0}th,td{border:1px solid #ddd;padding:3px 8px;text-align:right}
th{background:#f4f4f4}td.l,th.l{text-align:left}tr.bad td{background:#fde2e2}
.pass{color:#1e7b34;font-weight:600}.fail{color:#c0392b;font-weight:600}
.muted{color:#777;fill:#777}.red{fill:#c0392b;color:#c0392b}
.finding{background:#fde2e2;border-left:4px solid #c0392b;padding:.4em .8em;margin:.4em 0}
svg.flow,svg.chart{max-width:100%;height:auto;border:1px solid #eee;background:#fff}
code{background:#f4f4f4;padding:0 3px}
)";

void HtmlTableStart(std::ostream& out, const std::vector<std::string>& heads) {
  out << "<table><tr>";
  for (size_t i = 0; i < heads.size(); ++i) {
    out << (i == 0 ? "<th class=\"l\">" : "<th>") << HtmlEscape(heads[i])
        << "</th>";
  }
  out << "</tr>\n";
}

}  // namespace

void WriteHtmlReport(const Report& r, std::ostream& out) {
  const std::map<std::string, double> metrics = r.Metrics();
  out << "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta "
         "charset=\"utf-8\">\n"
      << "<title>residency: " << HtmlEscape(r.scenario) << "</title>\n"
      << "<style>" << kCss << "</style>\n</head>\n<body>\n";
  out << "<h1>residency scenario: <code>" << HtmlEscape(r.scenario)
      << "</code></h1>\n";
  if (!r.title.empty())
    out << "<p><strong>" << HtmlEscape(r.title) << "</strong></p>\n";
  if (!r.description.empty())
    out << "<p>" << HtmlEscape(r.description) << "</p>\n";
  if (!r.models.empty()) {
    out << "<ul>";
    for (const std::string& m : r.models)
      out << "<li>models: " << HtmlEscape(m) << "</li>";
    out << "</ul>\n";
  }
  out << "<p>seed " << r.seed << ", " << absl::StrFormat("%.1f", r.seconds)
      << " s. <span class=\"" << (FailedExpectations(r) == 0 ? "pass" : "fail")
      << "\">" << HtmlEscape(Verdict(r)) << "</span></p>\n";

  if (!r.findings.empty()) {
    out << "<h2>Findings</h2>\n";
    for (const std::string& f : r.findings) {
      out << "<div class=\"finding\">" << HtmlEscape(f) << "</div>\n";
    }
  }

  out << "<h2>Data flow</h2>\n" << DataFlowSvg(BuildDataFlow(r));

  out << "<h2>What each party obtained</h2>\n";
  HtmlTableStart(out,
                 {"actor", "objects", "ciphertext", "wrapped keys", "data keys",
                  "KEKs", "plaintext", "exposure (max)", "refused"});
  for (const auto& [actor, got] : r.actors) {
    const double exposure =
        metrics.at(absl::StrCat("exposure_max{actor=", actor, "}"));
    std::vector<std::string> refusals;
    for (const auto& [why, n] : got.refusals) {
      refusals.push_back(absl::StrCat(n, "x by ", why));
    }
    out << "<tr" << (got.plaintext_bytes > 0 ? " class=\"bad\"" : "")
        << "><td class=\"l\">" << HtmlEscape(actor) << "</td><td>"
        << got.objects << "</td><td>"
        << HumanBytes(static_cast<double>(got.ciphertext_bytes)) << "</td><td>"
        << got.wrapped_keys << "</td><td>" << got.data_keys << "</td><td>"
        << got.keks << "</td><td>"
        << HumanBytes(static_cast<double>(got.plaintext_bytes)) << "</td><td>"
        << Percent(exposure) << "</td><td class=\"l\">"
        << HtmlEscape(absl::StrJoin(refusals, "; ")) << "</td></tr>\n";
  }
  out << "</table>\n<p class=\"muted\">Exposure: the largest share of one "
         "user's data the party can read, checked byte for byte.</p>\n";

  if (!r.exposed.empty()) {
    out << "<h2>Exposure per user</h2>\n";
    std::vector<std::string> heads = {"actor"};
    for (const auto& [user, bytes] : r.user_bytes) heads.push_back(user);
    HtmlTableStart(out, heads);
    for (const auto& [actor, users] : r.exposed) {
      out << "<tr><td class=\"l\">" << HtmlEscape(actor) << "</td>";
      for (const auto& [user, bytes] : r.user_bytes) {
        auto it = metrics.find(
            absl::StrCat("exposure{actor=", actor, ",user=", user, "}"));
        const double share = it == metrics.end() ? 0 : it->second;
        out << "<td" << (share > 0 ? " class=\"red\"" : "") << ">"
            << Percent(share) << "</td>";
      }
      out << "</tr>\n";
    }
    out << "</table>\n";
  }

  if (!r.audit_logs.empty()) {
    out << "<h2>Audit logs</h2>\n<p>Read by an auditor after the last phase "
           "and verified with the key service's own verifier: entry hashes, "
           "the hash chain and the Ed25519-signed checkpoints.</p>\n";
    for (const auto& [ks, f] : r.audit_logs) {
      out << "<h3>" << HtmlEscape(ks) << " (" << HtmlEscape(f.jurisdiction)
          << "): " << f.entries << " entries, <span class=\""
          << (f.verified ? "pass\">verified" : "fail\">NOT VERIFIED")
          << "</span></h3>\n<p class=\"muted\">" << HtmlEscape(f.verification)
          << "<br>read by " << HtmlEscape(f.read_by) << "</p>\n";
      HtmlTableStart(out, {"principal", "ALLOW", "DENY"});
      std::map<std::string, std::pair<uint64_t, uint64_t>> rows;
      auto decisions = r.audit.find(ks);
      if (decisions != r.audit.end()) {
        for (const auto& [decision, principals] : decisions->second) {
          for (const auto& [principal, n] : principals) {
            (decision == "ALLOW" ? rows[principal].first
                                 : rows[principal].second) += n;
          }
        }
      }
      for (const auto& [principal, n] : rows) {
        out << "<tr><td class=\"l\">" << HtmlEscape(principal) << "</td><td>"
            << n.first << "</td><td>" << n.second << "</td></tr>\n";
      }
      out << "</table>\n";
      if (!f.third_party.empty()) {
        HtmlTableStart(
            out, {"third-party principal", "decision", "rule", "entries"});
        for (const auto& [principal, ds] : f.third_party) {
          for (const auto& [decision, rules] : ds) {
            for (const auto& [rule, n] : rules) {
              out << "<tr" << (decision == "ALLOW" ? " class=\"bad\"" : "")
                  << "><td class=\"l\">" << HtmlEscape(principal)
                  << "</td><td class=\"l\">" << HtmlEscape(decision)
                  << "</td><td class=\"l\"><code>" << HtmlEscape(rule)
                  << "</code></td><td>" << n << "</td></tr>\n";
            }
          }
        }
        out << "</table>\n";
      }
    }
  }

  out << "<h2>Operations</h2>\n";
  HtmlTableStart(out, {"op", "ok", "errors", "availability", "p50 ms", "p95 ms",
                       "p99 ms", "error codes"});
  for (const auto& [op, stats] : r.operations) {
    uint64_t errors = 0;
    std::vector<std::string> codes;
    for (const auto& [code, n] : stats.errors) {
      errors += n;
      codes.push_back(absl::StrCat(code, " ", n));
    }
    const double all = static_cast<double>(stats.ok + errors);
    out << "<tr><td class=\"l\">" << HtmlEscape(op) << "</td><td>" << stats.ok
        << "</td><td>" << errors << "</td><td>"
        << Percent(all == 0 ? 1 : stats.ok / all) << "</td>"
        << absl::StrFormat("<td>%.1f</td><td>%.1f</td><td>%.1f</td>",
                           Percentile(stats.latencies_ms, 50),
                           Percentile(stats.latencies_ms, 95),
                           Percentile(stats.latencies_ms, 99))
        << "<td class=\"l\">" << HtmlEscape(absl::StrJoin(codes, ", "))
        << "</td></tr>\n";
  }
  out << "</table>\n<h3>Latency (successful calls)</h3>\n" << LatencySvg(r);
  if (r.wrong_plaintext > 0) {
    out << "<p class=\"fail\">WRONG PLAINTEXT returned to users: "
        << r.wrong_plaintext << "</p>\n";
  }

  if (!r.links.empty()) {
    out << "<h2>Links between jurisdictions</h2>\n";
    HtmlTableStart(
        out, {"link", "calls", "lost", "partitioned", "requests", "responses"});
    for (const auto& [link, f] : r.links) {
      // An init-capture: clang before 16 cannot capture a structured
      // binding.
      auto get = [&fields = f](const char* k) {
        auto it = fields.find(k);
        return it == fields.end() ? 0.0 : it->second;
      };
      out << "<tr><td class=\"l\">" << HtmlEscape(link) << "</td><td>"
          << Num(get("calls")) << "</td><td>" << Num(get("lost")) << "</td><td>"
          << Num(get("partitioned")) << "</td><td>"
          << HumanBytes(get("request_bytes")) << "</td><td>"
          << HumanBytes(get("response_bytes")) << "</td></tr>\n";
    }
    out << "</table>\n";
  }

  if (!r.notes.empty()) {
    out << "<h2>Notes</h2>\n<ul>\n";
    for (const std::string& n : r.notes)
      out << "<li>" << HtmlEscape(n) << "</li>\n";
    out << "</ul>\n";
  }

  out << "<h2>Expectations</h2>\n";
  HtmlTableStart(out, {"result", "expectation", "metric", "wanted", "actual"});
  for (const ExpectationResult& e : r.expectations) {
    out << "<tr" << (e.passed ? "" : " class=\"bad\"") << "><td class=\"l "
        << (e.passed ? "pass\">pass" : "fail\">FAIL") << "</td><td class=\"l\">"
        << HtmlEscape(e.expectation.name()) << "</td><td class=\"l\"><code>"
        << HtmlEscape(e.expectation.metric()) << "</code></td><td>"
        << HtmlEscape(ExpectationOpSymbol(e.expectation.op())) << " "
        << Num(e.expectation.value()) << "</td><td>"
        << (e.found ? Num(e.actual) : "no such metric") << "</td></tr>\n";
  }
  out << "</table>\n<p>" << HtmlEscape(Verdict(r)) << "</p>\n";

  out << "<details><summary>All metrics (" << metrics.size() << ")</summary>\n";
  HtmlTableStart(out, {"metric", "value"});
  for (const auto& [name, value] : metrics) {
    out << "<tr><td class=\"l\"><code>" << HtmlEscape(name)
        << "</code></td><td>" << Num(value) << "</td></tr>\n";
  }
  out << "</table>\n</details>\n</body>\n</html>\n";
}

void WriteMarkdownReport(const Report& r, std::ostream& out) {
  const std::map<std::string, double> metrics = r.Metrics();
  out << "## residency scenario: " << MarkdownEscape(r.scenario) << "\n\n";
  if (!r.title.empty()) out << "**" << MarkdownEscape(r.title) << "**\n\n";
  if (!r.description.empty()) out << MarkdownEscape(r.description) << "\n\n";
  for (const std::string& m : r.models)
    out << "- models: " << MarkdownEscape(m) << "\n";
  out << "- seed " << r.seed << ", " << absl::StrFormat("%.1f", r.seconds)
      << " s\n- " << (FailedExpectations(r) == 0 ? "PASS: " : "FAIL: ")
      << MarkdownEscape(Verdict(r)) << "\n\n";
  for (const std::string& f : r.findings) {
    out << "> **Finding:** " << MarkdownEscape(f) << "\n\n";
  }
  out << "### Data flow\n\n" << MermaidFlowchart(BuildDataFlow(r)) << "\n";
  out << "Each subgraph is a jurisdiction (a trust boundary). Thick red "
         "arrows: plaintext or keys reached an authority; dotted: asked for "
         "and refused.\n\n";

  out << "### What each party obtained\n\n"
      << "| actor | objects | ciphertext | wrapped keys | data keys | KEKs | "
         "plaintext | exposure (max) |\n"
      << "|---|---:|---:|---:|---:|---:|---:|---:|\n";
  for (const auto& [actor, got] : r.actors) {
    out << "| " << MarkdownEscape(actor) << " | " << got.objects << " | "
        << HumanBytes(static_cast<double>(got.ciphertext_bytes)) << " | "
        << got.wrapped_keys << " | " << got.data_keys << " | " << got.keks
        << " | " << HumanBytes(static_cast<double>(got.plaintext_bytes))
        << " | "
        << Percent(metrics.at(absl::StrCat("exposure_max{actor=", actor, "}")))
        << " |\n";
  }
  out << "\n";

  if (!r.audit_logs.empty()) {
    out << "### Audit logs\n\n"
        << "| key service | entries | verified | third-party requests |\n"
        << "|---|---:|---|---|\n";
    for (const auto& [ks, f] : r.audit_logs) {
      std::vector<std::string> third;
      for (const auto& [principal, ds] : f.third_party) {
        for (const auto& [decision, rules] : ds) {
          for (const auto& [rule, n] : rules) {
            third.push_back(absl::StrCat(decision, " ", principal, " x", n,
                                         " (rule ", rule, ")"));
          }
        }
      }
      out << "| " << MarkdownEscape(ks) << " ("
          << MarkdownEscape(f.jurisdiction) << ") | " << f.entries << " | "
          << (f.verified ? "yes" : "**NO**: ")
          << (f.verified ? "" : MarkdownEscape(f.verification)) << " | "
          << MarkdownEscape(absl::StrJoin(third, "; ")) << " |\n";
    }
    out << "\n";
  }

  out << "### Operations\n\n| op | ok | errors | p50 ms | p95 ms | p99 ms |\n"
      << "|---|---:|---:|---:|---:|---:|\n";
  for (const auto& [op, stats] : r.operations) {
    uint64_t errors = 0;
    for (const auto& [code, n] : stats.errors) errors += n;
    out << "| " << MarkdownEscape(op) << " | " << stats.ok << " | " << errors
        << absl::StrFormat(" | %.1f | %.1f | %.1f |\n",
                           Percentile(stats.latencies_ms, 50),
                           Percentile(stats.latencies_ms, 95),
                           Percentile(stats.latencies_ms, 99));
  }
  out << "\n";
  for (const std::string& n : r.notes) out << "- " << MarkdownEscape(n) << "\n";
  if (!r.notes.empty()) out << "\n";

  out << "### Expectations\n\n| | expectation | metric | wanted | actual |\n"
      << "|---|---|---|---|---:|\n";
  for (const ExpectationResult& e : r.expectations) {
    out << "| " << (e.passed ? "pass" : "**FAIL**") << " | "
        << MarkdownEscape(e.expectation.name()) << " | "
        << MarkdownEscape(e.expectation.metric()) << " | "
        << MarkdownEscape(ExpectationOpSymbol(e.expectation.op())) << " "
        << Num(e.expectation.value()) << " | "
        << (e.found ? Num(e.actual) : "no such metric") << " |\n";
  }
  out << "\n";
}

}  // namespace residency::sim
