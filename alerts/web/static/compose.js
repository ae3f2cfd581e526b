// Progressive enhancement of the compose page: refresh the per-channel preview while typing.
// Without this script the "Prévisualiser" button does the same through a full page load.
(function () {
  "use strict";
  var form = document.getElementById("compose");
  var target = document.getElementById("preview");
  if (!form || !target || !window.fetch || !window.FormData) { return; }
  var timer = null;
  var seq = 0;
  function refresh() {
    var mine = ++seq;
    var data = new URLSearchParams(new FormData(form));
    data.delete("action");
    fetch("/console/preview", {
      method: "POST",
      body: data,
      credentials: "same-origin",
      headers: { "X-CSRF-Token": form.elements.csrf.value }
    }).then(function (response) {
      if (!response.ok) { throw new Error(String(response.status)); }
      return response.text();
    }).then(function (html) {
      if (mine === seq) { target.innerHTML = html; }
    }).catch(function () { /* the Prévisualiser button still works */ });
  }
  function later() {
    if (timer) { clearTimeout(timer); }
    timer = setTimeout(refresh, 350);
  }
  form.addEventListener("input", later);
  form.addEventListener("change", later);
}());
