// The weekly sales chart as SVG: a bar per week (red when below the policy's share of the
// baseline), the baseline and the target as lines. The parameters come with the series, from
// the running policy (`dealer_file`): nothing of the policy is restated here.

import { t } from "./i18n.js";

const NS = "http://www.w3.org/2000/svg";
const WIDTH = 720, HEIGHT = 260, LEFT = 64, RIGHT = 12, TOP = 16, BOTTOM = 56;

function svg(tag, attributes = {}, text = null) {
  const element = document.createElementNS(NS, tag);
  for (const [name, value] of Object.entries(attributes)) element.setAttribute(name, value);
  if (text !== null) element.textContent = text;
  return element;
}

export function weeklyChart({ weeks, baseline_weeks: baselineWeeks, drop_below: dropBelow }) {
  const share = { percent: Math.round(dropBelow * 100), weeks: baselineWeeks };
  const values = weeks.flatMap((w) => [w.net_sales, w.baseline, w.target]).filter((v) => v !== null);
  const top = Math.max(1, ...values) * 1.1;
  const bottom = Math.min(0, ...values);
  const plotWidth = WIDTH - LEFT - RIGHT, plotHeight = HEIGHT - TOP - BOTTOM;
  const step = plotWidth / weeks.length;
  const y = (v) => TOP + plotHeight * (1 - (v - bottom) / (top - bottom));
  const x = (i) => LEFT + step * (i + 0.5);

  const chart = svg("svg", { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, class: "chart", role: "img", "aria-label": t("weeklySales") });
  for (const fraction of [0, 0.5, 1]) {
    const value = bottom + (top - bottom) * fraction;
    chart.append(svg("line", { x1: LEFT, x2: WIDTH - RIGHT, y1: y(value), y2: y(value), class: "grid" }));
    chart.append(svg("text", { x: LEFT - 6, y: y(value) + 4, class: "axis", "text-anchor": "end" }, Math.round(value).toLocaleString()));
  }
  weeks.forEach((week, i) => {
    const low = week.baseline !== null && week.net_sales < dropBelow * week.baseline;
    const height = Math.abs(y(week.net_sales) - y(0));
    const bar = svg("rect", {
      x: x(i) - step * 0.35, width: step * 0.7, y: Math.min(y(week.net_sales), y(0)), height: Math.max(height, 0.5),
      class: `bar${low ? " low" : ""}`, "data-week": week.week_start, "data-net-sales": week.net_sales,
    });
    bar.append(svg("title", {}, `${week.week_start}: ${week.net_sales.toLocaleString()}${low ? ` (${t("belowBaseline", share)})` : ""}`));
    chart.append(bar);
    chart.append(svg("text", { x: x(i), y: HEIGHT - BOTTOM + 16, class: "axis", "text-anchor": "middle" }, week.week_start.slice(5)));
  });
  for (const [key, name] of [["baseline", "baseline"], ["target", "target"]]) {
    const points = weeks.map((w, i) => (w[key] === null ? null : `${x(i)},${y(w[key])}`)).filter(Boolean);
    if (points.length) chart.append(svg("polyline", { points: points.join(" "), class: `line ${name}`, "data-series": name }));
  }
  const legend = baselineWeeks
    ? [["bar", "netSales"], ["bar low", "belowBaseline"], ["line baseline", "baseline"], ["line target", "target"]]
    : [["bar", "netSales"], ["line target", "target"]];
  legend.forEach(([kind, label], i) => {
    const lx = LEFT + i * 165, ly = HEIGHT - 14;
    chart.append(kind.startsWith("bar")
      ? svg("rect", { x: lx, y: ly - 9, width: 12, height: 10, class: kind })
      : svg("line", { x1: lx, x2: lx + 14, y1: ly - 4, y2: ly - 4, class: kind }));
    chart.append(svg("text", { x: lx + 18, y: ly, class: "legend" }, t(label, share)));
  });
  return chart;
}
