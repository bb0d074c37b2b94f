// The signin page's script (a file of its own: the Content-Security-Policy allows no inline script).
"use strict";
document.getElementById("signin-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const token = document.getElementById("token").value.trim();
  const error = document.getElementById("error");
  error.textContent = "";
  try {
    const { status, data } = await api("GET", "/api/me", undefined, token);
    if (status !== 200) { error.textContent = (data && data.detail) || ("sign-in failed (" + status + ")"); return; }
    setToken(token);
    location.href = data.is_admin ? "/admin" : "/label";
  } catch (e) { error.textContent = "cannot reach the server: " + e; }
});
if (new URLSearchParams(location.search).has("expired")) {
  document.getElementById("error").textContent = "Your token was not accepted; sign in again.";
}
