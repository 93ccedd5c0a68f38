// CSV import: refuse a too large file before sending it; follow an import running in a worker.
(function () {
  "use strict";
  var form = document.getElementById("form-import");
  if (form) {
    var input = form.querySelector("input[type=file]");
    var group = document.getElementById("groupe-fichier");
    var max = parseInt(form.dataset.maxBytes, 10);
    var check = function () {
      var file = input.files && input.files[0];
      var tooLarge = file && file.size > max;
      var error = document.getElementById(input.id + "-erreur");
      group.classList.toggle("fr-upload-group--error", !!tooLarge);
      if (!tooLarge && error) {  // a new file: the previous message no longer applies
        error.remove();
        input.removeAttribute("aria-describedby");
      }
      if (tooLarge) {
        if (!error || !error.isConnected) {
          error = document.createElement("p");
          error.id = input.id + "-erreur";
          error.className = "fr-error-text";
          group.appendChild(error);
        }
        error.textContent = "Le fichier dépasse la taille maximale autorisée (" + form.dataset.maxLabel +
          "). Découpez-le en plusieurs fichiers ou retirez les colonnes inutiles, puis recommencez.";
        input.setAttribute("aria-describedby", error.id);
      }
      return !tooLarge;
    };
    input.addEventListener("change", check);
    form.addEventListener("submit", function (event) {
      if (!check()) { event.preventDefault(); input.focus(); }
    });
  }
  var box = document.getElementById("progression-import");
  if (box) {
    var bar = document.getElementById("barre-progression");
    var poll = function () {
      fetch(box.dataset.progressUrl, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) { return response.json(); })
        .then(function (data) {
          if (data.status !== "queued" && data.status !== "running") { window.location.reload(); return; }
          bar.max = data.total_rows || 1;
          bar.value = data.processed_rows;
          bar.setAttribute("aria-valuenow", data.processed_rows);
          box.querySelector("[data-processed]").textContent = data.processed_rows;
          box.querySelector("[data-percent]").textContent = data.percent;
          document.getElementById("compteur-crees").textContent = data.created;
          document.getElementById("compteur-fusionnes").textContent = data.merged;
          document.getElementById("compteur-rejetes").textContent = data.rejected;
          window.setTimeout(poll, 1000);
        })
        .catch(function () { window.setTimeout(poll, 3000); });
    };
    window.setTimeout(poll, 1000);
  }
})();
