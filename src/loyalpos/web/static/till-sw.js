// loyalpos till service worker: the selling screen opens again when the server
// is away (a reload mid-outage), from the copy kept at its last load; its
// scripts and styles are kept by their hashed URLs. Nothing else is cached: the
// sales made meanwhile are in IndexedDB, written by the page itself.
var CACHE = "loyalpos-till-v1";

self.addEventListener("install", function () { self.skipWaiting(); });
self.addEventListener("activate", function (event) { event.waitUntil(self.clients.claim()); });

// The page names what to keep (itself and its scripts and styles) once it has
// loaded: its first load came before this worker was there to see it.
self.addEventListener("message", function (event) {
  var urls = (event.data && event.data.keep) || [];
  var source = event.source;
  event.waitUntil(caches.open(CACHE).then(function (cache) {
    return Promise.all(urls.map(function (url) {
      return fetch(url, { credentials: "same-origin" }).then(function (response) {
        if (response.ok && !response.redirected) { return cache.put(url, response); }
        throw new Error("not kept: " + url);
      });
    }));
  }).then(function () {
    if (source) { source.postMessage({ kept: true }); }
  }, function () {}));
});

self.addEventListener("fetch", function (event) {
  var request = event.request;
  if (request.method !== "GET") { return; }
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) { return; }
  if (request.mode === "navigate" && url.pathname === "/till") {
    var kept = function (fallback) {
      return caches.match("/till").then(function (copy) { return copy || fallback; });
    };
    event.respondWith(fetch(request).then(function (response) {
      if (response.ok && !response.redirected) {
        var copy = response.clone();
        caches.open(CACHE).then(function (cache) { cache.put("/till", copy); });
        return response;
      }
      // the server is up but its database is not: the kept page sells offline
      return response.status >= 500 ? kept(response) : response;
    }, function () {
      return kept(new Response("offline", { status: 503, headers: { "Content-Type": "text/plain" } }));
    }));
    return;
  }
  if (url.pathname.indexOf("/static/") === 0) {
    event.respondWith(caches.match(request).then(function (kept) {
      return kept || fetch(request).then(function (response) {
        if (response.ok) {
          var copy = response.clone();
          caches.open(CACHE).then(function (cache) { cache.put(request, copy); });
        }
        return response;
      });
    }));
  }
});
