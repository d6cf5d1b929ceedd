"""Chart geometry for dashboard widgets: shapes, axes and labels the page draws as inline SVG.

Everything is computed here so that the template only places shapes: no script draws the
charts, colours are SVG presentation attributes (the page's CSP allows no inline styles, and a
PNG made from the SVG keeps them).
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

from formloom.runtime.dashboards import Series, WidgetData

PALETTE = ("#3366cc", "#f28e2b", "#59a14f", "#e15759", "#76b7b2", "#edc948", "#b07aa1", "#9c755f")
WIDTH = 640
LABEL_CHARS = 14


@dataclass
class Shape:
    kind: str  # rect | path | circle | polyline
    attrs: dict[str, str]
    href: str | None = None
    title: str = ""


@dataclass
class Text:
    x: float
    y: float
    text: str
    anchor: str = "start"
    size: int = 12
    weight: str = "normal"
    fill: str = "#333333"


@dataclass
class Chart:
    width: int
    height: int
    shapes: list[Shape] = field(default_factory=list)
    texts: list[Text] = field(default_factory=list)
    lines: list[tuple[float, float, float, float]] = field(default_factory=list)  # axes and grid
    legend: list[tuple[str, str]] = field(default_factory=list)  # (colour, label)


def format_number(value: float | None, fmt: str, locale: str = "en") -> str:
    if value is None:
        return "—"
    if fmt == "percent":
        return f"{value * 100:.1f}%"
    if float(value).is_integer():
        return f"{int(value):,}"
    return f"{value:,.2f}"


def compact(value: float, locale: str) -> str:
    """A short axis label: 1.2M / 35K, or 120万 / 3.5千 in Chinese."""
    size = abs(value)
    if locale == "zh-CN" and size >= 10_000:
        return f"{value / 10_000:g}万" if size < 100_000_000 else f"{value / 100_000_000:g}亿"
    for limit, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if size >= limit:
            return f"{value / limit:g}{suffix}"
    return f"{value:g}"


def nice_ticks(top: float, count: int = 5) -> list[float]:
    if top <= 0:
        return [0.0, 1.0]
    raw = top / count
    magnitude = 10 ** math.floor(math.log10(raw))
    step = next(m * magnitude for m in (1, 2, 2.5, 5, 10) if m * magnitude >= raw)
    return [step * i for i in range(math.ceil(top / step) + 1)]


def short(label: str, chars: int = LABEL_CHARS) -> str:
    return label if len(label) <= chars else label[:chars - 1] + "…"


def drawn_series(data: WidgetData) -> list[int]:
    """Series drawn in the chart: those in the first series' unit (the rest are in the data table)."""
    if not data.series:
        return []
    unit = data.series[0].fmt
    return [i for i, s in enumerate(data.series) if s.fmt == unit]


Link = Callable[[dict | None], str | None]


def chart(data: WidgetData, link: Link, locale: str) -> Chart | None:
    builders = {"bar": bars, "column": columns, "line": line, "funnel": funnel, "donut": donut}
    if data.state != "ok" or data.type not in builders or not data.rows:
        return None
    return builders[data.type](data, link, locale)


def _tip(row_label: str, series: Series, value: float | None, locale: str) -> str:
    return f"{row_label} · {series.label}: {format_number(value, series.fmt, locale)}"


def columns(data: WidgetData, link: Link, locale: str) -> Chart:
    drawn = drawn_series(data)
    left, top, bottom, height = 64, 16, 56, 300
    plot_h = height - top - bottom
    plot_w = WIDTH - left - 16
    values = [data.rows[r].cells[i].value or 0 for r in range(len(data.rows)) for i in drawn]
    ticks = nice_ticks(max(values + [0]))
    scale = plot_h / (ticks[-1] or 1)
    out = Chart(WIDTH, height)
    _y_axis(out, ticks, scale, left, top + plot_h, WIDTH - 16, data.series[0].fmt, locale)
    slot = plot_w / len(data.rows)
    bar_w = max(min(slot * 0.8 / len(drawn), 48), 2)
    for r, row in enumerate(data.rows):
        x0 = left + slot * r + (slot - bar_w * len(drawn)) / 2
        for j, i in enumerate(drawn):
            value = row.cells[i].value or 0
            h = max(value * scale, 0)
            out.shapes.append(Shape("rect", {"x": f"{x0 + j * bar_w:.1f}", "y": f"{top + plot_h - h:.1f}",
                                             "width": f"{bar_w - 1:.1f}", "height": f"{h:.1f}",
                                             "fill": PALETTE[j % len(PALETTE)]},
                                    link(row.cells[i].drill), _tip(row.label, data.series[i], value, locale)))
        out.texts.append(Text(left + slot * (r + 0.5), top + plot_h + 16, short(row.label, max(int(slot / 7), 4)),
                              "middle", 11))
    _legend(out, data, drawn)
    return out


def bars(data: WidgetData, link: Link, locale: str) -> Chart:
    drawn = drawn_series(data)
    left, right = 150, 90
    row_h = 14 * len(drawn) + 10
    height = 24 + row_h * len(data.rows) + (20 if len(drawn) > 1 else 0)  # room for the legend
    values = [row.cells[i].value or 0 for row in data.rows for i in drawn]
    top_value = max(values + [0]) or 1
    scale = (WIDTH - left - right) / top_value
    out = Chart(WIDTH, height)
    out.lines.append((left, 8, left, height - 8))
    for r, row in enumerate(data.rows):
        y0 = 12 + r * row_h
        out.texts.append(Text(left - 6, y0 + row_h / 2, short(row.label, 20), "end", 12))
        for j, i in enumerate(drawn):
            value = row.cells[i].value or 0
            w = max(value * scale, 0)
            y = y0 + j * 14
            out.shapes.append(Shape("rect", {"x": f"{left}", "y": f"{y:.1f}", "width": f"{w:.1f}", "height": "12",
                                             "fill": PALETTE[j % len(PALETTE)]},
                                    link(row.cells[i].drill), _tip(row.label, data.series[i], value, locale)))
            out.texts.append(Text(left + w + 4, y + 10, format_number(value, data.series[i].fmt, locale), size=11))
    _legend(out, data, drawn)
    return out


def line(data: WidgetData, link: Link, locale: str) -> Chart:
    drawn = drawn_series(data)
    left, top, bottom, height = 64, 16, 56, 300
    plot_h, plot_w = height - top - bottom, WIDTH - left - 56  # room for the last point's label
    values = [row.cells[i].value or 0 for row in data.rows for i in drawn]
    ticks = nice_ticks(max(values + [0]))
    scale = plot_h / (ticks[-1] or 1)
    out = Chart(WIDTH, height)
    _y_axis(out, ticks, scale, left, top + plot_h, WIDTH - 16, data.series[0].fmt, locale)
    step = plot_w / max(len(data.rows) - 1, 1)
    every = max(1, math.ceil(len(data.rows) / 12))
    for j, i in enumerate(drawn):
        points = []
        for r, row in enumerate(data.rows):
            value = row.cells[i].value or 0
            x, y = left + 8 + step * r, top + plot_h - value * scale
            points.append(f"{x:.1f},{y:.1f}")
            out.shapes.append(Shape("circle", {"cx": f"{x:.1f}", "cy": f"{y:.1f}", "r": "5",
                                               "fill": PALETTE[j % len(PALETTE)]},
                                    link(row.cells[i].drill), _tip(row.label, data.series[i], value, locale)))
        out.shapes.insert(0, Shape("polyline", {"points": " ".join(points), "fill": "none",
                                                "stroke": PALETTE[j % len(PALETTE)], "stroke-width": "2"}))
    for r, row in enumerate(data.rows):
        if r % every == 0:
            out.texts.append(Text(left + 8 + step * r, top + plot_h + 16, short(row.label, 11), "middle", 11))
    _legend(out, data, drawn)
    return out


def funnel(data: WidgetData, link: Link, locale: str) -> Chart:
    row_h, height = 34, 12 + 34 * len(data.rows)
    top_value = max([row.cells[0].value or 0 for row in data.rows] + [0]) or 1
    centre, full = 300, 260
    out = Chart(WIDTH, height)
    rate_at = next((i for i, s in enumerate(data.series) if s.fmt == "percent"), None)
    for r, row in enumerate(data.rows):
        value = row.cells[0].value or 0
        w = max(full * value / top_value, 2)
        y = 6 + r * row_h
        out.shapes.append(Shape("rect", {"x": f"{centre - w / 2:.1f}", "y": f"{y}", "width": f"{w:.1f}",
                                         "height": f"{row_h - 6}", "fill": PALETTE[r % len(PALETTE)]},
                                link(row.cells[0].drill), _tip(row.label, data.series[0], value, locale)))
        out.texts.append(Text(centre - full / 2 - 8, y + row_h / 2, short(row.label, 20), "end", 12))
        extra = [format_number(row.cells[i].value, s.fmt, locale) for i, s in enumerate(data.series)
                 if i and s.fmt != "percent"]
        if rate_at is not None and row.cells[rate_at].value is not None:
            extra.append("→ " + format_number(row.cells[rate_at].value, "percent"))
        out.texts.append(Text(centre + full / 2 + 8, y + row_h / 2,
                              " · ".join([format_number(value, data.series[0].fmt, locale), *extra]), size=12))
    return out


def donut(data: WidgetData, link: Link, locale: str) -> Chart:
    values = [max(row.cells[0].value or 0, 0) for row in data.rows]
    total = sum(values)
    cx, cy, outer, inner = 130, 130, 110, 62
    out = Chart(WIDTH, max(260, 24 + 22 * len(data.rows)))
    angle = -math.pi / 2
    for r, (row, value) in enumerate(zip(data.rows, values)):
        colour = PALETTE[r % len(PALETTE)]
        share = value / total if total else 0
        if share > 0:
            sweep = min(share, 0.9999) * 2 * math.pi
            out.shapes.append(Shape("path", {"d": _arc(cx, cy, outer, inner, angle, angle + sweep), "fill": colour},
                                    link(row.cells[0].drill), _tip(row.label, data.series[0], value, locale)))
            angle += sweep
        y = 20 + 22 * r
        out.shapes.append(Shape("rect", {"x": "280", "y": f"{y - 10}", "width": "12", "height": "12", "fill": colour},
                                link(row.cells[0].drill), _tip(row.label, data.series[0], value, locale)))
        out.texts.append(Text(298, y, f"{short(row.label, 24)}: {format_number(value, data.series[0].fmt, locale)}"
                                      f" ({share * 100:.0f}%)", size=12))
    out.texts.append(Text(cx, cy + 5, format_number(total, data.series[0].fmt, locale), "middle", 16, "bold"))
    return out


def _arc(cx: float, cy: float, outer: float, inner: float, start: float, end: float) -> str:
    large = 1 if end - start > math.pi else 0
    def at(radius: float, angle: float) -> tuple[float, float]:
        return cx + radius * math.cos(angle), cy + radius * math.sin(angle)
    p = [at(outer, start), at(outer, end), at(inner, end), at(inner, start)]
    return (f"M{p[0][0]:.2f},{p[0][1]:.2f} A{outer},{outer} 0 {large} 1 {p[1][0]:.2f},{p[1][1]:.2f} "
            f"L{p[2][0]:.2f},{p[2][1]:.2f} A{inner},{inner} 0 {large} 0 {p[3][0]:.2f},{p[3][1]:.2f} Z")


def _y_axis(out: Chart, ticks: list[float], scale: float, left: float, base: float, right: float,
            fmt: str, locale: str) -> None:
    for tick in ticks:
        y = base - tick * scale
        out.lines.append((left, y, right, y))
        text = f"{tick * 100:g}%" if fmt == "percent" else compact(tick, locale)
        out.texts.append(Text(left - 6, y + 4, text, "end", 11, fill="#555555"))


def _legend(out: Chart, data: WidgetData, drawn: list[int]) -> None:
    if len(drawn) > 1:
        out.legend = [(PALETTE[j % len(PALETTE)], data.series[i].label) for j, i in enumerate(drawn)]
