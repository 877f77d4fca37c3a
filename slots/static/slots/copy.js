/* Copy buttons: <button data-copy="text" data-copied-label="Copied">. Copies the text, says so for 2 s. */
(function () {
  "use strict";

  function copyWithSelection(text) {
    // Without the Clipboard API (a plain-http address other than localhost): a selected hidden textarea.
    var area = document.createElement("textarea");
    area.value = text;
    area.setAttribute("readonly", "");
    area.style.position = "fixed";
    area.style.opacity = "0";
    document.body.appendChild(area);
    area.select();
    try {
      return document.execCommand("copy");
    } finally {
      document.body.removeChild(area);
    }
  }

  function confirm(button) {
    var label = button.getAttribute("data-label") || button.textContent;
    button.setAttribute("data-label", label);
    button.textContent = button.getAttribute("data-copied-label") || label;
    button.classList.add("copied");
    window.setTimeout(function () {
      button.textContent = label;
      button.classList.remove("copied");
    }, 2000);
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest ? event.target.closest("button[data-copy]") : null;
    if (!button) {
      return;
    }
    event.preventDefault();
    var text = button.getAttribute("data-copy");
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () { confirm(button); },
        function () { if (copyWithSelection(text)) { confirm(button); } }
      );
    } else if (copyWithSelection(text)) {
      confirm(button);
    }
  });
})();
