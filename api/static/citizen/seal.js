/* kyso citizen page: checks the offline seal carried in the address (#token) against the issuer's
   public keys, with WebCrypto, and installs the service worker that keeps this check working
   without a connection. ES5 on purpose (no arrows, let/const, template strings, classes or
   async): the in-app browsers of Zalo and Facebook on old Android phones must parse it. */
(function () {
  'use strict';
  var d = document;
  var main = d.getElementById('main');
  if (!main) { return; }
  var lang = d.documentElement.getAttribute('lang') === 'en' ? 'en' : 'vi';
  var T = {
    vi: {
      match_head: 'CON DẤU ĐÚNG',
      match: 'Các thông tin in trên giấy (bên dưới) khớp với con dấu số của cơ quan cấp.',
      bad_head: 'KHÔNG KHỚP',
      mismatch: 'Các thông tin này KHÔNG khớp với con dấu số của cơ quan cấp: giấy tờ có thể đã bị sửa.',
      other_document: 'Con dấu số này thuộc về văn bản khác (mã {0}), không phải văn bản này: giấy tờ có thể đã bị sửa.',
      unknown_key: 'Không nhận ra khóa của con dấu số này, nên không xác nhận được giấy tờ.',
      revoked_key: 'Khóa của con dấu số này đã bị thu hồi, nên không xác nhận được giấy tờ.',
      malformed: 'Mã con dấu trong đường dẫn bị hỏng hoặc thiếu. Hãy quét lại mã QR.',
      cannot_head: 'KHÔNG KIỂM TRA ĐƯỢC',
      nocrypto: 'Không kiểm tra được con dấu số trên thiết bị này (trình duyệt quá cũ hoặc kết nối không an toàn). Hãy mở đường dẫn bằng Chrome hoặc Safari.',
      nokeys: 'Chưa tải được khóa của cơ quan cấp nên chưa kiểm tra được con dấu số. Hãy thử lại khi có mạng.',
      noseal: 'Đường dẫn này không có con dấu số. Hãy quét mã QR trên giấy tờ.',
      offline_only: 'Không có mạng: đây chỉ là kết quả kiểm tra con dấu số, chưa kiểm tra sổ đăng ký và tình trạng thu hồi.',
      f_id: 'Mã văn bản', f_type: 'Loại văn bản', f_commune: 'Cơ quan cấp', f_date: 'Ngày ký',
      f_log: 'Mục số trong sổ công khai'
    },
    en: {
      match_head: 'SEAL MATCHES',
      match: 'The printed facts (below) match the issuer\'s digital seal.',
      bad_head: 'DOES NOT MATCH',
      mismatch: 'These facts do NOT match the issuer\'s digital seal: the paper may have been altered.',
      other_document: 'This seal belongs to another document (id {0}), not this one: the paper may have been altered.',
      unknown_key: 'The key of this seal is not known, so the paper cannot be confirmed.',
      revoked_key: 'The key of this seal was revoked, so the paper cannot be confirmed.',
      malformed: 'The seal code in the address is damaged or incomplete. Scan the QR code again.',
      cannot_head: 'COULD NOT CHECK',
      nocrypto: 'The seal could not be checked on this device (the browser is too old or the connection is not secure). Open the link in Chrome or Safari.',
      nokeys: 'The issuer\'s keys could not be loaded, so the seal was not checked yet. Try again when online.',
      noseal: 'This address carries no digital seal. Scan the QR code on the paper.',
      offline_only: 'No connection: this is the seal check only; the registry and revocation status were not checked.',
      f_id: 'Document id', f_type: 'Document type', f_commune: 'Issued by', f_date: 'Signing date',
      f_log: 'Public log entry'
    }
  }[lang];
  var ID = /^\/v\/([2-9A-HJ-NP-Z]{12})$/i;
  var m = ID.exec(location.pathname);
  var pathId = m ? m[1].toUpperCase() : null;
  var offline = main.getAttribute('data-offline') === 'true';

  function $(id) { return d.getElementById(id); }
  function text(el, value) { el.innerHTML = ''; el.appendChild(d.createTextNode(value)); }

  // the language switch keeps the seal (the fragment) and the document id
  var switcher = $('lang-switch');
  if (switcher && pathId) {
    switcher.href = '/v/' + pathId + '?lang=' + (lang === 'en' ? 'vi' : 'en') + location.hash;
  }
  if (offline && pathId) { text($('doc-id'), pathId); }

  if ('serviceWorker' in navigator) {
    try { navigator.serviceWorker.register('/v/sw.js', {scope: '/v/'})['catch'](function () {}); } catch (e) {}
  }

  var box = $('seal');
  var token = (location.hash || '').replace(/^#/, '');
  if (!box) { return; }
  if (!token) {
    if (offline) { box.className = ''; show('warn', 'noseal', T.cannot_head, T.noseal); }
    return;
  }
  box.className = '';

  function show(tone, key, head, message) {
    var result = $('seal-result');
    var status = $('status');
    // one verdict colour per visit: online, the registry's box is the verdict and the seal's box stays
    // neutral, unless the paper's seal does not match, which then becomes the one (red) verdict
    if (!offline && tone !== 'bad') { tone = 'plain'; }
    if (!offline && tone === 'bad' && status && status.hasAttribute('data-verdict')) {
      status.className = 'box plain';
      status.removeAttribute('data-verdict');
      result.setAttribute('data-verdict', '');
    }
    result.className = 'box ' + tone;
    result.setAttribute('data-result', key);
    result.innerHTML = '';
    var p = d.createElement('p');
    var badge = d.createElement('span');
    badge.className = 'badge';
    badge.appendChild(d.createTextNode(head));
    p.appendChild(badge);
    result.appendChild(p);
    var q = d.createElement('p');
    var b = d.createElement('b');
    b.appendChild(d.createTextNode(message));
    q.appendChild(b);
    result.appendChild(q);
    if (offline) {
      var o = d.createElement('p');
      o.className = 'offline-note';
      o.appendChild(d.createTextNode(T.offline_only));
      result.appendChild(o);
    }
  }

  function fact(list, label, value) {
    var dt = d.createElement('dt');
    var dd = d.createElement('dd');
    dt.appendChild(d.createTextNode(label));
    dd.appendChild(d.createTextNode(value));
    list.appendChild(dt);
    list.appendChild(dd);
    return dd;
  }

  function b64url(s) {
    if (!/^[A-Za-z0-9_-]+$/.test(s)) { return null; }
    s = s.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) { s += '='; }
    try { return atob(s); } catch (e) { return null; }
  }

  function bytes(bin) {
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) { out[i] = bin.charCodeAt(i); }
    return out;
  }

  /* KS2 (signing/create/offline_seal.py): "KS2:" + base42(payload || signature), a binary payload */
  var B42 = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ$*-./:';
  var ID_ALPHABET = '23456789ABCDEFGHJKLMNPQRSTUVWXYZ';
  var CODES = ['marital-status-certificate', 'certified-copy', 'construction-permit', 'land-procedure-result',
    'dossier-result', 'holder', 'reg_no', 'cert_no', 'original', 'permit_no', 'owner', 'site', 'doc_no',
    'parcel', 'dossier_no', 'applicant', 'log'];
  var TEXT = '';
  for (var c = 32; c < 127; c++) { TEXT += String.fromCharCode(c); }
  TEXT += 'àáảãạăằắẳẵặâầấẩẫậèéẻẽẹêềếểễệìíỉĩịòóỏõọôồốổỗộơờớởỡợùúủũụưừứửữựỳýỷỹỵđ' +
    'ÀÁẢÃẠĂẰẮẲẴẶÂẦẤẨẪẬÈÉẺẼẸÊỀẾỂỄỆÌÍỈĨỊÒÓỎÕỌÔỒỐỔỖỘƠỜỚỞỠỢÙÚỦŨỤƯỪỨỬỮỰỲÝỶỸỴĐ';

  function base42(s) {
    if (s.length % 3 === 1) { return null; }
    var out = '';
    for (var i = 0; i < s.length; i += 3) {
      var n = 0;
      var width = Math.min(3, s.length - i);
      for (var k = width - 1; k >= 0; k--) {
        var v = B42.indexOf(s.charAt(i + k));
        if (v < 0) { return null; }
        n = n * 42 + v;
      }
      if (width === 3) {
        if (n > 65535) { return null; }
        out += String.fromCharCode(n >> 8, n & 255);
      } else {
        if (n > 255) { return null; }
        out += String.fromCharCode(n);
      }
    }
    return out;
  }

  function parse2(raw) {
    var bin = base42(raw.substring(4));
    if (bin === null || bin.length < 1 + 6 + 8 + 2 + 2 + 64) { return null; }
    var payload = bin.substring(0, bin.length - 64);
    var at = 0;
    function take(n) {
      if (at + n > payload.length) { throw new Error('short'); }
      at += n;
      return payload.substring(at - n, at);
    }
    function name() {
      var b = take(1).charCodeAt(0);
      if (b >= 128) {
        if (b - 128 >= CODES.length) { throw new Error('code'); }
        return CODES[b - 128];
      }
      if (b === 127) {
        var n = varint();
        if (n > 99999) { throw new Error('digits'); }
        return String(100000 + n).substring(1);
      }
      return take(b);
    }
    function textValue() {
      var size = varint();
      var raw = take(Math.floor(size / 2));
      if (size % 2 === 0) { return decodeURIComponent(escape(raw)); }
      var out = '';
      for (var i = 0; i < raw.length; i++) {
        var k = raw.charCodeAt(i);
        if (k >= TEXT.length) { throw new Error('text'); }
        out += TEXT.charAt(k);
      }
      return out;
    }
    function varint() {
      var n = 0;
      var scale = 1;
      for (var i = 0; i < 3; i++) {
        var b = take(1).charCodeAt(0);
        n += (b & 127) * scale;
        if (b < 128) { return n; }
        scale *= 128;
      }
      throw new Error('varint');
    }
    try {
      if (take(1).charCodeAt(0) !== 2) { return null; }
      var kid = btoa(take(6)).replace(/\+/g, '-').replace(/\//g, '_');
      var idBytes = take(8);
      var bits = '';
      for (var i = 0; i < 8; i++) { bits += (256 + idBytes.charCodeAt(i)).toString(2).substring(1); }
      if (bits.substring(0, 4) !== '0000') { return null; }
      var id = '';
      for (var j = 4; j < 64; j += 5) { id += ID_ALPHABET.charAt(parseInt(bits.substring(j, j + 5), 2)); }
      var days = take(1).charCodeAt(0) * 256 + take(1).charCodeAt(0);
      var date = new Date(Date.UTC(2000, 0, 1) + days * 86400000);
      var mm = date.getUTCMonth() + 1;
      var dd = date.getUTCDate();
      var ymd = String(date.getUTCFullYear()) + (mm < 10 ? '0' : '') + mm + (dd < 10 ? '0' : '') + dd;
      var type = name();
      var commune = name();
      var named = [];
      while (at < payload.length) {
        var key = name();
        named.push([key, textValue()]);
      }
    } catch (e) { return null; }
    return {kid: kid, id: id, type: type, commune: commune, date: ymd, named: named, payload: payload,
            sig: bin.substring(bin.length - 64)};
  }

  function parse(raw) {
    if (raw.substring(0, 4) === 'KS2:') { return parse2(raw); }
    var parts = raw.split('.');
    if (parts.length !== 2) { return null; }
    var payload = b64url(parts[0]);
    var sig = b64url(parts[1]);
    if (payload === null || sig === null || sig.length !== 64) { return null; }
    var textValue;
    try { textValue = decodeURIComponent(escape(payload)); } catch (e) { return null; }
    var f = textValue.split('\u001f');
    if (f.length < 6 || f[0] !== 'KS1' || !/^\d{8}$/.test(f[5])) { return null; }
    var named = [];
    for (var i = 6; i < f.length; i++) {
      var k = f[i].indexOf('=');
      if (k > 0) { named.push([f[i].substring(0, k), f[i].substring(k + 1)]); }
    }
    return {kid: f[1], id: f[2], type: f[3], commune: f[4], date: f[5], named: named, payload: payload, sig: sig};
  }

  function getJSON(url, done) {
    var x = new XMLHttpRequest();
    var called = false;
    function finish(value) { if (!called) { called = true; done(value); } }
    x.onreadystatechange = function () {
      if (x.readyState !== 4) { return; }
      var body = null;
      if (x.status === 200) { try { body = JSON.parse(x.responseText); } catch (e) { body = null; } }
      finish(body);
    };
    try { x.open('GET', url, true); x.send(); } catch (e) { finish(null); }
  }

  function showFacts(seal, meta) {
    var list = $('seal-facts');
    var type = meta && meta.document_types && meta.document_types[seal.type];
    list.innerHTML = '';
    fact(list, T.f_id, seal.id);
    fact(list, T.f_type, type ? type['title_' + lang] : seal.type);
    var commune = fact(list, T.f_commune, seal.commune);
    if (main.getAttribute('data-commune-code') === seal.commune) {
      text(commune, main.getAttribute('data-commune-name'));
    } else {
      getJSON('/v/units.json', function (provinces) {
        for (var code in provinces) {
          if (provinces.hasOwnProperty(code) && provinces[code][1][seal.commune]) {
            text(commune, provinces[code][1][seal.commune] + ', ' + provinces[code][0]);
          }
        }
      });
    }
    fact(list, T.f_date, seal.date.substring(6, 8) + '/' + seal.date.substring(4, 6) + '/' + seal.date.substring(0, 4));
    var labels = {log: T.f_log};
    var specs = (type && type.seal_fields) || [];
    for (var i = 0; i < specs.length; i++) { labels[specs[i].name] = specs[i]['label_' + lang] || specs[i].name; }
    for (var j = 0; j < seal.named.length; j++) {
      fact(list, labels[seal.named[j][0]] || seal.named[j][0], seal.named[j][1]);
    }
  }

  /* an ISO instant as YYYYMMDD in Vietnam time (UTC+7, no daylight saving), like the seal's date */
  function day(iso) {
    var t = iso ? Date.parse(iso) : NaN;
    if (isNaN(t)) { return null; }
    var v = new Date(t + 7 * 3600 * 1000);
    var m = v.getUTCMonth() + 1;
    var dd = v.getUTCDate();
    return String(v.getUTCFullYear()) + (m < 10 ? '0' : '') + m + (dd < 10 ? '0' : '') + dd;
  }

  function check(seal, meta) {
    var keys = (meta && meta.keys) || [];
    var key = null;
    for (var i = 0; i < keys.length; i++) { if (keys[i].kid === seal.kid) { key = keys[i]; } }
    if (!key || key.alg !== 'ES256' || !key.jwk) { return show('bad', 'unknown_key', T.bad_head, T.unknown_key); }
    if (key.status === 'revoked' || key.status === 'on_hold') { return show('bad', 'revoked_key', T.bad_head, T.revoked_key); }
    var from = day(key.not_before);
    var until = day(key.not_after);
    if ((from && seal.date < from) || (until && seal.date > until)) {
      return show('bad', 'unknown_key', T.bad_head, T.unknown_key);
    }
    var subtle = window.crypto && window.crypto.subtle;
    if (!subtle || typeof Uint8Array === 'undefined') { return show('warn', 'nocrypto', T.cannot_head, T.nocrypto); }
    var jwk = {kty: key.jwk.kty, crv: key.jwk.crv, x: key.jwk.x, y: key.jwk.y};
    var pending;
    try {
      pending = subtle.importKey('jwk', jwk, {name: 'ECDSA', namedCurve: 'P-256'}, false, ['verify'])
        .then(function (publicKey) {
          return subtle.verify({name: 'ECDSA', hash: {name: 'SHA-256'}}, publicKey, bytes(seal.sig), bytes(seal.payload));
        });
    } catch (e) {
      return show('warn', 'nocrypto', T.cannot_head, T.nocrypto);
    }
    pending.then(function (ok) {
      if (!ok) { return show('bad', 'mismatch', T.bad_head, T.mismatch); }
      if (pathId && seal.id !== pathId) {
        return show('bad', 'other_document', T.bad_head, T.other_document.replace('{0}', seal.id));
      }
      show('ok', 'match', T.match_head, T.match);
    }, function () {
      show('warn', 'nocrypto', T.cannot_head, T.nocrypto);
    });
  }

  var seal = parse(token);
  if (!seal) { return show('bad', 'malformed', T.bad_head, T.malformed); }
  if (offline && !pathId) { text($('doc-id'), seal.id); }
  getJSON('/v/keys.json', function (meta) {
    showFacts(seal, meta);
    if (!meta) { return show('warn', 'nokeys', T.cannot_head, T.nokeys); }
    check(seal, meta);
  });
}());
