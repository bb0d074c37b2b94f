// Shared helpers: the token lives in localStorage; every API call sends it as a Bearer token.
"use strict";
const TOKEN_KEY = "curate-token";

function getToken() { return localStorage.getItem(TOKEN_KEY); }
function setToken(t) { localStorage.setItem(TOKEN_KEY, t); }
function signOut() { localStorage.removeItem(TOKEN_KEY); location.href = "/"; }

// Call the API; resolves to {status, data}. A 401 sends the user back to the sign-in page.
async function api(method, path, body, token) {
  const headers = { "Authorization": "Bearer " + (token || getToken() || "") };
  const init = { method, headers };
  if (body !== undefined) { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
  const resp = await fetch(path, init);
  let data = null;
  const type = resp.headers.get("Content-Type") || "";
  if (type.includes("application/json")) data = await resp.json();
  if (resp.status === 401 && !token) { localStorage.removeItem(TOKEN_KEY); location.href = "/?expired=1"; }
  return { status: resp.status, data, resp };
}

function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") e.className = v; else if (k.startsWith("data-")) e.setAttribute(k, v); else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return e;
}

function requireToken() { if (!getToken()) location.href = "/"; }
