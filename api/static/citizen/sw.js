/* kyso citizen pages: a service worker (scope /v/) that keeps the offline-seal check working
   without a connection. It caches the offline page, the seal script, the issuer's keys and the
   commune names; a QR address opened offline gets the offline page, which checks the seal only. */
var CACHE = 'kyso-v-__VERSION__';
var SHELL = ['/v/offline?lang=vi', '/v/offline?lang=en', '/v/seal.js', '/v/keys.json', '/v/units.json'];
var FRESH = {'/v/seal.js': true, '/v/keys.json': true, '/v/units.json': true};
var DOCUMENT = /^\/v\/[2-9A-HJ-NP-Z]{12}$/i;

self.addEventListener('install', function (event) {
  event.waitUntil(caches.open(CACHE).then(function (cache) {
    return cache.addAll(SHELL);
  }).then(function () {
    return self.skipWaiting();
  }));
});

self.addEventListener('activate', function (event) {
  event.waitUntil(caches.keys().then(function (names) {
    return Promise.all(names.filter(function (name) {
      return name.indexOf('kyso-v-') === 0 && name !== CACHE;
    }).map(function (name) {
      return caches['delete'](name);
    }));
  }).then(function () {
    return self.clients.claim();
  }));
});

/* network first (keys may rotate), the cached copy when there is no connection */
function fresh(request, key) {
  return fetch(request).then(function (response) {
    if (response.ok) {
      var copy = response.clone();
      caches.open(CACHE).then(function (cache) { return cache.put(key, copy); });
    }
    return response;
  }, function () {
    return caches.match(key).then(function (hit) { return hit || Response.error(); });
  });
}

self.addEventListener('fetch', function (event) {
  var request = event.request;
  if (request.method !== 'GET') { return; }
  var url = new URL(request.url);
  if (url.origin !== self.location.origin) { return; }
  if (FRESH[url.pathname]) {
    event.respondWith(fresh(request, url.pathname));
    return;
  }
  if (request.mode === 'navigate' && DOCUMENT.test(url.pathname)) {
    var shell = '/v/offline?lang=' + (url.searchParams.get('lang') === 'en' ? 'en' : 'vi');
    event.respondWith(fetch(request)['catch'](function () {
      return caches.match(shell).then(function (hit) { return hit || Response.error(); });
    }));
  }
});
