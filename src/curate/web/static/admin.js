// The admin page's script (a file of its own: the Content-Security-Policy allows no inline script).
"use strict";
requireToken();
const $ = (id) => document.getElementById(id);
const fmt = (x) => (x === null || x === undefined ? "–" : Number(x).toFixed(3));
function setStatus(text, kind) { $("status").textContent = text || ""; $("status").className = kind || ""; }
function fill(table, rows) { table.querySelector("tbody").replaceChildren(...rows); }

async function loadProgress() {
  const { status, data } = await api("GET", "/api/admin/progress");
  if (status !== 200) { setStatus(data && data.detail, "error"); return; }
  fill($("rounds"), data.rounds.map((r) => el("tr", { "data-round": r.round },
    el("td", {}, r.round), el("td", { class: "num" }, r.items), el("td", { class: "num" }, r.labels_needed),
    el("td", { class: "num" }, r.labels), el("td", { class: "num" }, r.items_complete),
    el("td", {}, r.complete ? "complete" : r.current ? "labelling" : "waiting"))));
  fill($("experts"), data.experts.map((e) => el("tr", { "data-expert": e.name },
    el("td", {}, e.name + (e.is_admin ? " (admin)" : "")), el("td", { class: "num" }, e.labelled),
    el("td", { class: "num" }, e.labelled_current_round), el("td", { class: "num" }, e.skipped),
    el("td", { class: "num" }, e.open))));
}

async function loadAgreement() {
  const { status, data } = await api("GET", "/api/admin/agreement");
  if (status !== 200) { $("agreement-errors").textContent = (data && data.detail) || "agreement unavailable"; return; }
  $("fleiss").textContent = fmt(data.fleiss_kappa);
  $("alpha").textContent = fmt(data.krippendorff_alpha);
  const names = data.annotators || [];
  const head = el("tr", {}, el("th", {}, ""), ...names.map((n) => el("th", { class: "num" }, n)));
  $("kappa-matrix").querySelector("thead").replaceChildren(head);
  fill($("kappa-matrix"), (data.matrix || []).map((row, i) => el("tr", { "data-annotator": names[i] },
    el("th", {}, names[i]),
    ...row.map((k, j) => el("td", { class: "num" }, i === j ? "" : fmt(k) + " (" + ((data.n || [])[i] || [])[j] + ")")))));
  const errors = Object.entries(data.errors || {}).map(([k, v]) => k + ": " + v);
  $("agreement-errors").textContent = errors.join("; ");
}

async function loadDisagreements() {
  const { status, data } = await api("GET", "/api/admin/disagreements");
  if (status !== 200) { setStatus(data && data.detail, "error"); return; }
  fill($("disagreements"), data.items.map((it) => {
    const final = el("td", {});
    for (const lab of data.labels) {
      const b = el("button", { type: "button", class: "adjudicate", "data-item-id": it.item_id, "data-label": lab }, lab);
      if (it.adjudication && it.adjudication.label === lab) b.className += " label";
      b.addEventListener("click", () => adjudicate(it.item_id, lab));
      final.append(b, " ");
    }
    if (it.adjudication) final.append(el("div", { class: "muted" }, "by " + it.adjudication.admin));
    return el("tr", { "data-item-id": it.item_id }, el("td", {}, it.item_id), el("td", {}, it.text || ""),
      el("td", {}, Object.entries(it.labels).map(([a, l]) => a + ": " + l).join(", ")), final);
  }));
}

async function adjudicate(itemId, label) {
  const { status, data } = await api("POST", "/api/admin/adjudicate", { item_id: itemId, label });
  if (status === 200) { setStatus("Final label of " + itemId + ": " + label, "ok"); loadDisagreements(); }
  else setStatus(data && data.detail, "error");
}

async function download(format) {
  const resp = await fetch("/api/admin/export?format=" + format, { headers: { "Authorization": "Bearer " + getToken() } });
  if (!resp.ok) { setStatus("export failed (" + resp.status + ")", "error"); return; }
  const url = URL.createObjectURL(await resp.blob());
  const a = el("a", { href: url, download: "annotations." + format });
  document.body.append(a); a.click(); a.remove(); URL.revokeObjectURL(url);
}

function refresh() { setStatus(""); loadProgress(); loadAgreement(); loadDisagreements(); }
$("refresh").addEventListener("click", refresh);
$("export-jsonl").addEventListener("click", () => download("jsonl"));
$("export-csv").addEventListener("click", () => download("csv"));
$("signout").addEventListener("click", (ev) => { ev.preventDefault(); signOut(); });
api("GET", "/api/me").then((r) => {
  if (r.status === 200 && !r.data.is_admin) { setStatus("This page is for admins; your token belongs to an expert.", "error"); return; }
  if (r.status === 200) $("who").textContent = r.data.name;
  refresh();
});
