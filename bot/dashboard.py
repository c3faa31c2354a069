"""The read-only dashboard at /dashboard: per flow, the funnel as an inline SVG chart, outcomes,
A/B results and the step graph; the latest completions and the sales team's latest actions.

One self-contained HTML page (no scripts, no CDN: it works offline), behind DASHBOARD_TOKEN:
`Authorization: Bearer`, or an HttpOnly cookie that a `?token=` link sets before redirecting
to the page without the token (bot.access).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import UTC, datetime
from html import escape

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Route

from bot import access
from bot.analytics import (
    OUTCOME_ORDER,
    FlowStats,
    Funnel,
    Outcomes,
    Segment,
    duration,
    p_value,
    read_events,
)
from bot.app import Services
from bot.flow.compile import machine_config
from bot.flow.model import Flow
from bot.leads import HEADINGS, Filter, LeadRow, cells, lead_rows
from domain.model import DomainEvent, Outcome
from storage.connect import REDIS_ERRORS
from storage.events import RedisEventLog
from storage.outbox import Outbox

RECENT = 20  # completions (and sales actions) listed
SALES_ACTIONS = {  # domain event -> how the dashboard names it
    "claimed": "claimed",
    "paused": "took over",
    "resumed": "handed back",
    "not_a_fit": "not a fit",
    "won": "won",
    "lost": "lost",
}
RECENT_SCAN = 10_000  # newest log entries searched for them
COOKIE = "ladder_dashboard"  # holds the token once a ?token= link was opened
HOW = "open /dashboard?token=<DASHBOARD_TOKEN> once, or pass Authorization: Bearer"
BAR_WIDTH = 420
ROW = 26


def routes(services: Services) -> list[BaseRoute]:
    """The dashboard's routes, for bot.web.create_app."""
    secure = (services.settings.public_url or "").startswith("https://")

    def refused(request: Request) -> Response | None:
        """The answer to a request without the dashboard token; None when it has it."""
        token = services.settings.dashboard_token
        if not token:
            return access.disabled("dashboard disabled: set DASHBOARD_TOKEN")
        link = request.query_params.get("token")
        if link is not None:
            return enter(request, link, token, secure)
        given = access.bearer(request) or request.cookies.get(COOKIE, "")
        if not access.matches(given, token):
            return access.refused(HOW)
        return None

    async def page(request: Request) -> Response:
        if (refusal := refused(request)) is not None:
            return refusal
        try:
            events = await read_events(services.redis)
            sections = []
            for name in await services.flows.catalog.names():
                flow = (await services.flows.latest(name)).flow
                order = [s.id for s in flow.steps]
                stats = FlowStats.of(events, Segment(name), order, Outcomes.of(flow))
                sections.append(flow_section(stats, flow))
            recent = await recent_events(services, {"completed"})
            sales = await recent_events(services, SALES_ACTIONS.keys())
            dead = await Outbox(services.redis).dead_count()
        except REDIS_ERRORS as exc:
            return PlainTextResponse(f"Redis is unavailable: {exc}", status_code=503)
        return HTMLResponse(render_page(sections, recent, services.clock.now(), sales, dead))

    async def leads(request: Request) -> Response:
        if (refusal := refused(request)) is not None:
            return refusal
        query = request.query_params
        try:
            names = await services.flows.catalog.names()
            flow = query.get("flow") or (names[0] if names else "")
            claimed = {"yes": True, "no": False}.get(query.get("claimed", ""))
            chosen = Filter(flow, query.get("outcome") or None, claimed)
            rows = await lead_rows(services.redis, chosen)
        except REDIS_ERRORS as exc:
            return PlainTextResponse(f"Redis is unavailable: {exc}", status_code=503)
        return HTMLResponse(render_leads(rows, chosen, names))

    return [Route("/dashboard", page), Route("/dashboard/leads", leads)]


def enter(request: Request, link: str, token: str, secure: bool) -> Response:
    """A `?token=` link: with the right token, set the cookie and redirect to the same page
    without the token, so it stays in no url (browser history, later access lines)."""
    if not access.matches(link, token):
        return access.refused(HOW)
    query = str(request.url.remove_query_params("token").query)
    response = RedirectResponse(request.url.path + (f"?{query}" if query else ""), 303)
    response.set_cookie(
        COOKIE, token, path="/dashboard", httponly=True, secure=secure, samesite="lax"
    )
    return response


def render_leads(rows: list[LeadRow], chosen: Filter, flows: list[str]) -> str:
    """The leads view: a filter form (flow, outcome, claimed) and one row per lead."""

    def select(name: str, options: Sequence[str], current: str) -> str:
        items = "".join(
            f'<option value="{escape(o)}"{" selected" if o == current else ""}>'
            f"{escape(o) or 'any'}</option>"
            for o in options
        )
        return f'<label>{name} <select name="{name}">{items}</select></label> '

    claimed = {True: "yes", False: "no", None: ""}[chosen.claimed]
    form = (
        '<form method="get" action="/dashboard/leads">'
        + select("flow", flows, chosen.flow)
        + select("outcome", ["", *(o.value for o in Outcome), "none"], chosen.outcome or "")
        + select("claimed", ["", "yes", "no"], claimed)
        + '<button type="submit">Show</button></form>'
    )
    body = "".join(
        '<tr class="lead">' + "".join(f"<td>{escape(c)}</td>" for c in cells(r)) + "</tr>"
        for r in rows
    )
    head = "".join(f"<th>{escape(h)}</th>" for h in HEADINGS)
    table = f"<table><tr>{head}</tr>{body}</table>" if body else "<p>No leads match.</p>"
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>ladderbot leads</title><style>{STYLE}</style></head><body>"
        f"<h1>Leads <small>{escape(chosen.flow)}</small></h1>{form}"
        f'<section id="leads">{table}</section></body></html>'
    )


async def recent_events(services: Services, names: Collection[str]) -> list[DomainEvent]:
    """The newest events of these names, newest first (searching the newest RECENT_SCAN
    entries of each shard)."""
    return await RedisEventLog(services.redis).recent(names, RECENT, RECENT_SCAN)


def funnel_svg(result: Funnel) -> str:
    """Horizontal bars per step: reached (light) with committed (dark) over it."""
    top = max((s.reached for s in result.steps), default=0) or 1
    label_w, height = 150, ROW * len(result.steps) + 8
    rows = []
    for i, s in enumerate(result.steps):
        y = 4 + i * ROW
        reached = BAR_WIDTH * s.reached / top
        committed = BAR_WIDTH * s.committed / top
        rows.append(
            f'<text x="{label_w - 8}" y="{y + 16}" text-anchor="end">{escape(s.step)}</text>'
            f'<rect x="{label_w}" y="{y}" width="{reached:.1f}" height="20" fill="#9ecae1"/>'
            f'<rect x="{label_w}" y="{y}" width="{committed:.1f}" height="20" fill="#3182bd"/>'
            f'<text x="{label_w + BAR_WIDTH + 8}" y="{y + 16}">{s.committed}/{s.reached}'
            f" · dropped {s.dropped} · {duration(s.median_to_commit)}</text>"
        )
    width = label_w + BAR_WIDTH + 230
    return (
        f'<svg class="funnel" xmlns="http://www.w3.org/2000/svg" width="{width}" '
        f'height="{height}" font-family="sans-serif" font-size="13" role="img" '
        f'aria-label="funnel of {escape(result.segment.flow)}">{"".join(rows)}</svg>'
    )


def graph_svg(flow: Flow) -> str:
    """The steps top to bottom, an arrow per possible move (from the compiled transitions);
    moves to the next step go straight down, others arc on the right."""
    index = {s.id: i for i, s in enumerate(flow.steps)}
    edges = sorted(
        {(t["source"], t["dest"]) for t in machine_config(flow)["transitions"]},
        key=lambda e: (index[e[0]], index[e[1]]),
    )
    box_w, box_h, gap, left = 200, 30, 22, 10
    step_y = {s.id: 10 + i * (box_h + gap) for i, s in enumerate(flow.steps)}
    parts = [
        '<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto"><path d="M0,0 L10,5 L0,10 z" fill="#555"/></marker></defs>'
    ]
    for s in flow.steps:
        y = step_y[s.id]
        parts.append(
            f'<rect x="{left}" y="{y}" width="{box_w}" height="{box_h}" rx="6" fill="#f4f4f4" '
            f'stroke="#888"/><text x="{left + 10}" y="{y + 20}">{escape(s.id)} '
            f'<tspan fill="#777">({s.kind.value})</tspan></text>'
        )
    for n, (source, dest) in enumerate(edges):
        y1, y2 = step_y[source], step_y[dest]
        if index[dest] == index[source] + 1:
            x = left + box_w / 2
            parts.append(
                f'<line x1="{x}" y1="{y1 + box_h}" x2="{x}" y2="{y2}" stroke="#555" '
                'marker-end="url(#arrow)"/>'
            )
        else:
            x = left + box_w
            bend = x + 30 + 14 * (n % 8)
            a, b = y1 + box_h / 2, y2 + box_h / 2
            parts.append(
                f'<path d="M{x},{a} C{bend},{a} {bend},{b} {x},{b}" fill="none" stroke="#555" '
                'marker-end="url(#arrow)"/>'
            )
    height = 20 + len(flow.steps) * (box_h + gap)
    return (
        f'<svg class="graph" xmlns="http://www.w3.org/2000/svg" width="{left + box_w + 160}" '
        f'height="{height}" font-family="sans-serif" font-size="13" role="img" '
        f'aria-label="steps of {escape(flow.name)}">{"".join(parts)}</svg>'
    )


def flow_section(stats: FlowStats, flow: Flow) -> str:
    f = stats.funnel
    shown = [o for o in OUTCOME_ORDER if any(o in v.outcomes for v in stats.variants)]
    variants = "".join(
        f"<tr><td>{escape(v.step)}</td><td>{escape(v.variant)}</td><td>{v.reached}</td>"
        f"<td>{100 * v.commit_rate:.1f}%</td><td>{p_value(v.commit_p)}</td>"
        f"<td>{100 * v.convert_rate:.1f}%</td><td>{p_value(v.convert_p)}</td>"
        + "".join(f"<td>{v.outcomes.get(o, 0)}</td>" for o in shown)
        + "</tr>"
        for v in stats.variants
    )
    ab = (
        "<h3>A/B variants</h3><table><tr><th>step</th><th>variant</th><th>reached</th>"
        "<th>commit</th><th>p</th><th>convert</th><th>p</th>"
        + "".join(f"<th>{escape(o)}</th>" for o in shown)
        + "</tr>"
        + variants
        + "</table>"
        if variants
        else ""
    )
    outcomes = "".join(
        f'<tr class="outcome"><td>{escape(o)}</td><td>{n}</td>'
        f"<td>{'success' if o in f.success else ''}</td></tr>"
        for o, n in f.outcomes.items()
    )
    outcome_table = (
        f"<table><tr><th>outcome</th><th>prospects</th><th></th></tr>{outcomes}</table>"
        if outcomes
        else "<p>No outcomes yet.</p>"
    )
    claim = f" · median time to claim {duration(f.median_to_claim)}" if f.median_to_claim else ""
    return (
        f'<section id="flow-{escape(flow.name)}"><h2>{escape(flow.title or flow.name)} '
        f"<small>{escape(flow.name)} v{flow.version}</small></h2>"
        f'<p class="summary">{f.started} started · {f.completed} completed · '
        f"{f.converted} converted · conversion {100 * f.conversion:.1f}%{claim}</p>"
        f"<h3>Outcomes</h3>{outcome_table}"
        f'<div class="row"><div><h3>Funnel</h3>{funnel_svg(f)}<p class="legend">dark: committed, '
        "light: reached; then committed/reached · dropped · median time to commit</p></div>"
        f"<div><h3>Steps</h3>{graph_svg(flow)}</div></div>{ab}</section>"
    )


STYLE = """
body{font-family:sans-serif;margin:24px;color:#222}
h1{margin-top:0} small,.legend{color:#777;font-weight:normal} .legend{font-size:12px}
section{border-top:1px solid #ddd;padding-top:8px;margin-bottom:24px}
.row{display:flex;gap:32px;flex-wrap:wrap}
table{border-collapse:collapse} td,th{padding:3px 10px;border-bottom:1px solid #eee;text-align:left}
"""


def render_page(
    sections: list[str],
    recent: list[DomainEvent],
    now: datetime,
    sales: Sequence[DomainEvent] = (),
    dead: int = 0,
) -> str:
    rows = "".join(
        f"<tr><td>{escape(e.at)}</td><td>{escape(e.conversation)}</td><td>{escape(e.flow)} "
        f"v{e.version}</td><td>{escape(e.data.get('source', '')) or '-'}</td>"
        f"<td>{escape(e.data.get('outcome', '')) or '-'}</td></tr>"
        for e in recent
    )
    completions = (
        "<table><tr><th>at</th><th>prospect</th><th>flow</th><th>source</th><th>outcome</th></tr>"
        f"{rows}</table>"
        if rows
        else "<p>No completions yet.</p>"
    )
    actions = "".join(
        f'<tr class="sales"><td>{escape(e.at)}</td><td>{escape(e.conversation)}</td>'
        f"<td>{escape(SALES_ACTIONS[e.name])}</td><td>{escape(e.data.get('by', ''))}</td>"
        f"<td>{escape(e.flow)} v{e.version}</td></tr>"
        for e in sales
    )
    sales_table = (
        "<table><tr><th>at</th><th>prospect</th><th>action</th><th>by</th><th>flow</th></tr>"
        f"{actions}</table>"
        if actions
        else "<p>No sales actions yet.</p>"
    )
    body = "".join(sections) or "<p>No flow is published yet.</p>"
    undelivered = (
        f"<p><strong>{dead}</strong> message(s) or alert(s) given up on after a day of failed "
        "delivery: <code>ladder outbox list</code> shows them, <code>ladder outbox retry "
        "--all</code> sends them again.</p>"
        if dead
        else "<p>Nothing given up on: every message and alert was delivered or is retried.</p>"
    )
    return (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        f"<title>ladderbot dashboard</title><style>{STYLE}</style></head><body>"
        f"<h1>ladderbot</h1><p>as of {now.astimezone(UTC):%Y-%m-%d %H:%M} UTC</p>{body}"
        f'<section id="recent"><h2>Recent completions</h2>{completions}</section>'
        f'<section id="sales"><h2>Sales actions</h2>{sales_table}</section>'
        f'<section id="outbox"><h2>Dead letters</h2>{undelivered}</section></body></html>'
    )
