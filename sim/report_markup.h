#ifndef RESIDENCY_SIM_REPORT_MARKUP_H_
#define RESIDENCY_SIM_REPORT_MARKUP_H_

// Pieces of the HTML and Markdown reports (report_formats.cc), shared with
// the comparison of two runs (compare.h).

#include <string>

#include "absl/strings/string_view.h"
#include "sim/data_flow.h"
#include "sim/report.h"

namespace residency::sim {

// & < > " ' as entities: safe in HTML text and attribute values, and in SVG.
std::string HtmlEscape(absl::string_view s);
// For Markdown text and table cells: HTML-significant characters as
// entities, Markdown punctuation backslash-escaped, '|' escaped, newlines
// as spaces.
std::string MarkdownEscape(absl::string_view s);
// For a quoted Mermaid label: entity codes (#quot; #lt; ...).
std::string MermaidEscape(absl::string_view s);

// The data flow as an inline SVG: jurisdictions as dashed boxes, parties
// inside, numbered arrows with a legend of what crossed.
std::string DataFlowSvg(const DataFlow& flow);
// p50/p95/p99 bars per operation, as an inline SVG.
std::string LatencySvg(const Report& report);
// A fenced ```mermaid flowchart of the data flow.
std::string MermaidFlowchart(const DataFlow& flow);

}  // namespace residency::sim

#endif  // RESIDENCY_SIM_REPORT_MARKUP_H_
