// Progressive enhancement: a "Copy" button next to a value shown on the page
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
