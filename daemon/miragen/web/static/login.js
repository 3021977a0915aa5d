"use strict";
(async () => {
  const s = await (await fetch("/api/session", { credentials: "same-origin" })).json();
  const form = document.getElementById("login-form");
  form.addEventListener("submit", async (ev) => {
    ev.preventDefault();
    const r = await fetch("/api/login", {
      method: "POST",
      credentials: "same-origin",
      headers: { "content-type": "application/json", "x-csrf-token": s.csrf },
      body: JSON.stringify({ token: document.getElementById("token").value }),
    });
    const body = await r.json();
    if (r.ok) location.href = "/";
    else document.getElementById("login-error").textContent = body.error || "refused";
  });
})();
