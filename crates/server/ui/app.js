// hedui web UI: one page, no build step, served from the binary. Every value from the server is
// put into the page as text (never as HTML), and the token lives in this tab's sessionStorage.
"use strict";

const STATES = {
  new: "新建 new", assigned: "已分派 assigned", verifying: "核查中 verifying",
  confirmed: "已确认 confirmed", rejected: "已排除 rejected", recovered: "已追回 recovered",
  closed: "已办结 closed",
};
const ACTION_LABELS = {
  assigned: "分派 assign", verifying: "开始核查 start verifying", confirmed: "确认违规 confirm",
  rejected: "排除 reject", recovered: "登记追回 record recovery", closed: "办结 close",
};

// ---- helpers -------------------------------------------------------------------------------
function h(tag, attrs, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat(Infinity)) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}
const $main = () => document.getElementById("main");
// Replace an element's content; null and false children are skipped, as in h().
function fill(el, ...nodes) { el.replaceChildren(...nodes.flat().filter(n => n !== null && n !== undefined && n !== false)); }
function show(...nodes) { fill($main(), ...nodes); }
function yuan(cents) {
  if (cents === null || cents === undefined) return "";
  const neg = cents < 0; cents = Math.abs(cents);
  const int = Math.floor(cents / 100).toString().replace(/\B(?=(\d{3})+(?!\d))/g, ",");
  return (neg ? "-" : "") + "¥" + int + "." + String(cents % 100).padStart(2, "0");
}
function day(ts) { return ts ? String(ts).slice(0, 10) : ""; }
function errorBox(e) { return h("div", { class: "error", role: "alert" }, String(e.message || e)); }

const session = {
  get token() { return sessionStorage.getItem("hedui.token"); },
  set token(t) { t ? sessionStorage.setItem("hedui.token", t) : sessionStorage.removeItem("hedui.token"); },
  me: null, workflow: null,
};

async function api(path, opts = {}) {
  const headers = Object.assign({ "Authorization": "Bearer " + session.token }, opts.headers || {});
  if (opts.json !== undefined) { headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(opts.json); }
  const r = await fetch(path, { method: opts.method || "GET", headers, body: opts.body });
  if (r.status === 401) { session.token = null; location.hash = "#/login"; throw new Error("请重新登录 please sign in again"); }
  if (opts.raw) { if (!r.ok) throw new Error((await r.json()).error.message); return r; }
  const body = await r.json().catch(() => ({}));
  if (!r.ok) throw new Error((body.error && body.error.message) || ("HTTP " + r.status));
  return body;
}

function has(...roles) { return !!session.me && session.me.roles.some(r => roles.includes(r)); }

// Pages, with the roles that may open them: the server enforces the same, this only hides links.
const PAGES = [
  { path: "cases", label: "工作台 Worklist", ok: () => ["read", "write"].includes(session.workflow.access) },
  { path: "household", label: "家庭核对 Household", ok: () => has("dibao_reviewer", "admin") },
  { path: "person", label: "单人核查 Person check", ok: () => has("reviewer", "admin") },
  { path: "dashboard", label: "统计 Dashboard", ok: () => session.workflow.access !== "none" },
  { path: "sql", label: "查询 SQL", ok: () => has("analyst", "statistician", "auditor", "admin") },
  { path: "data", label: "数据 Data", ok: () => has("admin", "connector", "analyst", "auditor", "statistician") },
];

function renderNav(current) {
  const nav = document.getElementById("nav");
  const who = document.getElementById("who");
  if (!session.me) { nav.replaceChildren(); who.replaceChildren(); return; }
  nav.replaceChildren(...PAGES.filter(p => p.ok()).map(p =>
    h("a", { href: "#/" + p.path, class: current === p.path ? "on" : null, "data-page": p.path }, p.label)));
  who.replaceChildren(
    h("span", { id: "whoami" }, session.me.subject + " · " + session.me.roles.join(",") + (session.me.region ? " · " + session.me.region : "")),
    h("button", { class: "plain", onclick: () => { session.token = null; session.me = null; location.hash = "#/login"; } }, "退出 sign out"));
}

// ---- sign-in -------------------------------------------------------------------------------
function loginPage(message) {
  const input = h("textarea", { id: "token", rows: 4, cols: 60, placeholder: "粘贴令牌 paste the token from your administrator (hedui token)" });
  const out = h("div");
  show(h("div", { class: "card narrow" },
    h("h1", {}, "登录 Sign in"),
    h("p", { class: "muted" }, "使用单位身份系统签发的令牌登录。Sign in with the token your identity provider issued."),
    message ? errorBox(message) : null,
    h("form", { id: "login", onsubmit: async (ev) => {
      ev.preventDefault();
      session.token = input.value.trim();
      try { await loadMe(); location.hash = "#/"; route(); } catch (e) { out.replaceChildren(errorBox(e)); }
    } }, input, h("div", {}, h("button", { type: "submit" }, "登录 Sign in"))), out));
}

async function loadMe() {
  session.me = await api("/api/v1/whoami");
  session.workflow = await api("/api/v1/workflow");
}

// ---- worklist ------------------------------------------------------------------------------
const filters = { rule: "", state: "new,assigned,verifying,confirmed", region: "", assignee: "", min_amount: "", min_level: "", overdue: false, offset: 0 };

async function casesPage() {
  const wf = session.workflow;
  const f = (name, input) => h("label", {}, name, input);
  const rule = h("select", { id: "f-rule" }, h("option", { value: "" }, "全部规则 all rules"),
    wf.rules.map(r => h("option", { value: r.id, selected: filters.rule === r.id }, r.id + " " + r.title_zh)));
  const state = h("select", { id: "f-state" },
    [["new,assigned,verifying,confirmed", "未办结 open"], ["", "全部 all"], ...Object.entries(STATES)].map(([v, t]) =>
      h("option", { value: v, selected: filters.state === v }, t)));
  const region = h("input", { id: "f-region", size: 8, value: filters.region, placeholder: "4205" });
  const assignee = h("input", { id: "f-assignee", size: 14, value: filters.assignee });
  const minAmount = h("input", { id: "f-min", size: 8, value: filters.min_amount, placeholder: "元" });
  const overdue = h("input", { id: "f-overdue", type: "checkbox", checked: filters.overdue });
  const level = h("select", { id: "f-level" }, h("option", { value: "" }, "全部 all"),
    wf.levels.slice(1).map((l, i) => h("option", { value: String(i + 1), selected: filters.min_level === String(i + 1) }, "≥ " + l.text)));
  const table = h("div", { id: "worklist" }, h("p", { class: "muted" }, "加载中…"));
  const apply = (ev) => {
    if (ev) ev.preventDefault();
    Object.assign(filters, { rule: rule.value, state: state.value, region: region.value.trim(), assignee: assignee.value.trim(), min_amount: minAmount.value.trim(), overdue: overdue.checked, min_level: level.value, offset: 0 });
    loadCases(table);
  };
  show(h("h1", {}, "案件工作台 Worklist"),
    h("form", { class: "card filters", onsubmit: apply },
      f("规则 rule", rule), f("状态 state", state), f("区划 region", region), f("承办人 assignee", assignee),
      f("金额≥ amount", minAmount), f("督办 escalated", level), h("label", {}, "仅逾期 overdue", overdue),
      h("button", { type: "submit", id: "f-apply" }, "筛选 filter"),
      wf.access === "write" ? h("button", { type: "button", class: "plain", id: "dispatch", onclick: async () => {
        try { const r = await api("/api/v1/cases/dispatch", { method: "POST" }); alert("已按属地分派 " + r.assigned + " 件 dispatched"); loadCases(table); }
        catch (e) { table.prepend(errorBox(e)); }
      } }, "按属地分派新案件 dispatch new by region") : null),
    table);
  loadCases(table);
}

async function loadCases(box) {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(filters)) if (v !== "" && v !== false) q.set(k, String(v));
  q.set("limit", "50");
  try {
    const page = await api("/api/v1/cases?" + q);
    const rows = page.cases.map(c => h("tr", { class: c.overdue ? "overdue" : null, "data-case": c.id },
      h("td", {}, h("a", { href: "#/case/" + encodeURIComponent(c.id) }, c.id)),
      h("td", {}, c.rule_id), h("td", {}, c.subject), h("td", {}, c.region || ""),
      h("td", {}, h("span", { class: "badge" }, STATES[c.state] || c.state)),
      h("td", { class: "num" }, yuan(c.amount_cents)), h("td", {}, c.assignee || ""),
      h("td", {}, day(c.due_at), " ", c.overdue ? h("span", { class: "badge red" }, "逾期 overdue") : null,
        c.level > 0 ? h("span", { class: "badge amber", title: session.workflow.levels[c.level].text }, "督办 L" + c.level) : null)));
    const pager = h("div", { class: "no-print" },
      h("span", { class: "muted" }, `共 ${page.total} 件 cases; ${filters.offset + 1}–${filters.offset + page.cases.length} `),
      filters.offset > 0 ? h("button", { class: "plain", onclick: () => { filters.offset -= 50; loadCases(box); } }, "上一页 prev") : null,
      filters.offset + 50 < page.total ? h("button", { class: "plain", onclick: () => { filters.offset += 50; loadCases(box); } }, "下一页 next") : null);
    box.replaceChildren(h("table", { id: "cases-table" },
      h("thead", {}, h("tr", {}, ["编号 case", "规则 rule", "对象 subject", "区划 region", "状态 state", "金额 amount", "承办 assignee", "期限 due"].map(t => h("th", {}, t)))),
      h("tbody", {}, rows)), pager);
  } catch (e) { box.replaceChildren(errorBox(e)); }
}

// ---- one case ------------------------------------------------------------------------------
const HIDDEN = new Set(["_batch", "_row", "_source", "_sheet", "_ingested_at"]);

function evidenceCards(evidence) {
  const groups = new Map();
  for (const row of evidence || []) {
    if (!row) continue;
    if (!groups.has(row.dataset)) groups.set(row.dataset, []);
    groups.get(row.dataset).push(row);
  }
  return h("div", { class: "evidence", id: "evidence" }, [...groups.entries()].map(([dataset, rows]) =>
    h("div", { class: "card", "data-dataset": dataset },
      h("h3", {}, (session.workflow.dataset_titles || {})[dataset] || dataset, " ", h("span", { class: "muted" }, dataset)),
      h("div", { class: "muted kv" }, "来源 source: ", rows[0].source_id, " · 截至 as of ", rows[0].as_of || "?"),
      rows.map(r => h("table", { class: "kv" },
        h("tr", {}, h("td", {}, "文件 file"), h("td", {}, r.source + " #" + r.row)),
        Object.entries(r.values).filter(([k]) => !HIDDEN.has(k) && !k.endsWith("_key")).map(([k, v]) =>
          h("tr", {}, h("td", {}, k), h("td", {}, v === null ? "" : String(v)))))))));
}

async function casePage(id) {
  show(h("p", { class: "muted" }, "加载中…"));
  let c;
  try { c = await api("/api/v1/cases/" + encodeURIComponent(id)); } catch (e) { show(errorBox(e)); return; }
  const wf = session.workflow;
  const msg = h("div", { id: "case-msg" });
  const actions = h("div", { class: "card actions no-print", id: "actions" }, h("h2", {}, "办理 Actions"));
  if (c.may_change && (wf.moves[c.state] || []).length + 1 > 0) {
    const act = async (body, path) => {
      try { await api("/api/v1/cases/" + encodeURIComponent(id) + path, { method: "POST", json: body }); casePage(id); }
      catch (e) { msg.replaceChildren(errorBox(e)); }
    };
    if (["new", "assigned", "verifying", "confirmed"].includes(c.state)) {
      const who = h("input", { name: "assignee", placeholder: "留空按属地 blank: by region" });
      const note = h("input", { name: "note", placeholder: "意见 note" });
      actions.append(h("form", { id: "form-assign", onsubmit: (ev) => { ev.preventDefault(); act({ assignee: who.value || null, note: note.value || null }, "/assign"); } },
        h("b", {}, "分派 Assign"), who, note, h("button", { type: "submit" }, "分派 assign")));
    }
    for (const to of wf.moves[c.state] || []) {
      if (to === "assigned") continue;
      const note = h("textarea", { name: "note", rows: 2, placeholder: "办理意见（必填） note, required", required: true });
      const extra = [];
      const reason = h("select", { name: "reason" }, wf.reject_reasons.map(r => h("option", { value: r.code }, r.text)));
      const amount = h("input", { name: "amount", placeholder: "金额（元） amount in yuan", value: to === "confirmed" && c.amount_cents != null ? (c.amount_cents / 100).toFixed(2) : (to === "recovered" && c.confirmed_cents != null ? (c.confirmed_cents / 100).toFixed(2) : "") });
      const on = h("input", { name: "on", type: "date", value: new Date().toISOString().slice(0, 10) });
      if (to === "rejected") extra.push(h("label", {}, "排除原因 reason ", reason));
      if (to === "confirmed") extra.push(h("label", {}, "应追回金额 amount to recover ", amount));
      if (to === "recovered") extra.push(h("label", {}, "追回金额 amount ", amount), h("label", {}, "追回日期 date ", on));
      actions.append(h("form", { id: "form-" + to, onsubmit: (ev) => {
        ev.preventDefault();
        act({ to, note: note.value, reason: to === "rejected" ? reason.value : null, amount: ["confirmed", "recovered"].includes(to) ? amount.value : null, on: to === "recovered" ? on.value : null }, "/transition");
      } }, h("b", {}, ACTION_LABELS[to] || to), ...extra, note, h("button", { type: "submit" }, ACTION_LABELS[to] || to)));
    }
  } else {
    actions.append(h("p", { class: "muted" }, "只读 read only"));
  }
  const info = h("table", { class: "kv", id: "case-info" },
    [["状态 state", h("span", { class: "badge blue", id: "case-state" }, STATES[c.state] || c.state)],
     ["对象 subject", c.subject], ["区划 region", c.region || ""], ["月份 months", (c.months || []).join(" ")],
     ["金额 amount", yuan(c.amount_cents)], ["承办 assignee", c.assignee || ""],
     ["期限 due", [day(c.due_at), c.overdue ? h("span", { class: "badge red" }, " 逾期 overdue") : null]],
     ["督办层级 level", c.level_name], ["应追回 to recover", yuan(c.confirmed_cents)],
     ["已追回 recovered", c.recovered_cents != null ? yuan(c.recovered_cents) + " (" + (c.recovered_on || "") + ")" : ""],
     ["排除原因 reason", c.reject_reason || ""]].map(([k, v]) => h("tr", {}, h("td", {}, k), h("td", {}, v))));
  show(
    h("p", { class: "no-print" }, h("a", { href: "#/cases" }, "← 返回工作台 back to the worklist")),
    h("h1", {}, c.rule.id + " " + (c.rule.title_zh || ""), " · ", c.id),
    h("p", { class: "muted" }, c.rule.description || "", " ", c.rule.legal_basis ? "依据 " + c.rule.legal_basis : ""),
    msg,
    h("div", { class: "grid2" }, h("div", { class: "card" }, info), actions),
    h("h2", {}, "证据 Evidence（各部门来源并列 side by side）"), evidenceCards(c.evidence),
    h("h2", {}, "办理记录 History"),
    h("ol", { class: "history card", id: "history" }, c.history.map(e => h("li", {},
      day(e.at), " ", e.at.slice(11, 16), " · ", e.actor, " · ", e.from_state ? (STATES[e.from_state] || e.from_state) + " → " : "", STATES[e.to_state] || e.to_state, " · ", e.note))));
}

// ---- household verification ----------------------------------------------------------------
function householdPage() {
  const members = h("textarea", { id: "members", rows: 5, cols: 40, placeholder: "每行一个身份证号，申请人在首行 one ID per line, applicant first" });
  const auth = h("input", { id: "authorisation", size: 30, placeholder: "如 SQ-2026-000123" });
  const out = h("div", { id: "household-msg" });
  show(h("h1", {}, "居民家庭经济状况核对 Household verification"),
    h("form", { class: "card", id: "household-form", onsubmit: async (ev) => {
      ev.preventDefault();
      out.replaceChildren(h("p", { class: "muted" }, "核对中 verifying…"));
      try {
        const r = await api("/api/v1/households/verify", { method: "POST", json: {
          members: members.value.split(/[\s,，;；]+/).filter(Boolean), authorisation: auth.value } });
        location.hash = "#/report/" + encodeURIComponent(r.id);
      } catch (e) { out.replaceChildren(errorBox(e)); }
    } },
      h("p", {}, h("label", {}, "家庭成员身份证号 members' ID numbers", h("br"), members)),
      h("p", {}, h("label", {}, "授权书编号 authorisation reference (required) ", auth)),
      h("p", { class: "muted" }, "未经申请人书面授权不得核对。Verification needs the applicant's signed authorisation; the reference is recorded in the audit log."),
      h("button", { type: "submit", id: "verify" }, "核对 verify")), out);
}

async function reportPage(id) {
  show(h("p", { class: "muted" }, "加载中…"));
  let r;
  try { r = await api("/api/v1/households/verifications/" + encodeURIComponent(id)); } catch (e) { show(errorBox(e)); return; }
  const srcTitle = Object.fromEntries(r.sources.map(s => [s.dataset, s.title_zh]));
  const itemRows = (items) => items.map(i => h("tr", { class: i.disqualifies ? "disq" : null },
    h("td", {}, i.label), h("td", { class: "nowrap" }, i.month || ""), h("td", { class: "num" }, yuan(i.amount_cents)),
    h("td", {}, srcTitle[i.row.dataset] || i.row.dataset), h("td", { class: "nowrap" }, i.row.as_of || ""), h("td", {}, i.disqualifies || "")));
  const head = h("tr", {}, ["项目 item", "月份 month", "金额 amount", "来源 source", "截至 as of", "不符合原因 disqualifies"].map(t => h("th", {}, t)));
  show(
    h("p", { class: "no-print" }, h("a", { href: "#/household" }, "← 新的核对 new verification"), " ",
      h("button", { id: "print", onclick: () => window.print() }, "打印 print")),
    h("div", { class: "report", id: "report" },
      h("h1", {}, "居民家庭经济状况核对报告"),
      h("table", { class: "meta" },
        h("tr", {}, h("td", {}, "报告编号 report"), h("td", { id: "report-id" }, r.id), h("td", {}, "核对日期 date"), h("td", {}, day(r.at))),
        h("tr", {}, h("td", {}, "授权书编号 authorisation"), h("td", { id: "report-auth" }, r.authorisation), h("td", {}, "核对人 reviewer"), h("td", {}, r.reviewer)),
        h("tr", {}, h("td", {}, "收入计算期 income months"), h("td", {}, r.window[0] + " 至 " + r.window[r.window.length - 1]), h("td", {}, "数据版本 lake version"), h("td", {}, String(r.lake_version)))),
      h("p", { class: "verdict " + r.verdict, id: "verdict" }, "核对结论 verdict：", r.verdict_zh),
      r.reasons.length ? h("ul", { id: "reasons" }, r.reasons.map(x => h("li", {}, x))) : null,
      h("table", { id: "income-summary" },
        h("tr", {}, h("th", {}, "家庭人口 members"), h("th", { class: "num" }, "家庭月收入 monthly income"), h("th", { class: "num" }, "人均月收入 per capita"), h("th", { class: "num" }, "低保标准 line")),
        h("tr", {}, h("td", {}, String(r.size)), h("td", { class: "num" }, yuan(r.monthly_income_cents)), h("td", { class: "num", id: "per-capita" }, yuan(r.per_capita_cents)), h("td", { class: "num" }, yuan(r.line_cents)))),
      r.members.map(m => h("section", { class: "member" },
        h("h2", {}, (m.name || "（户籍未登记）") + " " + m.person_id, " · 月均收入 ", yuan(m.monthly_income_cents)),
        m.notes.length ? h("p", { class: "muted" }, m.notes.join("；")) : null,
        m.irregular && m.irregular.length ? h("p", { class: "error" }, "未计入家庭人口 not counted: ", m.irregular.join("；")) : null,
        h("table", {}, h("thead", {}, head.cloneNode(true)), h("tbody", {},
          m.income.length + m.assets.length ? [itemRows(m.income), itemRows(m.assets)] : h("tr", {}, h("td", { colspan: 6, class: "muted" }, "各来源均未发现收入或财产 nothing found in any source")))))),
      h("h2", {}, "数据来源及截至日期 Sources and as-of dates"),
      h("table", { id: "sources" }, h("tr", {}, ["来源 source", "部门 department", "截至 as of", "批次 batches"].map(t => h("th", {}, t))),
        r.sources.map(s => h("tr", {}, h("td", {}, s.title_zh + " (" + s.dataset + ")"), h("td", {}, s.department), h("td", {}, s.as_of || "—"), h("td", {}, String(s.batches))))),
      h("p", { class: "muted" }, "本报告依据各部门共享数据生成，为入户调查和审核确认提供依据，不作为最终决定。This report is a lead for the home visit and review, not a decision."),
      h("div", { class: "sign" }, h("span", {}, "核对人签字 reviewer: ________________"), h("span", {}, "审核人签字 approver: ________________"), h("span", {}, "日期 date: ____________"))));
}

// ---- single-person check at application time -----------------------------------------------
function personPage() {
  const id = h("input", { id: "person-id", size: 22, placeholder: "身份证号 resident ID" });
  const purpose = h("input", { id: "person-purpose", size: 24, placeholder: "申请或案件编号 application / case no." });
  const out = h("div", { id: "person-out" });
  show(h("h1", {}, "单人申请核查 Single-person check"),
    h("form", { class: "card", id: "person-form", onsubmit: async (ev) => {
      ev.preventDefault();
      out.replaceChildren(h("p", { class: "muted" }, "核查中 checking…"));
      try {
        const q = new URLSearchParams({ purpose: purpose.value.trim() });
        const r = await api("/api/v1/persons/" + encodeURIComponent(id.value.trim()) + "/check?" + q);
        fill(out, h("p", { class: r.hits ? "error" : "ok", id: "person-verdict" },
          r.hits ? `发现 ${r.hits} 条线索 ${r.hits} lead(s) found` : "各规则均未命中 no rule matched",
          ` · 数据版本 lake version ${r.lake_version} · ${r.ms} ms`),
          h("table", { id: "person-table" },
            h("tr", {}, ["规则 rule", "名称 title", "命中 hit", "月份 months", "金额 amount"].map(t => h("th", {}, t))),
            r.rules.map(x => h("tr", { class: x.hit ? "overdue" : null }, h("td", {}, x.rule), h("td", {}, x.title_zh),
              h("td", {}, x.hit ? h("span", { class: "badge red" }, "是 yes") : "否 no"),
              h("td", {}, (x.months || []).join(" ")), h("td", { class: "num" }, x.amount || "")))));
      } catch (e) { out.replaceChildren(errorBox(e)); }
    } },
      h("p", {}, h("label", {}, "身份证号 resident ID ", id), " ", h("label", {}, "用途 purpose (required) ", purpose), " ",
        h("button", { type: "submit", id: "person-check" }, "核查 check")),
      h("p", { class: "muted" }, "受理申请时核查本人是否存在死亡、服刑、重复参保、重复领取等情形；须注明用途，记入审计日志。Checks every person rule for one applicant; the purpose is recorded in the audit log.")),
    out);
}

// ---- SQL console ---------------------------------------------------------------------------
function sqlPage() {
  const text = h("textarea", { id: "sql-text", spellcheck: "false" }, "SELECT rule_id, count(*) FROM (SELECT 'R1' AS rule_id) t GROUP BY rule_id");
  text.value = sessionStorage.getItem("hedui.sql") || "SELECT dataset, count(*) AS rows FROM quarantine GROUP BY dataset ORDER BY rows DESC";
  const purpose = h("input", { id: "sql-purpose", size: 30, placeholder: "用途 purpose (case or authorisation reference)" });
  const out = h("div", { id: "sql-out", class: "scroll" });
  const run = async (format) => {
    sessionStorage.setItem("hedui.sql", text.value);
    const body = { sql: text.value, format, purpose: purpose.value.trim() || null };
    const headers = {};
    try {
      if (format === "csv") {
        const r = await api("/api/v1/sql", { method: "POST", json: body, headers, raw: true });
        const blob = await r.blob();
        const a = h("a", { href: URL.createObjectURL(blob), download: "hedui-query.csv" });
        document.body.append(a); a.click(); a.remove();
        return;
      }
      out.replaceChildren(h("p", { class: "muted" }, "查询中 running…"));
      const r = await api("/api/v1/sql", { method: "POST", json: body, headers });
      const cols = r.columns.map(c => c.name);
      fill(out,
        r.error ? errorBox(r.error) : null,
        h("p", { class: "muted" }, `${r.rows.length} 行 rows` + (r.truncated ? "（已截断，达到行数上限 truncated at the row limit）" : "")),
        h("table", { id: "sql-table" }, h("tr", {}, cols.map(c => h("th", {}, c))),
          r.rows.map(row => h("tr", {}, cols.map(c => h("td", {}, row[c] === null ? "" : String(row[c])))))));
    } catch (e) { out.replaceChildren(errorBox(e)); }
  };
  show(h("h1", {}, "SQL 查询 Console"),
    h("div", { class: "card sql" }, text, h("p", {}, purpose, " ",
      h("button", { id: "sql-run", onclick: () => run("json") }, "运行 run"), " ",
      h("button", { class: "plain", id: "sql-csv", onclick: () => run("csv") }, "下载 CSV download")),
      h("p", { class: "muted" }, "只读；个人信息按策略脱敏；每次查询均记入审计日志。Read-only; personal columns masked per policy; every query is audited.")),
    out);
}

// ---- data page -----------------------------------------------------------------------------
async function dataPage() {
  show(h("p", { class: "muted" }, "加载中…"));
  let lake;
  try { lake = await api("/api/v1/lake"); } catch (e) { show(errorBox(e)); return; }
  const q = h("div", { id: "quarantine", class: "scroll" }, h("p", { class: "muted" }, "加载中…"));
  show(h("h1", {}, "数据 Data · 版本 version " + lake.lake_version),
    h("table", { id: "datasets-table" },
      h("tr", {}, ["数据集 dataset", "部门 department", "来源 sources", "行数 rows", "批次 batches", "最近批次 last batch", "截至 as of"].map(t => h("th", {}, t))),
      lake.datasets.map(d => h("tr", {}, h("td", {}, d.title_zh, " ", h("span", { class: "muted" }, d.name)), h("td", {}, d.department || ""),
        h("td", {}, d.sources.join(", ")), h("td", { class: "num" }, d.rows.toLocaleString()), h("td", { class: "num" }, String(d.batches)),
        h("td", {}, day(d.last_committed_at), " ", h("span", { class: "muted" }, d.last_batch)), h("td", {}, d.as_of || "—")))),
    h("h2", {}, "数据源 Sources（更新情况 freshness）"),
    h("table", { id: "sources-table" },
      h("tr", {}, ["数据源 source", "方式 kind", "最近成功 last success", "截至 as of", "滞后 lag", "预期周期 cadence", "状态 status"].map(t => h("th", {}, t))),
      (lake.sources || []).map(s => h("tr", {}, h("td", {}, s.source), h("td", {}, s.live ? "接口/数据库拉取 pulled" : "文件交付 delivered"),
        h("td", {}, s.last_success_at ? day(s.last_success_at) : "—"), h("td", {}, s.as_of || "—"),
        h("td", { class: "num" }, s.lag_days == null ? "—" : s.lag_days + " 天"),
        h("td", {}, s.cadence_secs ? (s.cadence_secs % 86400 === 0 ? s.cadence_secs / 86400 + " 天" : Math.ceil(s.cadence_secs / 3600) + " 小时") : "未设定"),
        h("td", {}, s.stale ? h("span", { class: "badge red", title: "超过预期更新周期未更新 (later than its cadence)" }, "已过期 stale") : h("span", { class: "badge green" }, "正常 fresh"),
          s.failures ? h("span", { class: "badge red", title: s.last_error || "" }, " 连续失败 " + s.failures + " 次") : null,
          s.running ? h("span", { class: "badge amber" }, " 拉取中 pulling") : null)))),
    h("h2", {}, "交付文件 Delivered files（读入 = 入湖 + 隔离 + 重复 read = loaded + quarantined + duplicate）"),
    h("div", { class: "scroll" }, h("table", {},
      h("tr", {}, ["文件 file", "来源 source", "读入 read", "入湖 loaded", "隔离 quarantined", "重复 duplicate", "截至 as of"].map(t => h("th", {}, t))),
      lake.batches.map(b => h("tr", {}, h("td", {}, b.file), h("td", {}, b.source), h("td", { class: "num" }, String(b.rows_read)), h("td", { class: "num" }, String(b.rows_loaded)),
        h("td", { class: "num" }, b.rows_quarantined ? h("span", { class: "badge amber" }, String(b.rows_quarantined)) : "0"), h("td", { class: "num" }, String(b.rows_duplicate)), h("td", {}, b.as_of || "", b.as_of_basis === "modified" ? h("span", { class: "badge amber", title: "截至日期取自文件修改时间，请在映射中写明 as_of (taken from the file's modification time)" }, " 推测 guessed") : null))))),
    h("h2", {}, "隔离区 Quarantine（原因 reasons）"), q);
  try {
    const r = await api("/api/v1/sql", { method: "POST", json: { sql: "SELECT dataset, source_file, source_row, coalesce(reasons, reason_codes) AS reasons FROM quarantine ORDER BY source_file, source_row LIMIT 500", format: "json" } });
    q.replaceChildren(h("table", { id: "quarantine-table" }, h("tr", {}, ["数据集 dataset", "文件 file", "行 row", "原因 reasons"].map(t => h("th", {}, t))),
      r.rows.map(x => h("tr", {}, h("td", {}, x.dataset), h("td", {}, x.source_file), h("td", { class: "num" }, String(x.source_row)), h("td", {}, x.reasons)))));
  } catch (e) { q.replaceChildren(errorBox(e)); }
}

// ---- dashboard -----------------------------------------------------------------------------
const PALETTE = ["#1565c0", "#c62828", "#2e7d32", "#f0a500", "#6a1b9a", "#00838f", "#5d4037", "#546e7a"];
const SVG = "http://www.w3.org/2000/svg";
function s(tag, attrs, text) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (text !== undefined) el.textContent = text;
  return el;
}
// Horizontal bars: [{label, value, text}].
function barChart(title, bars, id) {
  const w = 600, rowH = 24, left = 170, height = Math.max(1, bars.length) * rowH + 10;
  const max = Math.max(1, ...bars.map(b => b.value));
  const svg = s("svg", { viewBox: `0 0 ${w} ${height}`, role: "img", "aria-label": title });
  bars.forEach((b, i) => {
    const y = 5 + i * rowH, bw = Math.max(1, (w - left - 110) * b.value / max);
    svg.append(s("text", { x: left - 6, y: y + 15, "text-anchor": "end", "font-size": 12 }, b.label));
    svg.append(s("rect", { x: left, y: y + 3, width: bw, height: rowH - 8, fill: b.color || PALETTE[0] }));
    svg.append(s("text", { x: left + bw + 4, y: y + 15, "font-size": 11 }, b.text));
  });
  if (!bars.length) svg.append(s("text", { x: 10, y: 20, "font-size": 12 }, "暂无数据 no data"));
  return h("div", { class: "chart", id }, h("h2", {}, title), svg);
}
async function dashboardPage() {
  show(h("p", { class: "muted" }, "加载中…"));
  let st;
  try { st = await api("/api/v1/cases/stats"); } catch (e) { show(errorBox(e)); return; }
  const perRule = new Map();
  const perDistrict = new Map();
  for (const r of st.by_rule_region) {
    const a = perRule.get(r.rule) || { cases: 0, amount: 0, recovered: 0 };
    a.cases += r.cases; a.amount += r.amount_cents; a.recovered += r.recovered_cents; perRule.set(r.rule, a);
    const key = r.region || "未知 unknown";
    const d = perDistrict.get(key) || { cases: 0, amount: 0 };
    d.cases += r.cases; d.amount += r.amount_cents; perDistrict.set(key, d);
  }
  const rules = [...perRule.keys()].sort();
  const color = (rule) => PALETTE[rules.indexOf(rule) % PALETTE.length];
  const total = [...perRule.values()].reduce((t, a) => ({ cases: t.cases + a.cases, amount: t.amount + a.amount, recovered: t.recovered + a.recovered }), { cases: 0, amount: 0, recovered: 0 });
  show(h("h1", {}, "统计 Dashboard"),
    h("div", { class: "card", id: "totals" }, `案件 ${total.cases} 件 cases · 涉及金额 ${yuan(total.amount)} found · 已追回 ${yuan(total.recovered)} recovered · 逾期 ${st.overdue} overdue`),
    st.privacy ? h("p", { class: "muted", id: "privacy-note" },
      `本页数字已加入差分隐私噪声：每格件数误差约 ±${st.privacy.cases_error_95} 件、金额误差约 ±${yuan(st.privacy.amount_error_95_cents)}（95%），少于 ${st.privacy.threshold} 件的格不显示（本次隐去 ${st.privacy.cells_suppressed} 格）；本次消耗隐私预算 ε=${st.privacy.epsilon}，本期已用 ${st.privacy.spent.toFixed(2)} / ${st.privacy.budget}。 ` +
      `Figures carry differential-privacy noise: counts ±${st.privacy.cases_error_95}, amounts ±${yuan(st.privacy.amount_error_95_cents)} (95%); cells under ${st.privacy.threshold} cases are not shown.`) : "",
    h("div", { class: "charts" },
      barChart("各规则线索与金额 Hits and amounts per rule", rules.map(r => ({ label: r, value: perRule.get(r).amount, text: `${perRule.get(r).cases} 件 · ${yuan(perRule.get(r).amount)}`, color: color(r) })), "chart-rules"),
      barChart("各区县 Per district", [...perDistrict.entries()].sort().map(([k, d]) => ({ label: k, value: d.cases, text: `${d.cases} 件 · ${yuan(d.amount)}` })), "chart-districts"),
      barChart("按月（规则）Over time, per rule", st.by_month.map(m => ({ label: m.month + " " + m.rule, value: m.cases, text: `${m.cases} 件 · ${yuan(m.amount_cents)}`, color: color(m.rule) })), "chart-months"),
      barChart("案件状态 Cases by state", st.by_state.map(([state, n]) => ({ label: STATES[state] || state, value: n, text: String(n) })), "chart-states"),
      barChart("追回金额 Recovered per month", st.recovered_by_month.map(([m, c]) => ({ label: m, value: c, text: yuan(c), color: PALETTE[2] })), "chart-recovered"),
      barChart("已追回（规则）Recovered per rule", rules.map(r => ({ label: r, value: perRule.get(r).recovered, text: yuan(perRule.get(r).recovered), color: color(r) })), "chart-recovered-rules")));
}

// ---- routing -------------------------------------------------------------------------------
async function route() {
  // A sign-in link carries the token in the fragment, which never reaches a server log.
  const m = location.hash.match(/^#token=([A-Za-z0-9._-]+)(?:&next=(\/[A-Za-z0-9\/._-]*))?/);
  if (m) { session.token = m[1]; session.me = null; history.replaceState(null, "", location.pathname + "#" + (m[2] || "/")); }
  if (!session.token) { renderNav(); loginPage(); return; }
  if (!session.me) {
    try { await loadMe(); } catch (e) { session.token = null; renderNav(); loginPage(e); return; }
  }
  const [page, arg] = location.hash.replace(/^#\/?/, "").split("/").map(decodeURIComponent);
  const allowed = PAGES.filter(p => p.ok());
  const target = page || (allowed[0] && allowed[0].path) || "none";
  renderNav(target === "case" ? "cases" : target === "report" ? "household" : target);
  switch (target) {
    case "login": loginPage(); break;
    case "cases": casesPage(); break;
    case "case": casePage(arg); break;
    case "household": householdPage(); break;
    case "person": personPage(); break;
    case "report": reportPage(arg); break;
    case "sql": sqlPage(); break;
    case "data": dataPage(); break;
    case "dashboard": dashboardPage(); break;
    default: show(h("div", { class: "card" }, "您的角色没有可用页面。Your role has no pages here."));
  }
}
window.addEventListener("hashchange", route);
document.addEventListener("DOMContentLoaded", route);
