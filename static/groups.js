/* The print button of the workshop groups page: shown only when this script runs (the browser's
   own print command works the same way without it). */
(function () {
  document.querySelectorAll("[data-crm-print]").forEach(function (button) {
    button.hidden = false;
    button.addEventListener("click", function () { window.print(); });
  });
})();
