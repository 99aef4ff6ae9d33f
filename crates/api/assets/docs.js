// A small offline OpenAPI browser: lists operations with parameters, responses and a
// "try it" form. No external resources, so /docs works without internet access.
(function () {
  "use strict";
  function el(tag, attrs, children) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") e.textContent = attrs[k]; else e.setAttribute(k, attrs[k]);
    });
    (children || []).forEach(function (c) { if (c) e.appendChild(c); });
    return e;
  }
  function schemaText(s) { return JSON.stringify(s || {}, null, 2); }
  // Credentials for "Try it": kept in sessionStorage (this tab only), sent with every
  // request the page makes, never anywhere else.
  var token = document.getElementById("token"), apikey = document.getElementById("apikey");
  token.value = sessionStorage.getItem("palisade.token") || "";
  apikey.value = sessionStorage.getItem("palisade.apikey") || "";
  token.addEventListener("change", function () { sessionStorage.setItem("palisade.token", token.value.trim()); });
  apikey.addEventListener("change", function () { sessionStorage.setItem("palisade.apikey", apikey.value.trim()); });
  document.getElementById("login").addEventListener("click", function () {
    var out = document.getElementById("authout");
    fetch("/api/v1/auth/login", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: document.getElementById("user").value, password: document.getElementById("pass").value }) })
      .then(function (r) { return r.json().then(function (j) { return [r.status, j]; }); })
      .then(function (a) {
        if (a[0] === 200 && a[1].access_token) {
          token.value = a[1].access_token;
          sessionStorage.setItem("palisade.token", token.value);
          out.textContent = "Logged in; the token lasts " + a[1].expires_in + " s.";
        } else { out.textContent = a[0] + ": " + (a[1].detail || JSON.stringify(a[1])); }
        document.getElementById("pass").value = "";
      }).catch(function (e) { out.textContent = String(e); });
  });
  function credentials(headers) {
    if (token.value.trim() && !headers.Authorization) headers.Authorization = "Bearer " + token.value.trim();
    if (apikey.value.trim() && !headers["X-Api-Key"]) headers["X-Api-Key"] = apikey.value.trim();
    return headers;
  }
  function renderOp(path, method, op) {
    var params = op.parameters || [];
    var rows = params.map(function (p) {
      return el("tr", {}, [el("td", { text: p.name + (p.required ? " *" : "") }), el("td", { text: p.in }),
        el("td", { text: (p.schema && p.schema.type) || "" }), el("td", { text: p.description || "" })]);
    });
    var inputs = {};
    var form = el("div", {}, params.map(function (p) {
      var i = el("input", { placeholder: p.name + " (" + p.in + ")" });
      inputs[p.name] = { input: i, where: p.in };
      return i;
    }));
    var bodyInput = op.requestBody ? el("textarea", { rows: "4", placeholder: "request body" }) : null;
    var out = el("pre", { text: "" });
    var btn = el("button", { text: "Send" });
    btn.addEventListener("click", function () {
      var url = path, query = [], headers = {};
      Object.keys(inputs).forEach(function (n) {
        var v = inputs[n].input.value;
        if (!v) return;
        if (inputs[n].where === "path") url = url.replace("{" + n + "}", encodeURIComponent(v));
        else if (inputs[n].where === "query") query.push(encodeURIComponent(n) + "=" + encodeURIComponent(v));
        else if (inputs[n].where === "header") headers[n] = v;
      });
      if (query.length) url += "?" + query.join("&");
      var init = { method: method.toUpperCase(), headers: credentials(headers) };
      if (bodyInput && bodyInput.value) {
        init.body = bodyInput.value;
        if (!headers["Content-Type"]) headers["Content-Type"] = "application/json";
      }
      out.textContent = "…";
      fetch(url, init).then(function (r) {
        return r.text().then(function (t) {
          try { t = JSON.stringify(JSON.parse(t), null, 2); } catch (e) { /* not JSON */ }
          out.textContent = r.status + " " + r.statusText + "\n\n" + t;
        });
      }).catch(function (e) { out.textContent = String(e); });
    });
    var responses = Object.keys(op.responses || {}).map(function (code) {
      return el("tr", {}, [el("td", { text: code }), el("td", { text: op.responses[code].description || "" })]);
    });
    return el("details", { class: "op" }, [
      el("summary", {}, [el("span", { class: "m " + method, text: method.toUpperCase() }),
        el("span", { class: "path", text: path }), el("span", { class: "sum", text: op.summary || "" }),
        el("span", { class: "tag", text: (op.tags || []).join(", ") })]),
      el("div", { class: "body" }, [
        el("p", { text: op.description || "" }),
        params.length ? el("table", {}, [el("tr", {}, [el("th", { text: "parameter" }), el("th", { text: "in" }), el("th", { text: "type" }), el("th", { text: "description" })])].concat(rows)) : null,
        el("h4", { text: "Responses" }), el("table", {}, responses),
        el("h4", { text: "Try it" }), form, bodyInput, btn, out])
    ]);
  }
  fetch("/api/v1/openapi.json").then(function (r) { return r.json(); }).then(function (doc) {
    document.getElementById("ver").textContent = " " + (doc.info && doc.info.version || "") + " · OpenAPI " + doc.openapi;
    var ops = document.getElementById("ops");
    ops.textContent = "";
    Object.keys(doc.paths || {}).sort().forEach(function (path) {
      Object.keys(doc.paths[path]).forEach(function (method) {
        ops.appendChild(renderOp(path, method, doc.paths[path][method]));
      });
    });
    var schemas = (doc.components && doc.components.schemas) || {};
    var sc = document.getElementById("schemas");
    Object.keys(schemas).sort().forEach(function (name) {
      sc.appendChild(el("details", { class: "op" }, [el("summary", {}, [el("span", { class: "path", text: name })]),
        el("div", { class: "body" }, [el("pre", { text: schemaText(schemas[name]) })])]));
    });
  }).catch(function (e) { document.getElementById("ops").textContent = "Could not load the document: " + e; });
})();
