// The label page's script (a file of its own: the Content-Security-Policy allows no inline script).
"use strict";
requireToken();
const $ = (id) => document.getElementById(id);
let current = null, busy = false, labels = [];

function setStatus(text, kind) { $("status").textContent = text || ""; $("status").className = kind || ""; }

function setProgress(p) {
  if (!p) return;
  $("progress").textContent = p.done + " / " + p.total;
  $("progress").dataset.done = p.done; $("progress").dataset.total = p.total;
}

function renderButtons(newLabels) {
  if (JSON.stringify(newLabels) === JSON.stringify(labels)) return;
  labels = newLabels;
  const box = $("buttons"); box.replaceChildren();
  labels.forEach((lab, i) => {
    const b = el("button", { type: "button", class: "label", "data-label": lab, "data-key": String(i + 1) },
                 el("kbd", {}, String(i + 1)), lab);
    b.addEventListener("click", () => submit(lab));
    box.append(b);
  });
}

function show(answer) {
  setProgress(answer.progress);
  current = answer.item;
  $("item").hidden = !current; $("empty").hidden = !!current;
  $("policy").hidden = !current && !$("prompt").textContent;
  if (!current) {
    $("item").dataset.itemId = "";
    $("empty-message").textContent = answer.message || "Nothing left to label.";
    return;
  }
  $("item").dataset.itemId = current.item_id;
  $("prompt").textContent = current.prompt;
  $("text").textContent = current.text;
  renderButtons(current.labels);
}

async function call(method, path, body) {
  if (busy) return null;
  busy = true;
  document.querySelectorAll("button").forEach((b) => (b.disabled = true));
  try { return await api(method, path, body); }
  catch (e) { setStatus("cannot reach the server: " + e, "error"); return null; }
  finally { busy = false; document.querySelectorAll("button").forEach((b) => (b.disabled = false)); }
}

async function loadNext() {
  const r = await call("POST", "/api/next");
  if (r && r.status === 200) show(r.data); else if (r) setStatus(r.data && r.data.detail, "error");
}

async function submit(label) {
  if (!current) return;
  const r = await call("POST", "/api/annotations", { item_id: current.item_id, label });
  if (!r) return;
  if (r.status === 201) { setStatus("Saved: " + label, "ok"); await loadNext(); }
  else { setStatus(r.data && r.data.detail, "error"); if (r.status === 409) await loadNext(); }
}

async function skip() {
  if (!current) return;
  const r = await call("POST", "/api/skip", { item_id: current.item_id });
  if (!r) return;
  if (r.status === 200) setStatus("Skipped", "ok"); else setStatus(r.data && r.data.detail, "error");
  await loadNext();
}

async function undo() {
  const r = await call("POST", "/api/undo");
  if (!r) return;
  if (r.status === 200) { show(r.data); setStatus("Your last label was removed; label this text again", "ok"); }
  else setStatus(r.data && r.data.detail, "error");
}

document.addEventListener("keydown", (ev) => {
  if (ev.ctrlKey || ev.metaKey || ev.altKey || ev.target.tagName === "INPUT") return;
  const k = ev.key.toLowerCase();
  if (k === "s") { ev.preventDefault(); skip(); }
  else if (k === "u") { ev.preventDefault(); undo(); }
  else if (/^[1-9]$/.test(k) && Number(k) <= labels.length) { ev.preventDefault(); submit(labels[Number(k) - 1]); }
});
$("skip").addEventListener("click", skip);
$("undo").addEventListener("click", undo);
$("undo-empty").addEventListener("click", undo);
$("refresh").addEventListener("click", loadNext);
$("signout").addEventListener("click", (ev) => { ev.preventDefault(); signOut(); });
api("GET", "/api/me").then((r) => { if (r.status === 200) $("who").textContent = "signed in as " + r.data.name; });
loadNext();
