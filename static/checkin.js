/* Search as you type and taps without reloading: fetch the small fragment, swap its parts in.
   Without this script the GET form and the POST forms work the same way, page by page. */
(function () {
  var form = document.getElementById("checkin-recherche"), box = document.getElementById("q");
  var live = document.getElementById("checkin-live"), timer = null, search = null;
  if (!window.fetch || !window.AbortController || !window.DOMParser) return;
  function swap(html) {
    var doc = new DOMParser().parseFromString(html, "text/html");
    if (!doc.getElementById("checkin-liste")) return false;
    ["checkin-compte", "checkin-annonce", "checkin-liste"].forEach(function (id) {
      document.getElementById(id).innerHTML = doc.getElementById(id).innerHTML;
    });
    return true;
  }
  function find() {
    var q = box.value.trim(), query = q ? "?q=" + encodeURIComponent(q) : "";
    if (search) search.abort();
    search = new AbortController();
    history.replaceState(null, "", form.action + query);
    fetch(form.dataset.fragment + query, {signal: search.signal, credentials: "same-origin"})
      .then(function (r) { return r.text(); })
      .then(function (html) { if (!swap(html)) location.reload(); })
      .catch(function () {});
  }
  box.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(find, 300); });
  form.addEventListener("submit", function (e) { e.preventDefault(); clearTimeout(timer); find(); });
  live.addEventListener("submit", function (e) {
    var tap = e.target;
    e.preventDefault();
    tap.querySelector("[name=q]").value = box.value.trim();
    tap.querySelector("button").disabled = true;
    fetch(tap.action, {method: "POST", body: new FormData(tap), credentials: "same-origin",
                       headers: {"X-Requested-With": "fetch"}})
      .then(function (r) { return r.text(); })
      .then(function (html) { if (!swap(html)) tap.submit(); box.focus(); })
      .catch(function () { tap.submit(); });
  });
})();
