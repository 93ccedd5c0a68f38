// Sequence step editor: refresh the SMS counter as the manager types (the server computes the
// same figures on every page load and preview; this only saves a round trip).
(function () {
  "use strict";
  var counter = document.getElementById("compteur-sms");
  var form = document.getElementById("form-etape");
  if (!counter || !form) { return; }
  var body = form.querySelector("[name=body]");
  var channel = form.querySelector("[name=channel]");
  var fields = JSON.parse(counter.dataset.fields || "{}");
  var gsm7 = JSON.parse(counter.dataset.gsm7 || "{}");
  var basic = new Set(Array.from(gsm7.basic || ""));
  var extension = new Set(Array.from(gsm7.ext || ""));

  var render = function (template) {
    return template.replace(/\{([^{}]*)\}/g, function (match, name) {
      return Object.prototype.hasOwnProperty.call(fields, name) ? fields[name] : match;
    });
  };
  // Same rules as crm/messaging/encoding.py: GSM-7 160/153 septets, UCS-2 70/67 units, a
  // character never straddles two segments.
  var info = function (text) {
    var chars = Array.from(text);
    var gsm = chars.every(function (c) { return basic.has(c) || extension.has(c); });
    var units = chars.map(function (c) {
      if (gsm) { return extension.has(c) ? 2 : 1; }
      return c.codePointAt(0) > 0xffff ? 2 : 1;
    });
    var length = units.reduce(function (a, b) { return a + b; }, 0);
    var single = gsm ? 160 : 70;
    var multi = gsm ? 153 : 67;
    var segments = 0;
    if (length > 0 && length <= single) { segments = 1; }
    if (length > single) {
      segments = 1;
      var used = 0;
      units.forEach(function (cost) {
        if (used + cost > multi) { segments += 1; used = 0; }
        used += cost;
      });
    }
    return { length: length, encoding: gsm ? "GSM-7" : "UCS-2", segments: segments };
  };
  var plural = function (n, word) { return n + " " + word + (n > 1 ? "s" : ""); };
  var update = function () {
    var isSms = channel.value === "sms";
    counter.hidden = !isSms;
    if (!isSms) { return; }
    var text = body.value.replace(/\r\n?/g, "\n").trim();
    var figures = info(render(text));
    counter.textContent = "SMS pour " + counter.dataset.person + " : " +
      plural(figures.length, "caractère") + ", " + figures.encoding + ", " +
      plural(figures.segments, "segment") + ".";
  };
  body.addEventListener("input", update);
  channel.addEventListener("change", update);
})();
