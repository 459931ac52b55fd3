// Small progressive enhancements; every page works without them.
//
// A "Copy" button next to a value shown on the page
// (a secret shown once, a client id). Without JavaScript the button stays
// hidden and the value can be selected by hand.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var target = document.getElementById(button.getAttribute("data-copy"));
    if (!target || !navigator.clipboard) return;
    var label = button.textContent;
    var box = button.closest(".secret-box, .copy-box");
    var status = box ? box.querySelector(".copied") : null;
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(target.textContent.trim()).then(
        function () {
          button.textContent = "Copied \u2713";
          button.setAttribute("data-copied", "true");
          if (status) status.textContent = "Copied to the clipboard.";
          setTimeout(function () { button.textContent = label; }, 4000);
        },
        function () {
          if (status) status.textContent = "Copying failed: select the text and copy it by hand.";
        }
      );
    });
  });
});

// The lifetime choice: typing a date chooses "Custom date", choosing a preset
// clears the date, and the resulting expiry is spelled out before sending.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("fieldset.lifetime").forEach(function (box) {
    var date = box.querySelector("input[type=date]");
    var custom = box.querySelector("input[name=lifetime][value=custom]");
    var result = box.querySelector("#lifetime-result");
    if (!date || !custom) return;
    var day = 86400000;
    var iso = function (t) { return new Date(t).toISOString().slice(0, 10); };
    var maxDays = parseInt(box.getAttribute("data-max-days"), 10) || 365;
    date.min = iso(Date.now() + day);
    date.max = iso(Date.now() + maxDays * day);
    var show = function () {
      if (!result) return;
      var chosen = box.querySelector("input[name=lifetime]:checked");
      if (!chosen) { result.textContent = ""; return; }
      if (chosen.value === "custom") {
        result.textContent = date.value ? "Expires on " + date.value + " at 00:00 UTC." : "Choose a date.";
      } else {
        result.textContent = "Expires on " + iso(Date.now() + parseInt(chosen.value, 10) * day) + ".";
      }
    };
    date.addEventListener("input", function () { if (date.value) custom.checked = true; show(); });
    box.querySelectorAll("input[name=lifetime]").forEach(function (r) {
      r.addEventListener("change", function () { if (r.value !== "custom") date.value = ""; show(); });
    });
    show();
  });
});

// Times in lists: the reader's local time next to UTC.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("time.date[datetime]").forEach(function (t) {
    var d = new Date(t.getAttribute("datetime"));
    if (isNaN(d.getTime())) return;
    var local = document.createElement("span");
    local.className = "muted local-time";
    local.textContent = " (" + d.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "medium" }) + " local)";
    t.insertAdjacentElement("afterend", local);
  });
});

// A secret is shown once, but browsers keep even a no-store page in their
// back/forward cache, so Back would show it again without asking the server.
// Leaving the page blanks the secret; a page restored from that cache is
// fetched again, and the server says "Already shown".
window.addEventListener("pagehide", function (event) {
  if (!event.persisted) return;
  document.querySelectorAll(".secret-box code").forEach(function (code) {
    code.textContent = "";
  });
});
window.addEventListener("pageshow", function (event) {
  if (event.persisted && document.querySelector(".secret-box")) location.reload();
});

// A refused form: the page says so in its title, and the first field it
// refused (or else the first error) is brought into view and focused, so the
// reason is not left further down a long page.
document.addEventListener("DOMContentLoaded", function () {
  var field = document.querySelector("main [aria-invalid=true]");
  var alert = document.querySelector("main .error[role=alert]");
  var first = field || alert;
  if (!first) return;
  document.title = "Error: " + document.title;
  if (first === alert) alert.setAttribute("tabindex", "-1");
  first.scrollIntoView({ block: "center" });
  first.focus({ preventScroll: true });
});
