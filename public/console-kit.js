// What the operators' dashboard (/admin) and a user's own page (/me) share: building the DOM from
// data as text only, numbers, calls of our API with a bearer token, errors shown next to the field
// they name, and an accessible confirmation dialog. No framework; nothing here keeps data.
(function () {
  'use strict';

  function el(tag, className, text) {
    var node = document.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }
  function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); }

  // Names (users, projects, models, scopes) come from admins and clients. A control character or a
  // bidi override is shown as an escape (`\x1b`), never left to act on the text around it, and a
  // name is cut with "…" so that a 100 KB one cannot bury the page (the CSS keeps it from widening it).
  var UNSAFE = /[\u0000-\u001f\u007f-\u009f\u2028\u2029\u202a-\u202e\u2066-\u2069]/g;
  var NAME_CHARS = 60;
  var TITLE_CHARS = 1000;
  function visibleEscape(ch) {
    var code = ch.charCodeAt(0);
    return code <= 0xff ? '\\x' + ('0' + code.toString(16)).slice(-2) : '\\u' + code.toString(16);
  }
  function shown(text, maxChars) {
    var safe = String(text).replace(UNSAFE, visibleEscape);
    var max = maxChars || NAME_CHARS;
    if (safe.length <= max) return safe;
    var cut = safe.slice(0, max - 1);
    return (/[\ud800-\udbff]$/.test(cut) ? cut.slice(0, -1) : cut) + '…';
  }
  /** A cell or span with a name cut to fit, and the whole of it (up to 1,000 characters) as its tooltip. */
  function nameNode(tag, className, text) {
    var node = el(tag, className, shown(text));
    node.title = shown(text, TITLE_CHARS);
    return node;
  }

  var intFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
  var pctFormat = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1 });
  var usdFormat = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', minimumFractionDigits: 2, maximumFractionDigits: 2 });
  var smallUsdFormat = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD', maximumSignificantDigits: 2 });
  function tokens(n) { return intFormat.format(n); }
  function usd(n) { return usdFormat.format(n); }
  /** Dollars with cents, and two significant digits below a cent (a single request often costs less). */
  function cost(n) { return n > 0 && n < 0.01 ? smallUsdFormat.format(n) : usdFormat.format(n); }
  function pct(n) { return pctFormat.format(n); }
  function amount(n, unit) { return unit === 'usd' ? usd(n) : tokens(n) + ' tokens'; }

  function HttpError(status, message) { this.status = status; this.message = message; }

  /**
   * One call of our API. The token goes in the Authorization header only: never in a URL (which
   * logs and history keep), and no cookie is involved, so another site cannot ride along.
   */
  function api(token, method, path, body, asText) {
    var init = { method: method, headers: { Authorization: 'Bearer ' + token }, cache: 'no-store' };
    if (body !== undefined) {
      init.headers['Content-Type'] = 'application/json';
      init.body = JSON.stringify(body);
    }
    return fetch(path, init).then(function (r) {
      if (!r.ok) {
        return r.text().then(function (text) {
          var detail = text;
          try { detail = JSON.parse(text).error.message; } catch (e) { /* not our error shape */ }
          throw new HttpError(r.status, String(detail));
        });
      }
      return asText ? r.text() : r.json();
    });
  }

  // ---- errors next to the fields they name ------------------------------------------------------

  /** "window.timeZone: unknown …; limitTokens: …" → [{field: 'window.timeZone', text}, …]; a part without a field has field null. */
  function problemsOf(message) {
    // Parts are joined with "; " (see describeZodError); a "; " inside one part is not followed by a field name.
    return String(message).split(/; (?=[A-Za-z]\w*(?:\.\w+)*: )/).map(function (part) {
      var m = /^([A-Za-z][\w]*(?:\.[\w]+)*): ([\s\S]*)$/.exec(part);
      return m && m[1] !== 'body' && m[1] !== 'query' ? { field: m[1], text: m[2] } : { field: null, text: part };
    });
  }

  /** The form's control for a field the API names, or for the nearest field it is part of (`fallback.0.to` → `fallback`). */
  function controlFor(form, field) {
    var path = field.split('.');
    while (path.length > 0) {
      var found = form.querySelector('[data-field="' + path.join('.') + '"]:not([hidden])');
      if (found && !found.closest('[hidden]')) return found;
      path.pop();
    }
    return null;
  }

  function slotFor(form, control) {
    var id = (control.id || control.getAttribute('data-field').replace(/\W/g, '-')) + '-error';
    var slot = document.getElementById(id);
    if (!slot) {
      slot = el('p', 'field-error');
      slot.id = id;
      (control.closest('.field') || control.parentNode).appendChild(slot);
    }
    var described = (control.getAttribute('aria-describedby') || '').split(' ').filter(Boolean);
    if (described.indexOf(id) < 0) control.setAttribute('aria-describedby', described.concat(id).join(' '));
    return slot;
  }

  function formMessage(form, className, role) {
    var node = form.querySelector(':scope > .' + className);
    if (!node) {
      node = el('p', className);
      node.setAttribute('role', role);
      form.appendChild(node);
    }
    return node;
  }

  function clearProblems(form) {
    Array.prototype.forEach.call(form.querySelectorAll('.field-error'), function (slot) { slot.textContent = ''; slot.hidden = true; });
    Array.prototype.forEach.call(form.querySelectorAll('[aria-invalid]'), function (c) { c.removeAttribute('aria-invalid'); });
    var general = form.querySelector(':scope > .form-error');
    if (general) { general.textContent = ''; general.hidden = true; }
  }

  /** Shows an API error in `form`: each part beside the field it names, the rest under the form; focuses the first field named. */
  function showProblems(form, error) {
    clearProblems(form);
    var message = error instanceof HttpError ? error.message : 'Could not reach the server: ' + (error && error.message ? error.message : String(error));
    var first = null;
    var rest = [];
    problemsOf(message).forEach(function (p) {
      var control = p.field === null ? null : controlFor(form, p.field);
      if (!control) { rest.push(p.field === null ? p.text : p.field + ': ' + p.text); return; }
      var slot = slotFor(form, control);
      slot.textContent = shown((slot.textContent ? slot.textContent + ' ' : '') + p.text, 400);
      slot.hidden = false;
      control.setAttribute('aria-invalid', 'true');
      if (!first) first = control;
    });
    if (rest.length > 0) {
      var general = formMessage(form, 'form-error', 'alert');
      general.textContent = shown(rest.join('; '), 400);
      general.hidden = false;
    }
    if (first) first.focus();
  }

  function showDone(form, text) {
    var status = formMessage(form, 'form-status', 'status');
    status.textContent = text;
  }

  /**
   * Runs an API call for a form or a button: the trigger is disabled meanwhile, errors go next to
   * their fields (or under the form), and `done` gets the answer. Returns the call's promise.
   */
  function submit(form, trigger, call, done) {
    clearProblems(form);
    showDone(form, '');
    if (trigger) trigger.disabled = true;
    return call().then(function (answer) {
      if (trigger) trigger.disabled = false;
      return done(answer);
    }, function (error) {
      if (trigger) trigger.disabled = false;
      showProblems(form, error);
    });
  }

  // ---- confirming what cannot be undone -----------------------------------------------------------

  /**
   * Asks in the page's modal <dialog> (focus stays inside it, Escape cancels, focus returns to what
   * was focused before). Resolves true only when the confirm button was pressed.
   */
  function confirmAction(options) {
    var dialog = document.getElementById('confirm-dialog');
    var ok = document.getElementById('confirm-ok');
    var cancel = document.getElementById('confirm-cancel');
    var before = document.activeElement;
    document.getElementById('confirm-title').textContent = options.title;
    document.getElementById('confirm-text').textContent = options.text;
    ok.textContent = options.confirm;
    return new Promise(function (resolve) {
      function finish(answer) {
        ok.removeEventListener('click', yes);
        cancel.removeEventListener('click', no);
        dialog.removeEventListener('close', no);
        if (dialog.open) dialog.close();
        if (before && typeof before.focus === 'function' && document.contains(before)) before.focus();
        resolve(answer);
      }
      function yes() { finish(true); }
      function no() { finish(false); }
      ok.addEventListener('click', yes);
      cancel.addEventListener('click', no);
      dialog.addEventListener('close', no); // Escape
      dialog.showModal();
      cancel.focus(); // the safe choice first
    });
  }

  /** Copies text to the clipboard; where the Clipboard API is missing (plain http), through a selected field. */
  function copyText(text, field) {
    if (navigator.clipboard && window.isSecureContext) return navigator.clipboard.writeText(text);
    return new Promise(function (resolve, reject) {
      field.focus();
      field.select();
      if (document.execCommand('copy')) resolve(); else reject(new Error('copy is not allowed here: select the key and copy it by hand'));
    });
  }

  window.lqKit = {
    el: el,
    clear: clear,
    shown: shown,
    nameNode: nameNode,
    TITLE_CHARS: TITLE_CHARS,
    tokens: tokens,
    usd: usd,
    cost: cost,
    pct: pct,
    amount: amount,
    HttpError: HttpError,
    api: api,
    problemsOf: problemsOf,
    showProblems: showProblems,
    clearProblems: clearProblems,
    showDone: showDone,
    submit: submit,
    confirmAction: confirmAction,
    copyText: copyText,
  };
})();
