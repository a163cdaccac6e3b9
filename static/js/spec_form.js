// The new-job form: a field the user changes is pinned in hpo.fixed (a search keeps it),
// unless the user has ticked or unticked that pin themselves. Delegated, so it also works
// on the form the prompt box swaps in.
(function () {
  "use strict";

  function pinCovers(pin, name) {
    return name === pin || name.startsWith(pin + ".");
  }

  function follow(event) {
    var input = event.target;
    var form = input.closest && input.closest("#job-form");
    if (!form || !input.name) {
      return;
    }
    if (input.dataset.pin !== undefined) {
      input.dataset.touched = "true";
      return;
    }
    form.querySelectorAll("input[data-pin]").forEach(function (pin) {
      if (!pin.dataset.touched && pinCovers(pin.dataset.pin, input.name)) {
        pin.checked = true;
      }
    });
  }

  // The parsed form's Edit button (data-opens-form): open every section, focus the first field.
  function openForm(event) {
    var button = event.target.closest && event.target.closest("[data-opens-form]");
    var form = button && document.querySelector(button.dataset.opensForm);
    if (!form) {
      return;
    }
    form.querySelectorAll("details").forEach(function (details) {
      details.open = true;
    });
    var first = form.querySelector("input, select");
    if (first) {
      first.focus();
    }
  }

  document.addEventListener("input", follow);
  document.addEventListener("change", follow);
  document.addEventListener("click", openForm);
})();
