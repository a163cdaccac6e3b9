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

  document.addEventListener("input", follow);
  document.addEventListener("change", follow);
})();
