// loyalpos selling screen (收银台). The cart lives here and in localStorage (a
// reload keeps it); every change is priced by the server (/till/api/quote), which
// holds the member's chosen coupons and points for this till. When the server
// stops answering, the page sells at shelf prices and keeps each sale in
// IndexedDB until it can upload them as late orders (补单).
(function () {
  "use strict";
  var CONFIG = JSON.parse(document.getElementById("till-config").textContent);
  var CSRF = document.querySelector("meta[name=csrf-token]").content;
  var M = CONFIG.messages;
  var EN = CONFIG.lang === "en";
  var KEY = "lp_till:" + CONFIG.store.id + ":" + CONFIG.terminal;
  var CATALOGUE_KEY = "lp_catalogue:" + CONFIG.store.id;
  var $ = function (id) { return document.getElementById(id); };

  function t(key, values) {
    var text = M[key] || key;
    if (values) {
      Object.keys(values).forEach(function (name) {
        text = text.split("{" + name + "}").join(String(values[name]));
      });
    }
    return text;
  }
  function yuan(fen) {
    var sign = fen < 0 ? "-" : "";
    fen = Math.abs(fen);
    return sign + "¥" + Math.floor(fen / 100) + "." + String(fen % 100).padStart(2, "0");
  }
  function clock(iso) {
    // HH:MM on this till's clock (the server sends UTC)
    var d = new Date(iso);
    return String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
  }
  function parseYuan(text) {
    // "12", "12.5", "12.50" -> fen; anything else -> null (no float near money)
    var m = /^\s*(\d{1,9})(?:\.(\d{1,2}))?\s*$/.exec(text || "");
    if (!m) { return null; }
    return parseInt(m[1], 10) * 100 + parseInt((m[2] || "0").padEnd(2, "0"), 10);
  }
  function el(tag, attrs, children) {
    var node = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k === "text") { node.textContent = attrs[k]; }
      else if (k.slice(0, 2) === "on") { node.addEventListener(k.slice(2), attrs[k]); }
      else { node.setAttribute(k, attrs[k]); }
    });
    (children || []).forEach(function (c) { if (c) { node.appendChild(c); } });
    return node;
  }

  // -- state ------------------------------------------------------------------
  var state = load() || fresh();
  var scanStarted = null;  // performance.now() at the Enter of a scan, until its total is drawn
  var timings = [];
  var lastQuote = null;
  var offline = false;
  var selected = -1;

  function fresh() {
    return { lines: [], member: null, points: "none", force: [], skipAll: false,
             skipReason: "", token: null, orderNo: null };
  }
  function load() {
    try { return JSON.parse(localStorage.getItem(KEY)); } catch (e) { return null; }
  }
  function save() { localStorage.setItem(KEY, JSON.stringify(state)); }

  // -- the server ---------------------------------------------------------------
  function ApiError(status, error) {
    this.status = status; this.code = error.code; this.message = error.message;
    this.detail = error.detail || {};
  }
  function Offline() { this.offline = true; }

  function api(method, path, body) {
    var init = { method: method, credentials: "same-origin",
                 headers: { "Accept": "application/json" } };
    if (method !== "GET") {
      init.headers["Content-Type"] = "application/json";
      init.headers["X-CSRF-Token"] = CSRF;
      init.body = JSON.stringify(body || {});
    }
    return fetch(path, init).then(function (response) {
      if (response.status === 502 || response.status === 503 || response.status === 504) {
        goOffline(); throw new Offline();
      }
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (response.status === 401 && data.error && data.error.code === "signed_out") {
          window.location.href = "/till/sign-in";
        }
        if (!response.ok) {
          throw new ApiError(response.status, data.error || { code: "error", message: "" });
        }
        if (offline) { goOnline(); }
        return data;
      });
    }, function () { goOffline(); throw new Offline(); });
  }

  // -- banners ------------------------------------------------------------------
  function banner(kind, text, what) {
    var box = $("banners");
    var node = el("div", { "class": "banner " + kind, role: kind === "error" ? "alert" : "status" }, [
      el("span", { text: text }),
      what ? el("span", { "class": "what", text: what }) : null,
      el("button", { type: "button", "class": "close", "aria-label": t("close"), text: "×",
                     onclick: function () { node.remove(); focusScan(); } })
    ]);
    box.appendChild(node);
    return node;
  }
  function clearBanners() {
    Array.prototype.forEach.call(document.querySelectorAll("#banners .banner:not(.sticky)"),
      function (n) { n.remove(); });
  }
  function errorText(err) {
    // What the cashier reads: a sentence of our catalogue for the codes a till
    // meets, the server's own message for the rest.
    if (err.code === "member_code_rejected") { return [t("err_member_code"), t("do_member_code")]; }
    if (err.code === "insufficient_points") { return [t("err_points"), t("do_points")]; }
    if (err.code === "member_not_found") { return [t("err_member_not_found"), t("do_member_not_found")]; }
    if (err.code === "price_changed") { return [t("err_price_changed"), t("do_price_changed")]; }
    if (err.code === "validation_error" || err.status === 422) { return [t("err_invalid"), err.message]; }
    if (M["err_" + err.code]) { return [t("err_" + err.code), ""]; }
    return [err.message || t("err_generic"), ""];
  }
  function showError(err) {
    if (err && err.offline) { return; }
    if (!(err instanceof ApiError)) { console.error(err); banner("error", t("err_generic")); return; }
    var parts = errorText(err);
    banner("error", parts[0], parts[1]);
  }

  // -- offline -------------------------------------------------------------------
  var healthTimer = null;
  function goOffline() {
    if (offline) { return; }
    offline = true;
    document.body.classList.add("offline");
    $("status").textContent = t("offline");
    var b = banner("warn sticky", t("offline_banner"), t("offline_what"));
    b.id = "offline-banner";
    healthTimer = setInterval(checkHealth, 2000);
    render();
  }
  function goOnline() {
    offline = false;
    document.body.classList.remove("offline");
    $("status").textContent = t("online");
    var b = $("offline-banner"); if (b) { b.remove(); }
    if (healthTimer) { clearInterval(healthTimer); healthTimer = null; }
    uploadLate();
    if (state.lines.length) { requote(); } else { render(); }
  }
  function checkHealth() {
    fetch("/healthz", { cache: "no-store" }).then(function (r) {
      if (r.ok) { goOnline(); }
    }, function () {});
  }

  var dbPromise = null;
  function db() {
    if (!dbPromise) {
      dbPromise = new Promise(function (resolve, reject) {
        var open = indexedDB.open("loyalpos-till", 1);
        open.onupgradeneeded = function () { open.result.createObjectStore("sales", { keyPath: "order_no" }); };
        open.onsuccess = function () { resolve(open.result); };
        open.onerror = function () { reject(open.error); };
      });
    }
    return dbPromise;
  }
  function salesDo(mode, work) {
    return db().then(function (d) {
      return new Promise(function (resolve, reject) {
        var tx = d.transaction("sales", mode);
        var result = work(tx.objectStore("sales"));
        tx.oncomplete = function () { resolve(result && result.result !== undefined ? result.result : result); };
        tx.onerror = function () { reject(tx.error); };
      });
    });
  }
  function pendingSales() {
    return salesDo("readonly", function (s) { return s.getAll(); }).then(function (all) {
      return all.filter(function (x) { return x.store_id === CONFIG.store.id; });
    });
  }
  function updatePending() {
    return pendingSales().then(function (all) {
      $("pending").textContent = all.length ? t("pending", { n: all.length }) : "";
      return all;
    });
  }
  var uploading = false;
  function uploadLate() {
    if (uploading) { return; }
    uploading = true;
    updatePending().then(function (all) {
      if (!all.length) { return null; }
      var orders = all.map(function (s) { return s.order; });
      return api("POST", "/till/api/late-orders", { orders: orders }).then(function (done) {
        var booked = done.results.filter(function (r) { return r.outcome !== "rejected"; });
        return salesDo("readwrite", function (store) {
          booked.forEach(function (r) { store.delete(r.order_no); });
        }).then(function () { showLateResults(done.results); });
      });
    }).catch(showError).then(function () { uploading = false; updatePending(); });
  }
  function showLateResults(results) {
    var list = $("late-results");
    list.innerHTML = "";
    results.forEach(function (r) {
      var item = el("li", { "class": "late-" + r.outcome }, [
        el("strong", { text: r.order_no }), el("span", { text: " " + t("late_" + r.outcome) })
      ]);
      var exceptions = (r.receipt && r.receipt.exceptions) || [];
      if (r.receipt) {
        item.appendChild(el("span", { text: " " + yuan(r.receipt.payable_fen) }));
      }
      if (r.error) { item.appendChild(el("div", { "class": "exception", text: r.error.message })); }
      exceptions.forEach(function (x) {
        item.appendChild(el("div", { "class": "exception", text: EN ? (x.message_en || x.message) : x.message }));
      });
      if (!exceptions.length && r.outcome === "booked") {
        item.appendChild(el("div", { "class": "ok", text: t("late_no_exceptions") }));
      }
      list.appendChild(item);
    });
    openDialog("late-dialog");
  }

  function catalogue() {
    try { return JSON.parse(localStorage.getItem(CATALOGUE_KEY)) || []; } catch (e) { return []; }
  }
  function refreshCatalogue() {
    api("GET", "/till/api/products?limit=200").then(function (found) {
      localStorage.setItem(CATALOGUE_KEY, JSON.stringify(found.data));
    }).catch(function () {});
  }
  function offlineItem(code) {
    return catalogue().find(function (p) { return p.barcode === code || p.sku === code; });
  }

  // -- the cart -----------------------------------------------------------------
  function addLine(product, price, qty, manual) {
    var found = state.lines.findIndex(function (l) {
      return l.sku === product.sku && l.unit_price_fen === price && !l.manual && !manual;
    });
    if (found >= 0) { state.lines[found].qty += qty; selected = found; }
    else {
      state.lines.push({ sku: product.sku, name: product.name || product.sku,
                         category: product.category || "", unit_price_fen: price, qty: qty,
                         manual: !!manual });
      selected = state.lines.length - 1;
    }
    changed();
  }
  function setQty(index, qty) {
    if (qty <= 0) { state.lines.splice(index, 1); selected = Math.min(selected, state.lines.length - 1); }
    else { state.lines[index].qty = Math.min(qty, 9999); }
    changed();
  }
  function changed() {
    state.orderNo = null;
    save(); render(); requote();
  }
  function cartBody() {
    return {
      member_id: state.member ? state.member.member.id : null,
      lines: state.lines.map(function (l) {
        return { sku: l.sku, name: l.name, category: l.category, unit_price_fen: l.unit_price_fen,
                 qty: l.qty, manual: l.manual };
      }),
      points: state.points, force: state.force, skip_all: state.skipAll
    };
  }
  // One quote in flight at a time: each replaces the hold of the one before
  // (its token), so a quote sent before the previous one answered would leave
  // that one's coupons and points held until they lapse. A change meanwhile is
  // priced once the answer is in, and every caller gets the newest quote.
  var inFlight = null;
  var again = false;
  function requote() {
    if (inFlight) { again = true; return inFlight; }
    if (!state.lines.length) {
      lastQuote = null; releaseToken(); render(); return Promise.resolve(null);
    }
    if (offline) { lastQuote = null; render(); return Promise.resolve(null); }
    var sent = cartBody();
    sent.replaces = state.token;
    $("total").classList.add("busy");
    inFlight = api("POST", "/till/api/quote", sent).then(function (q) {
      state.token = q.quote_token; save();
      if (again) { return q; }
      lastQuote = q;
      render(); quoteBanners(q);
      if (scanStarted !== null) { timings.push(performance.now() - scanStarted); scanStarted = null; }
      return q;
    }, function (err) {
      if (!again) { lastQuote = null; render(); showError(err); }
      return null;
    }).then(function (q) {
      inFlight = null;
      if (again) { again = false; return requote(); }
      $("total").classList.remove("busy");
      return q;
    });
    return inFlight;
  }
  function releaseToken() {
    if (state.token && !offline) {
      api("POST", "/till/api/release", { token: state.token }).catch(function () {});
    }
    state.token = null; save();
  }
  function quoteBanners(q) {
    clearBanners();
    (q.explanation || []).forEach(function (x) {
      if (x.code === "forced_coupon_unusable" || x.code === "forced_coupon_conflict") {
        banner("error", EN ? x.en : x.zh, t("do_switch"));
      }
    });
    (q.unusable || []).forEach(function (u) {
      if (BANNERED.indexOf(u.reason_code) < 0) { return; }
      var head = (u.name || u.template) + "：" + t("reason_" + u.reason_code);
      banner(u.reason_code === "expired" ? "error" : "info", head, EN ? u.message_en : u.message);
    });
  }
  // Unusable coupons worth a banner: one the customer expects to use (expired) and
  // one a little more spending unlocks; the rest are listed in the member panel.
  var BANNERED = ["expired", "below_threshold", "below_count_threshold"];

  // -- drawing --------------------------------------------------------------------
  function render() {
    renderLines(); renderTotals(); renderMember(); renderPlan();
    $("skip-all-text").textContent = state.skipAll ? t("restore_benefits") : t("skip_benefits");
    $("skip-all").setAttribute("aria-pressed", state.skipAll ? "true" : "false");
    $("points-mode").value = typeof state.points === "number" ? "number" : state.points;
    $("points-number").hidden = typeof state.points !== "number";
    if (typeof state.points === "number") { $("points-number").value = state.points; }
  }
  function renderLines() {
    var body = $("lines");
    body.innerHTML = "";
    var qlines = lastQuote ? lastQuote.lines : [];
    state.lines.forEach(function (l, i) {
      var q = qlines[i];
      var row = el("tr", { "class": i === selected ? "selected" : "", "data-sku": l.sku }, [
        el("td", { text: String(i + 1) }),
        el("td", { "class": "name", text: l.name + (l.manual ? " *" : "") }),
        el("td", { "class": "num", text: yuan(l.unit_price_fen) }),
        el("td", { "class": "qty" }, [
          el("button", { type: "button", "class": "small", tabindex: "-1", "aria-label": t("less"), text: "−",
                         onclick: function () { setQty(i, l.qty - 1); } }),
          el("span", { "class": "q", text: String(l.qty) }),
          el("button", { type: "button", "class": "small", tabindex: "-1", "aria-label": t("more"), text: "+",
                         onclick: function () { setQty(i, l.qty + 1); } })
        ]),
        el("td", { "class": "num discount", text: q && q.discount_fen + q.points_offset_fen ? "-" + yuan(q.discount_fen + q.points_offset_fen) : "" }),
        el("td", { "class": "num", text: yuan(q ? q.payable_fen : l.unit_price_fen * l.qty) }),
        el("td", {}, [el("button", { type: "button", "class": "small remove", tabindex: "-1",
                                     "aria-label": t("remove"), text: "×",
                                     onclick: function () { setQty(i, 0); } })])
      ]);
      body.appendChild(row);
    });
    $("empty-cart").hidden = state.lines.length > 0;
  }
  function shelfTotal() {
    return state.lines.reduce(function (s, l) { return s + l.unit_price_fen * l.qty; }, 0);
  }
  function payable() { return lastQuote && !offline ? lastQuote.payable_fen : shelfTotal(); }
  function renderTotals() {
    var q = offline ? null : lastQuote;
    $("subtotal").textContent = yuan(q ? q.subtotal_fen : shelfTotal());
    $("discount").textContent = q ? "-" + yuan(q.discount_fen) : yuan(0);
    $("points-offset").textContent = q ? "-" + yuan(q.points_offset_fen) + (q.points_redeemed ? " (" + t("points_used", { n: q.points_redeemed }) + ")" : "") : yuan(0);
    $("rounding").textContent = q && q.rounding_fen ? "-" + yuan(q.rounding_fen) : yuan(0);
    $("total").textContent = yuan(payable());
    $("earned").textContent = q ? String(q.points_earned) : "0";
  }
  function renderMember() {
    var m = state.member;
    $("member-none").hidden = !!m;
    $("member-card").hidden = !m;
    if (!m) { return; }
    $("m-name").textContent = m.member.name || t("no_name");
    $("m-phone").textContent = m.member.phone || "";
    $("m-tier").textContent = m.member.tier_name || "";
    $("m-progress").textContent = m.tier_progress ? (EN ? m.tier_progress.message_en : m.tier_progress.message) : "";
    $("m-points").textContent = String(m.points.available);
    $("m-coupons").textContent = String(m.coupons.length);
  }
  function renderPlan() {
    var q = lastQuote;
    var plan = $("plan");
    var applied = $("applied");
    var unusable = $("unusable");
    applied.innerHTML = "";
    unusable.innerHTML = "";
    if (offline) { plan.textContent = t("offline_plan"); return; }
    if (!q) { plan.textContent = state.lines.length ? "" : t("plan_empty"); return; }
    var saving = q.discount_fen + q.points_offset_fen + q.rounding_fen;
    if (state.member) {
      plan.textContent = t("plan_member", { name: state.member.member.name || t("no_name"),
                                            n: state.member.coupons.length, saving: yuan(saving) });
    } else {
      plan.textContent = saving ? t("plan_anonymous_saving", { saving: yuan(saving) }) : t("plan_anonymous");
    }
    if (state.skipAll) { plan.textContent = t("plan_skipped"); }
    (q.explanation || []).forEach(function (x) {
      if (x.code === "forced_coupon_unusable" || x.code === "forced_coupon_conflict") { return; }
      applied.appendChild(el("li", { text: EN ? x.en : x.zh }));
    });
    (q.unusable || []).forEach(function (u) {
      unusable.appendChild(el("li", { "data-coupon": String(u.coupon_id) }, [
        el("strong", { text: (u.name || u.template) + " " }),
        el("span", { text: EN ? u.message_en : u.message })
      ]));
    });
  }

  // -- scanning ------------------------------------------------------------------
  function focusScan() {
    if (!document.querySelector("dialog[open]")) { $("scan").focus(); }
  }
  function onScan(text) {
    var qty = 1;
    var m = /^(\d{1,4})\*(.+)$/.exec(text);
    if (m) { qty = parseInt(m[1], 10); text = m[2]; }
    if (!text) { return; }
    clearBanners();
    if (offline) { return offlineScan(text, qty); }
    api("POST", "/till/api/scan", { text: text }).then(function (found) {
      handleScan(found, text, qty);
    }).catch(function (err) {
      if (err && err.offline) { offlineScan(text, qty); } else { showError(err); }
    });
  }
  function offlineScan(text, qty) {
    var p = offlineItem(text);
    if (p && p.unit !== "kg") { addLine(p, p.price_fen, qty, false); }
    else if (/^\d{11}$/.test(text) || text.length > 14) { banner("warn", t("offline_no_member")); }
    else { askPrice({ sku: text, name: t("unknown_item", { code: text }) }, qty); }
  }
  function handleScan(found, text, qty) {
    var kind = found.kind;
    if (kind === "payment_code") {
      if ($("pay-dialog").open) { takePaymentCode(found); return; }
      banner("warn", t("payment_code_here", { wallet: t("tender_" + found.wallet) }), t("do_payment_code"));
      return;
    }
    if (found.member) { setMember(found.member); return; }
    if (kind === "invalid" || kind === "empty") {
      banner("error", t("err_bad_scan", { text: text }), found.reason || ""); return;
    }
    if (found.product && found.price_fen !== null) { addLine(found.product, found.price_fen, qty, false); return; }
    if (found.product) { askPrice(found.product, qty, true); return; }
    if (found.price_fen !== null && found.price_fen !== undefined) {
      addLine({ sku: found.code, name: t("unknown_item", { code: found.code }) }, found.price_fen, qty, false);
      return;
    }
    if (!/^\d+$/.test(text)) { searchProducts(text, qty); return; }
    askPrice({ sku: found.code || text, name: t("unknown_item", { code: found.code || text }) }, qty);
  }
  function setMember(identified) {
    var before = state.member && state.member.member.id;
    state.member = identified;
    if (before !== identified.member.id) { state.force = []; state.skipAll = false; state.points = "none"; }
    state.skipReason = "";
    save(); render();
    banner("ok", t("member_found", { name: identified.member.name || t("no_name") }));
    if (state.lines.length) { requote(); }
  }
  function searchProducts(text, qty) {
    api("GET", "/till/api/products?q=" + encodeURIComponent(text)).then(function (found) {
      var list = found.data;
      if (!list.length) { banner("error", t("err_no_product", { text: text }), t("do_no_product")); return; }
      if (list.length === 1 && list[0].unit !== "kg") { addLine(list[0], list[0].price_fen, qty, false); return; }
      var box = $("search-results");
      box.innerHTML = "";
      list.forEach(function (p, i) {
        box.appendChild(el("li", {}, [el("button", { type: "button", "data-sku": p.sku,
          text: p.name + "  " + yuan(p.price_fen) + (p.unit === "kg" ? "/kg" : ""),
          onclick: function () {
            closeDialog("search-dialog");
            if (p.unit === "kg") { askPrice(p, qty, true); } else { addLine(p, p.price_fen, qty, false); }
          } })]));
      });
      openDialog("search-dialog");
      var first = box.querySelector("button"); if (first) { first.focus(); }
    }).catch(showError);
  }
  var pricing = null;
  function askPrice(product, qty, known) {
    pricing = { product: product, qty: qty, known: !!known };
    $("price-item").textContent = product.name || product.sku;
    $("price-input").value = "";
    $("price-error").textContent = "";
    openDialog("price-dialog");
    $("price-input").focus();
  }
  function takePrice(event) {
    event.preventDefault();
    var fen = parseYuan($("price-input").value);
    if (fen === null || fen <= 0) {
      $("price-error").textContent = t("err_price");
      $("price-input").setAttribute("aria-invalid", "true");
      return;
    }
    $("price-input").removeAttribute("aria-invalid");
    closeDialog("price-dialog");
    addLine(pricing.product, fen, pricing.qty, !pricing.known);
  }

  // -- the three actions and points ---------------------------------------------------
  function changeMember() {
    if (state.member) { state.member = null; state.force = []; state.skipAll = false; state.points = "none"; }
    save(); render(); requote();
    $("scan").placeholder = t("scan_member");
    focusScan();
  }
  function switchCoupon() {
    if (!state.member || !state.member.coupons.length) { banner("info", t("no_coupons")); return; }
    var box = $("coupon-list");
    box.innerHTML = "";
    var chosen = lastQuote ? (lastQuote.applied || []).map(function (a) { return String(a.coupon_id); }) : [];
    var options = [{ id: "", name: t("best_plan") }].concat(state.member.coupons);
    options.forEach(function (c) {
      var id = String(c.id);
      var checked = state.force.length ? state.force.map(String).indexOf(id) >= 0 : id === "";
      var input = el("input", { type: "radio", name: "coupon", value: id });
      input.checked = checked;
      var note = id && chosen.indexOf(id) >= 0 ? " ✓" : "";
      box.appendChild(el("li", {}, [el("label", {}, [input, el("span", { text: " " + c.name + note })])]));
    });
    openDialog("coupon-dialog");
    var current = box.querySelector("input:checked") || box.querySelector("input");
    current.focus();
  }
  function takeCoupon(event) {
    event.preventDefault();
    var picked = document.querySelector("#coupon-list input:checked");
    closeDialog("coupon-dialog");
    state.force = picked && picked.value ? [parseInt(picked.value, 10)] : [];
    state.skipAll = false;
    save(); requote();
  }
  function toggleSkip() {
    state.skipAll = !state.skipAll;
    save(); render(); requote(); focusScan();
  }
  function pointsChanged() {
    var mode = $("points-mode").value;
    if (mode === "number") {
      var n = parseInt($("points-number").value || "0", 10);
      if (!(n >= 0)) { $("points-number").setAttribute("aria-invalid", "true"); return; }
      $("points-number").removeAttribute("aria-invalid");
      state.points = n;
    } else { state.points = mode; }
    save(); render(); requote();
  }

  // -- paying ----------------------------------------------------------------------
  var METHODS = ["cash", "wechat", "alipay", "bank_card", "other"];
  var tenders = [];
  function startPay() {
    if (!state.lines.length) { banner("info", t("cart_empty")); return; }
    if (CONFIG.require_member && !state.member && !state.skipReason) { askIdentification(); return; }
    var ready = offline ? Promise.resolve(null) : requote();
    ready.then(function (q) {
      if (!offline && !q) { return; }
      tenders = [];
      if (!state.orderNo) {
        var stamp = new Date().toISOString().replace(/[-:TZ.]/g, "").slice(2, 14);
        state.orderNo = "W" + CONFIG.store.code + "-" + CONFIG.terminal.replace(/[^A-Za-z0-9]/g, "") + "-" + stamp +
          Math.floor(Math.random() * 1000).toString().padStart(3, "0");
        save();
      }
      renderPay();
      openDialog("pay-dialog");
      $("tender-amount").focus();
    });
  }
  function remaining() {
    return payable() - tenders.reduce(function (s, x) { return s + x.amount_fen; }, 0);
  }
  function renderPay() {
    $("pay-due").textContent = yuan(payable());
    var list = $("tender-list");
    list.innerHTML = "";
    tenders.forEach(function (x, i) {
      list.appendChild(el("li", {}, [
        el("span", { text: t("tender_" + x.method) + " " + yuan(x.amount_fen) +
                             (x.received ? " (" + t("received") + " " + yuan(x.received) + "，" + t("change") + " " + yuan(x.received - x.amount_fen) + ")" : "") }),
        el("button", { type: "button", "class": "small", text: "×", "aria-label": t("remove"),
                       onclick: function () { tenders.splice(i, 1); renderPay(); } })
      ]));
    });
    var left = remaining();
    $("pay-left").textContent = yuan(left);
    $("tender-amount").value = left > 0 ? (left / 100).toFixed(2) : "";
    $("pay-error").textContent = "";
    $("pay-confirm").disabled = left !== 0;
    var cash = tenders.find(function (x) { return x.received; });
    $("pay-change").textContent = cash ? yuan(cash.received - cash.amount_fen) : yuan(0);
  }
  function addTender(method, reference) {
    var typed = parseYuan($("tender-amount").value);
    var left = remaining();
    if (typed === null || typed <= 0) { $("pay-error").textContent = t("err_amount"); $("tender-amount").focus(); return; }
    if (method !== "cash" && typed > left) { $("pay-error").textContent = t("err_over", { left: yuan(left) }); return; }
    var tender = { method: method, amount_fen: Math.min(typed, left) };
    if (method === "cash" && typed > left) { tender.received = typed; }
    if (method === "cash") { tender.reference = "cash_received=" + typed; }
    if (reference) { tender.reference = reference; }
    tenders.push(tender);
    renderPay();
    if (remaining() === 0) { $("pay-confirm").focus(); } else { $("tender-amount").focus(); }
  }
  function takePaymentCode(found) {
    addTender(found.wallet === "alipay" ? "alipay" : "wechat", "paycode:" + found.text.slice(-6));
  }
  function confirmPay() {
    if (remaining() !== 0) { $("pay-error").textContent = t("err_left", { left: yuan(remaining()) }); return; }
    var order = cartBody();
    order.order_no = state.orderNo;
    order.tenders = tenders.map(function (x) {
      return { method: x.method, amount_fen: x.amount_fen, reference: x.reference || null };
    });
    order.skip_reason = state.member ? "" : state.skipReason;
    if (offline) { return keepOffline(order); }
    var q = lastQuote;
    order.coupon_ids = (q.applied || []).filter(function (a) { return a.coupon_id; })
      .map(function (a) { return parseInt(a.coupon_id, 10); });
    order.points_used = q.points_redeemed;
    order.quote_token = state.token;
    $("pay-confirm").disabled = true;
    api("POST", "/till/api/orders", order).then(function (receipt) {
      closeDialog("pay-dialog");
      finished(receipt, q);
    }).catch(function (err) {
      $("pay-confirm").disabled = false;
      if (err && err.offline) { keepOffline(order); return; }
      if (err.code === "price_changed" && err.detail.fresh_quote) {
        closeDialog("pay-dialog"); lastQuote = err.detail.fresh_quote; render();
      }
      if (err.code === "member_identification_required") { closeDialog("pay-dialog"); askIdentification(); return; }
      var parts = errorText(err);
      $("pay-error").textContent = parts[0] + (parts[1] ? " " + parts[1] : "");
      showError(err);
    });
  }
  function keepOffline(order) {
    order.ordered_at = new Date().toISOString();
    order.points = "none"; order.force = []; order.skip_all = true;
    order.coupon_ids = []; order.points_used = 0; order.quote_token = null;
    var sale = { order_no: order.order_no, store_id: CONFIG.store.id, order: order, kept_at: order.ordered_at };
    salesDo("readwrite", function (s) { s.put(sale); }).then(function () {
      closeDialog("pay-dialog");
      finished(null, null, order);
      updatePending();
    }).catch(function () { $("pay-error").textContent = t("err_keep"); });
  }
  function finished(receipt, q, offlineOrder) {
    var member = state.member;
    var paid = tenders.slice();
    state = fresh(); lastQuote = null; save(); selected = -1; render();
    $("r-order").textContent = receipt ? receipt.order_no : offlineOrder.order_no;
    $("r-paid").textContent = yuan(receipt ? receipt.payable_fen : offlineOrder.tenders.reduce(function (s, x) { return s + x.amount_fen; }, 0));
    var cash = paid.find(function (x) { return x.received; });
    $("r-change-row").hidden = !cash;
    if (cash) { $("r-change").textContent = yuan(cash.received - cash.amount_fen); }
    $("r-offline").hidden = !!receipt;
    $("r-earned-row").hidden = !receipt || !member;
    $("r-balance-row").hidden = true;
    $("r-claim-row").hidden = !(receipt && receipt.claim_token);
    if (receipt) {
      $("r-earned").textContent = String(receipt.points_earned);
      $("r-claim").textContent = receipt.claim_token
        ? t("claim_points", { code: receipt.claim_token, n: q ? q.points_earned : 0 }) : "";
      $("r-print58").href = "/till/receipts/" + encodeURIComponent(receipt.order_no) + "?paper=58";
      $("r-print80").href = "/till/receipts/" + encodeURIComponent(receipt.order_no) + "?paper=80";
      if (member) {
        api("POST", "/till/api/members/" + member.member.id, {}).then(function (m) {
          $("r-balance").textContent = String(m.points.total);
          $("r-balance-row").hidden = false;
        }).catch(function () {});
      }
    }
    $("r-prints").hidden = !receipt;
    openDialog("done-dialog");
    $("r-next").focus();
  }

  // -- identification required ------------------------------------------------------
  function askIdentification() {
    var select = $("skip-reason");
    select.innerHTML = "";
    select.appendChild(el("option", { value: "", text: t("pick_reason") }));
    CONFIG.skip_reasons.forEach(function (r) { select.appendChild(el("option", { value: r, text: r })); });
    $("skip-error").textContent = "";
    openDialog("identify-dialog");
    $("identify-scan").value = "";
    $("identify-scan").focus();
  }
  function identifyInDialog(event) {
    event.preventDefault();
    var text = $("identify-scan").value.trim();
    if (!text) { $("skip-error").textContent = t("scan_member"); return; }
    api("POST", "/till/api/scan", { text: text }).then(function (found) {
      if (!found.member) { $("skip-error").textContent = t("err_not_member"); return; }
      closeDialog("identify-dialog"); setMember(found.member);
    }).catch(function (err) {
      var parts = err instanceof ApiError ? errorText(err) : [t("err_generic"), ""];
      $("skip-error").textContent = parts.join(" ");
    });
  }
  function skipIdentification() {
    var reason = $("skip-reason").value;
    if (!reason) { $("skip-error").textContent = t("err_skip_reason"); $("skip-reason").focus(); return; }
    state.skipReason = reason; save();
    closeDialog("identify-dialog");
    startPay();
  }

  // -- voiding the sale ------------------------------------------------------------------
  function startVoid() {
    if (!state.lines.length && !state.member) { return; }
    openDialog("void-dialog");
    $("void-go").focus();
  }
  function voidSale() {
    closeDialog("void-dialog");
    releaseToken();
    state = fresh(); lastQuote = null; selected = -1; save(); render(); clearBanners();
    banner("ok", t("voided"));
  }

  // -- held carts -----------------------------------------------------------------
  function startHold() {
    if (!state.lines.length) { banner("info", t("cart_empty")); return; }
    var select = $("hold-reason");
    select.innerHTML = "";
    CONFIG.hold_reasons.forEach(function (r) { select.appendChild(el("option", { value: r.code, text: r.label })); });
    $("hold-note").value = "";
    openDialog("hold-dialog");
    select.focus();
  }
  function takeHold(event) {
    event.preventDefault();
    var cart = { lines: state.lines, member_id: state.member ? state.member.member.id : null,
                 points: state.points, force: state.force, skip_all: state.skipAll };
    api("POST", "/till/api/holds", { reason: $("hold-reason").value, note: $("hold-note").value,
                                     member_id: cart.member_id, cart: cart }).then(function (h) {
      closeDialog("hold-dialog");
      releaseToken();
      state = fresh(); lastQuote = null; save(); render();
      banner("ok", t("held", { id: h.id }));
      focusScan();
    }).catch(function (err) { closeDialog("hold-dialog"); showError(err); });
  }
  function showHolds() {
    api("GET", "/till/api/holds").then(function (found) {
      var list = $("hold-list");
      list.innerHTML = "";
      if (!found.data.length) { list.appendChild(el("li", { text: t("no_holds") })); }
      found.data.forEach(function (h) {
        var who = h.member ? h.member.name + " " + h.member.phone : t("anonymous");
        list.appendChild(el("li", {}, [
          el("button", { type: "button", "data-hold": String(h.id),
                         text: "#" + h.id + " " + h.reason_label + " · " + who + " · " + h.terminal + " · " + clock(h.created_at),
                         onclick: function () { resumeHold(h.id); } })
        ]));
      });
      openDialog("holds-dialog");
      var first = list.querySelector("button"); if (first) { first.focus(); }
    }).catch(showError);
  }
  function resumeHold(id) {
    if (state.lines.length) { closeDialog("holds-dialog"); banner("warn", t("finish_first")); return; }
    api("POST", "/till/api/holds/" + id + "/resume", {}).then(function (h) {
      closeDialog("holds-dialog");
      var cart = h.cart || {};
      state = fresh();
      state.lines = cart.lines || [];
      state.points = cart.points || "none";
      state.force = cart.force || [];
      state.skipAll = !!cart.skip_all;
      save();
      var memberId = cart.member_id;
      var ready = memberId ? api("POST", "/till/api/members/" + memberId, {}).then(function (m) { state.member = m; save(); }) : Promise.resolve();
      return ready.then(function () { render(); requote(); banner("ok", t("resumed", { id: h.id })); });
    }).catch(function (err) { closeDialog("holds-dialog"); showError(err); });
  }

  // -- refunds ----------------------------------------------------------------------
  var refundOrder = null;
  function startRefund() {
    refundOrder = null;
    $("refund-no").value = "";
    $("refund-lines").innerHTML = "";
    $("refund-preview").innerHTML = "";
    $("refund-error").textContent = "";
    $("refund-confirm").disabled = true;
    openDialog("refund-dialog");
    $("refund-no").focus();
  }
  function findRefundOrder(event) {
    event.preventDefault();
    var no = $("refund-no").value.trim();
    if (!no) { $("refund-error").textContent = t("err_order_no"); return; }
    api("GET", "/till/api/orders/" + encodeURIComponent(no)).then(function (o) {
      refundOrder = o;
      $("refund-error").textContent = "";
      var body = $("refund-lines");
      body.innerHTML = "";
      (o.lines || []).forEach(function (l) {
        var left = l.qty - (l.refunded_qty || 0);
        body.appendChild(el("tr", {}, [
          el("td", { text: String(l.line_no) }), el("td", { text: l.name || l.sku }),
          el("td", { "class": "num", text: String(l.qty) }),
          el("td", { "class": "num", text: yuan(l.payable_fen) }),
          el("td", {}, [el("input", { type: "number", min: "0", max: String(left), value: "0",
                                      "data-line": String(l.line_no), "class": "refund-qty",
                                      "aria-label": t("refund_qty") })])
        ]));
      });
      $("refund-confirm").disabled = true;
      var first = body.querySelector("input"); if (first) { first.focus(); first.select(); }
    }).catch(function (err) {
      $("refund-error").textContent = err instanceof ApiError ? errorText(err).join(" ") : t("err_generic");
    });
  }
  function refundBody() {
    var lines = [];
    Array.prototype.forEach.call(document.querySelectorAll(".refund-qty"), function (input) {
      var n = parseInt(input.value || "0", 10);
      if (n > 0) { lines.push({ line_no: parseInt(input.dataset.line, 10), qty: n }); }
    });
    return { order_no: refundOrder.order_no, lines: lines, reason: $("refund-reason").value };
  }
  function previewRefund() {
    if (!refundOrder) { return; }
    var sent = refundBody();
    if (!sent.lines.length) { $("refund-error").textContent = t("err_refund_lines"); return; }
    api("POST", "/till/api/refunds/preview", sent).then(function (p) {
      $("refund-error").textContent = "";
      var box = $("refund-preview");
      box.innerHTML = "";
      box.appendChild(el("p", { text: t("refund_amount", { amount: yuan(p.amount_fen) }) }));
      box.appendChild(el("p", { "class": "points-reversed", text: t("refund_points", { n: p.points_reversed }) }));
      if (p.points_returned) { box.appendChild(el("p", { text: t("refund_points_back", { n: p.points_returned }) })); }
      (p.coupon_returns || []).forEach(function (c) {
        box.appendChild(el("p", { text: EN ? c.message_en : c.message }));
      });
      $("refund-confirm").disabled = false;
      $("refund-confirm").focus();
    }).catch(function (err) {
      $("refund-error").textContent = err instanceof ApiError ? errorText(err).join(" ") : t("err_generic");
    });
  }
  function confirmRefund() {
    var sent = refundBody();
    sent.refund_no = "R" + refundOrder.order_no.slice(0, 40) + "-" + Date.now().toString(36);
    $("refund-confirm").disabled = true;
    api("POST", "/till/api/refunds", sent).then(function (r) {
      closeDialog("refund-dialog");
      banner("ok", t("refunded", { amount: yuan(r.amount_fen), n: r.points_reversed }));
    }).catch(function (err) {
      $("refund-confirm").disabled = false;
      $("refund-error").textContent = err instanceof ApiError ? errorText(err).join(" ") : t("err_generic");
    });
  }

  // -- dialogs and keys -----------------------------------------------------------------
  function openDialog(id) { var d = $(id); if (!d.open) { d.showModal(); } }
  function closeDialog(id) { var d = $(id); if (d.open) { d.close(); } focusScan(); }

  var KEYS = { F2: changeMember, F3: switchCoupon, F4: toggleSkip, F6: function () { $("points-mode").focus(); },
               F7: startHold, F8: showHolds, F9: startRefund, F10: startVoid,
               F12: startPay };
  document.addEventListener("keydown", function (event) {
    var action = KEYS[event.key];
    if (action && !document.querySelector("dialog[open]")) { event.preventDefault(); action(); return; }
    if (event.target.id !== "scan" || event.target.value) { return; }
    if (event.key === "ArrowUp" && state.lines.length) { selected = Math.max(0, selected - 1); renderLines(); event.preventDefault(); }
    if (event.key === "ArrowDown" && state.lines.length) { selected = Math.min(state.lines.length - 1, selected + 1); renderLines(); event.preventDefault(); }
    if (event.key === "Delete" && selected >= 0) { setQty(selected, 0); event.preventDefault(); }
    if ((event.key === "+" || event.key === "-") && selected >= 0) {
      setQty(selected, state.lines[selected].qty + (event.key === "+" ? 1 : -1)); event.preventDefault();
    }
  });
  $("scan-form").addEventListener("submit", function (event) {
    event.preventDefault();
    var text = $("scan").value.trim();
    $("scan").value = "";
    $("scan").placeholder = t("scan_placeholder");
    if (!text) { if (state.lines.length) { startPay(); } return; }
    scanStarted = performance.now();
    onScan(text);
  });
  document.querySelectorAll("dialog").forEach(function (d) {
    d.addEventListener("close", focusScan);
  });
  $("change-member").addEventListener("click", changeMember);
  $("switch-coupon").addEventListener("click", switchCoupon);
  $("skip-all").addEventListener("click", toggleSkip);
  $("points-mode").addEventListener("change", pointsChanged);
  $("points-number").addEventListener("change", pointsChanged);
  $("pay").addEventListener("click", startPay);
  $("hold").addEventListener("click", startHold);
  $("resume").addEventListener("click", showHolds);
  $("refund").addEventListener("click", startRefund);
  $("void").addEventListener("click", startVoid);
  $("void-go").addEventListener("click", voidSale);
  $("price-form").addEventListener("submit", takePrice);
  $("coupon-form").addEventListener("submit", takeCoupon);
  $("hold-form").addEventListener("submit", takeHold);
  $("identify-form").addEventListener("submit", identifyInDialog);
  $("skip-go").addEventListener("click", skipIdentification);
  $("refund-find").addEventListener("submit", findRefundOrder);
  $("refund-check").addEventListener("click", previewRefund);
  $("refund-confirm").addEventListener("click", confirmRefund);
  $("pay-confirm").addEventListener("click", confirmPay);
  $("r-next").addEventListener("click", function () { closeDialog("done-dialog"); });
  $("late-close").addEventListener("click", function () { closeDialog("late-dialog"); });
  METHODS.forEach(function (method) {
    $("tender-" + method).addEventListener("click", function () { addTender(method); });
  });
  $("tender-form").addEventListener("submit", function (event) {
    event.preventDefault();
    if (remaining() === 0) { confirmPay(); } else { addTender("cash"); }
  });
  $("tender-amount").addEventListener("keydown", function (event) {
    // a 付款码 scanned into the amount field: take it as that wallet's payment
    var text = event.target.value;
    if (event.key === "Enter" && /^\d{16,24}$/.test(text)) {
      event.preventDefault();
      api("POST", "/till/api/scan", { text: text }).then(function (found) {
        $("tender-amount").value = (remaining() / 100).toFixed(2);
        if (found.kind === "payment_code") { takePaymentCode(found); }
        else { $("pay-error").textContent = t("err_amount"); }
      }).catch(showError);
    }
  });

  // -- start ----------------------------------------------------------------------------
  var kept = false;  // the service worker holds a copy of this page to reopen offline
  if ("serviceWorker" in navigator) {
    navigator.serviceWorker.addEventListener("message", function (event) {
      if (event.data && event.data.kept) { kept = true; }
    });
    navigator.serviceWorker.register("/till-sw.js", { scope: "/till" }).then(function () {
      return navigator.serviceWorker.ready;
    }).then(function (registration) {
      var assets = Array.prototype.map.call(
        document.querySelectorAll("link[rel=stylesheet], script[src]"),
        function (node) { return node.getAttribute("href") || node.getAttribute("src"); });
      registration.active.postMessage({ keep: ["/till"].concat(assets) });
    }).catch(function () {});
  }
  render();
  if (state.lines.length) { requote(); }
  refreshCatalogue();
  uploadLate();
  focusScan();
  // For the tests and the benchmark (bench/bench_till_browser.py): the cart, the
  // last quote, and the time from each scan's Enter to its new total, in ms.
  window.loyalposTill = { state: function () { return state; }, quote: function () { return lastQuote; },
                          timings: function () { return timings; },
                          kept: function () { return kept; } };
})();
