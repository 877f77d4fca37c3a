/* The slot page: the operation choices follow the provider, and the provider settings shown (and
   submitted) are the chosen provider/operation's, without a reload. The choices come from the
   #slot-operations JSON; each settings group is a <fieldset data-settings-for="provider.operation">. */
(function () {
  "use strict";

  function init() {
    var provider = document.getElementById("id_provider");
    var operation = document.getElementById("id_operation");
    var data = document.getElementById("slot-operations");
    if (!provider || !operation || !data) {
      return;
    }
    var operations = JSON.parse(data.textContent);

    function showSettings() {
      var key = provider.value + "." + operation.value;
      var groups = document.querySelectorAll("[data-settings-for]");
      for (var i = 0; i < groups.length; i++) {
        var chosen = groups[i].getAttribute("data-settings-for") === key;
        groups[i].hidden = !chosen;
        groups[i].disabled = !chosen;  // a hidden group is neither validated nor submitted
      }
    }

    function fillOperations() {
      var entry = operations[provider.value] || {default: "", choices: []};
      var current = operation.value;
      while (operation.options.length) {
        operation.remove(0);
      }
      var keep = false;
      entry.choices.forEach(function (choice) {
        operation.add(new Option(choice[1], choice[0]));
        keep = keep || choice[0] === current;
      });
      operation.value = keep ? current : entry.default;
      showSettings();
    }

    provider.addEventListener("change", fillOperations);
    operation.addEventListener("change", showSettings);
    showSettings();
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", init);
  } else {
    init();
  }
})();
