// Progressive enhancement: a "Copy" button next to a secret shown once.
// Without JavaScript the secret is still shown and can be selected by hand.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("button[data-copy]").forEach(function (button) {
    var target = document.getElementById(button.getAttribute("data-copy"));
    if (!target || !navigator.clipboard) return;
    var status = button.parentElement.querySelector(".copied");
    button.hidden = false;
    button.addEventListener("click", function () {
      navigator.clipboard.writeText(target.textContent.trim()).then(
        function () { if (status) status.textContent = "Copied to the clipboard."; },
        function () { if (status) status.textContent = "Copying failed: select the text and copy it by hand."; }
      );
    });
  });
});
