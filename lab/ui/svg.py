"""The graph as inline SVG (no library: the page works offline). Pure: Graph -> text.

Every node is a <g data-node=NAME> and every tunnel a <path data-edge=ID data-state=STATE>, so the page
(and the browser test) finds them by name and reads their state without parsing colors.
"""

from __future__ import annotations

from html import escape

from lab.ui.model import COL_X, GEdge, GNode, Graph

STATE_COLORS = {"up": "#1f9d55", "connecting": "#d69e2e", "down": "#e3342f", "": "#9aa5b1"}
FILL = {"gateway": "#e8f1fb", "standby": "#f4f6f8", "site": "#fdf4e7", "host": "#ffffff", "client": "#f3ecfb",
        "internet": "#eef2f5"}


STYLE = (".label{font:600 13px sans-serif;fill:#1f2933}.sub{font:11px sans-serif;fill:#52606d}"
         ".edge-label{font:11px sans-serif;fill:#1f2933;paint-order:stroke;stroke:#fff;stroke-width:3px}"
         ".edge-label .bgp{font-size:10px;fill:#2b6cb0}"
         ".badge{font:700 10px sans-serif}.badge.ok{fill:#2b6cb0}.badge.bad{fill:#e3342f}"
         ".node{cursor:pointer}.node.selected rect{stroke-width:4}")


def _a(value: object) -> str:
    return escape(str(value), quote=True)


def render_svg(g: Graph) -> str:
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {g.width:.0f} {g.height:.0f}" '
             f'width="{g.width:.0f}" height="{g.height:.0f}" class="topology" role="img"><style>{STYLE}</style>']
    by_id = {n.id: n for n in g.nodes}
    internet = by_id.get("internet")
    if internet:
        parts.append(_node(internet))
    parts += [_edge(e, by_id) for e in g.edges if e.a in by_id and e.b in by_id]
    parts += [_node(n) for n in g.nodes if n.kind != "internet"]
    parts.append("</svg>")
    return "".join(parts)


def _edge(e: GEdge, by_id: dict[str, GNode]) -> str:
    a, b = by_id[e.a], by_id[e.b]
    if a.x > b.x:
        a, b = b, a
    x1, y1, x2, y2 = a.x + a.w, a.y + a.h / 2, b.x, b.y + b.h / 2
    color = STATE_COLORS.get(e.state, STATE_COLORS[""])
    attrs = (f'data-edge="{_a(e.id)}" data-kind="{e.kind}" data-state="{_a(e.state)}" stroke="{color}" '
             f'fill="none" class="edge {e.kind} {_a(e.state)}"')
    if e.kind == "lan":
        return f'<line {attrs} x1="{x1:.0f}" y1="{y1:.0f}" x2="{x2:.0f}" y2="{y2:.0f}" stroke-width="1.5"/>'
    ix = COL_X[2]
    dash = ' stroke-dasharray="6 4"' if e.state == "connecting" or e.kind == "p2s" else ""
    width = 3.5 if e.kind == "tunnel" else 2
    path = f"M{x1:.0f},{y1:.0f} C{ix:.0f},{y1:.0f} {ix:.0f},{y2:.0f} {x2:.0f},{y2:.0f}"
    label = e.label + (f" · {e.bgp}" if e.bgp else "")
    lx, ly = ix, (y1 + y2) / 2 - (12 if e.bgp else 6)
    bgp = f'<tspan x="{lx:.0f}" dy="12" class="bgp">{_a(e.bgp)}</tspan>' if e.bgp else ""
    text = "" if e.kind == "p2s" else (  # a client's state is its color and its box; the reason in the table
        f'<text x="{lx:.0f}" y="{ly:.0f}" class="edge-label" text-anchor="middle">{_a(e.label)}{bgp}</text>')
    return (f'<g class="edge-group"><path {attrs} d="{path}" stroke-width="{width}"{dash}>'
            f"<title>{_a(label)}</title></path>{text}</g>")


def _node(n: GNode) -> str:
    down = n.state != "running"
    stroke = "#e3342f" if down or n.fault else ("#2b6cb0" if n.active else "#52606d")
    dash = ' stroke-dasharray="5 3"' if n.kind == "standby" else ""
    parts = [f'<g data-node="{_a(n.id)}" data-kind="{n.kind}" data-state="{_a(n.state)}" '
             f'class="node {n.kind}{" down" if down else ""}" tabindex="0">',
             f'<rect x="{n.x:.0f}" y="{n.y:.0f}" width="{n.w:.0f}" height="{n.h:.0f}" rx="8" '
             f'fill="{"#f1f1f1" if down else FILL.get(n.kind, "#fff")}" stroke="{stroke}" stroke-width="2"{dash}/>']
    cx = n.x + n.w / 2
    if n.kind == "internet":
        parts.append(f'<text x="{cx:.0f}" y="{n.y + 16:.0f}" text-anchor="middle" class="label">Internet</text>')
        bottom = n.y + n.h - 8 - 12 * len(n.sub)
        parts += [f'<text x="{cx:.0f}" y="{bottom + 12 * i:.0f}" text-anchor="middle" class="sub">{_a(s)}</text>'
                  for i, s in enumerate(n.sub)]
    else:
        parts.append(f'<text x="{n.x + 8:.0f}" y="{n.y + 16:.0f}" class="label">{_a(n.label)}</text>')
        parts += [f'<text x="{n.x + 8:.0f}" y="{n.y + 30 + 12 * i:.0f}" class="sub">{_a(s)}</text>'
                  for i, s in enumerate(n.sub)]
    badge = _badge(n)
    if badge:
        parts.append(f'<text x="{n.x + n.w - 6:.0f}" y="{n.y + 16:.0f}" text-anchor="end" '
                     f'class="badge {"bad" if down or n.fault else "ok"}">{_a(badge)}</text>')
    parts.append(f"<title>{_a(n.id)}: {_a(n.state)}{(' · fault ' + _a(n.fault)) if n.fault else ''}</title></g>")
    return "".join(parts)


def _badge(n: GNode) -> str:
    if n.fault:
        return n.fault.split()[0].upper()
    if n.state != "running":
        return n.state.upper()
    return "ACTIVE" if n.active and n.kind == "gateway" else ""
