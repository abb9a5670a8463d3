// Export with progress: start a background export (POST with the page's CSRF token), then open its progress
// page. Without JavaScript the plain CSV and Excel links beside these buttons still work.
"use strict";
(function () {
  function csrf() {
    var match = document.cookie.match(/(?:^|; )rongtuk_csrf=([^;]*)/);
    return match ? decodeURIComponent(match[1]) : "";
  }
  document.querySelectorAll("button.rt-job").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () {
      button.disabled = true;
      fetch(button.dataset.job, { method: "POST", credentials: "same-origin", headers: { "X-CSRF-Token": csrf() } })
        .then(function (response) {
          if (!response.ok) { throw new Error(String(response.status)); }
          return response.json();
        })
        .then(function (job) { window.location.assign(job.progress_page); })
        .catch(function () { button.disabled = false; });
    });
  });
})();
