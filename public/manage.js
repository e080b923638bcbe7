// The dashboard's management views: people (projects, users, their external ids, keys and budgets),
// keys, budgets, holds and alerts. Every change is one call of the admin API, after which the whole
// page is read again from the API (dashboard.js's load): the page keeps no state of its own. What
// can't be undone asks first. Errors go next to the field the API's message names.
(function () {
  'use strict';

  var kit = window.lqKit;
  var el = kit.el;
  var clear = kit.clear;
  var shown = kit.shown;
  var $ = function (id) { return document.getElementById(id); };

  // What the last load drew from, and where the page is: a cache of the API's answers, not a source.
  var current = { data: null, token: null, view: 'overview', arg: '' };
  // Which user the rename form was last filled for, so a reload does not overwrite what is being typed.
  var filledFor = '';
  // Whether the current route's presets (a user for a new key, a scope for a new budget) were applied.
  var routeApplied = false;

  function call(method, path, body) { return kit.api(current.token, method, path, body); }
  function reload() { return window.lqAdmin.reload(); }
  function enc(id) { return encodeURIComponent(id); }
  function each(list, fn) { Array.prototype.forEach.call(list, fn); }

  // ---- small builders ------------------------------------------------------------------------------

  function option(value, label) {
    var o = el('option', null, label);
    o.value = value;
    return o;
  }

  /** Replaces a select's options, keeping its value when it is still one of them (else `fallback`). */
  function fillSelect(select, options, fallback) {
    var before = select.value;
    clear(select);
    options.forEach(function (o) { select.appendChild(option(o.value, o.label)); });
    var values = options.map(function (o) { return o.value; });
    if (values.indexOf(before) >= 0) select.value = before;
    else if (fallback !== undefined && values.indexOf(fallback) >= 0) select.value = fallback;
  }

  function button(text, className, label) {
    var b = el('button', className, text);
    b.type = 'button';
    if (label) b.setAttribute('aria-label', label);
    return b;
  }

  /** A table row whose cells carry their column's name, for the stacked layout of narrow screens. */
  function row(table, cells) {
    // An actions column's heading is for screen readers only: its buttons say what they do.
    var heads = Array.prototype.map.call(table.tHead.rows[0].cells, function (th) { return th.querySelector('.visually-hidden') ? '' : th.textContent; });
    var tr = el('tr');
    cells.forEach(function (cell, i) {
      var td = cell instanceof Node && cell.nodeName === 'TD' ? cell : el('td');
      if (!(cell instanceof Node)) td.textContent = cell === null || cell === undefined ? '' : String(cell);
      else if (td !== cell) td.appendChild(cell);
      if (heads[i]) td.setAttribute('data-label', heads[i]);
      tr.appendChild(td);
    });
    table.tBodies[0].appendChild(tr);
    return tr;
  }

  function emptyRow(table, text) {
    var tr = el('tr');
    var td = el('td', 'muted', text);
    td.colSpan = table.tHead.rows[0].cells.length;
    tr.appendChild(td);
    table.tBodies[0].appendChild(tr);
  }

  function who(user) { return user.name !== user.id ? shown(user.name) + ' (' + shown(user.id) + ')' : shown(user.id); }
  function when(iso) { return iso ? iso.replace('T', ' ').slice(0, 16) + ' UTC' : ''; }
  function byId(list) {
    var map = {};
    list.forEach(function (x) { map[x.id] = x; });
    return map;
  }

  function windowLabel(w) {
    if (w.kind === 'rolling') return 'rolling ' + w.hours + ' h';
    if (w.kind === 'total') return 'all time';
    return { day: 'daily', week: 'weekly', month: 'monthly' }[w.kind] + ' (' + w.timeZone + ')';
  }
  function limitLabel(b) {
    var parts = [];
    if (b.limitTokens !== null && b.limitTokens !== undefined) parts.push(kit.tokens(b.limitTokens) + ' tokens');
    if (b.limitUsd !== null && b.limitUsd !== undefined) parts.push(kit.usd(b.limitUsd));
    return parts.join(' · ');
  }
  function atLimitLabel(b) {
    if (b.fallback && b.fallback.length > 0) return 'route ' + b.fallback.map(function (r) { return 'at ' + r.at + ' % → ' + shown(r.to); }).join(', ');
    if (b.onLimit === 'downgrade') return 'downgrade to ' + shown(b.downgradeTo || '?');
    return b.onLimit || 'reject';
  }

  // ---- people ----------------------------------------------------------------------------------------

  function drawProjects(data) {
    var table = $('projects-table');
    clear(table.tBodies[0]);
    if (data.projects.length === 0) emptyRow(table, 'No projects yet.');
    data.projects.forEach(function (p) {
      var members = data.users.filter(function (u) { return u.projectId === p.id; }).length;
      var tr = row(table, [kit.nameNode('td', 'who', p.name), kit.nameNode('td', null, p.id), el('td', 'num', kit.tokens(members))]);
      tr.dataset.project = p.id;
    });
    var projects = data.projects.map(function (p) { return { value: p.id, label: p.name !== p.id ? shown(p.name) + ' (' + shown(p.id) + ')' : shown(p.id) }; });
    fillSelect($('rename-project-id'), projects);
    fillSelect($('new-user-project'), [{ value: '', label: 'No project' }].concat(projects), '');
  }

  // A LobeChat server sharing one key brings every one of its users in: the table shows the first
  // ones (by id) and says how many there are; the CLI and the admin API list them all.
  var USER_ROWS = 200;

  function keyLine(k) {
    var parts = [shown(k.name), shown(k.prefix) + '…'];
    if (k.service) parts.push('service');
    parts.push(k.refusalStyle === 'answer' ? 'refusals as answers' : k.refusalStyle === 'error' ? 'refusals as errors' : 'refusals: default');
    return parts.join(' · ');
  }

  function drawUsers(data) {
    var table = $('users');
    clear(table.tBodies[0]);
    var keysOf = {};
    data.keys.forEach(function (k) {
      if (k.revokedAt !== null) return;
      (keysOf[k.userId] = keysOf[k.userId] || []).push(k);
    });
    if (data.users.length === 0) emptyRow(table, 'No users yet.');
    data.users.slice(0, USER_ROWS).forEach(function (u) {
      var name = el('td', 'who', who(u));
      name.title = shown(u.name, kit.TITLE_CHARS);
      var list = el('ul', 'user-keys');
      if (!keysOf[u.id]) list.appendChild(el('li', 'muted', 'none'));
      (keysOf[u.id] || []).forEach(function (k) {
        var li = el('li', 'user-key', keyLine(k));
        li.dataset.id = k.id;
        list.appendChild(li);
      });
      var manage = el('td', 'actions');
      var link = el('a', 'manage-link', 'Manage');
      link.href = '#people/' + enc(u.id);
      link.setAttribute('aria-label', 'Manage ' + who(u));
      manage.appendChild(link);
      var tr = row(table, [name, u.projectId === null ? '' : shown(u.projectId), u.externalIds.map(function (id) { return shown(id); }).join(', '), list, manage]);
      tr.dataset.user = u.id;
    });
    var note = $('users-note');
    note.hidden = data.users.length <= USER_ROWS;
    note.textContent = data.users.length > USER_ROWS ? 'The first ' + kit.tokens(USER_ROWS) + ' of ' + kit.tokens(data.users.length) + ' users, by id. lobe-quota users list shows them all.' : '';
  }

  /** The budgets that bind a user's requests: their own, their keys', their project's, the global one; stored and config defaults. */
  function budgetsOfUser(data, user) {
    var keyIds = data.keys.filter(function (k) { return k.userId === user.id; }).map(function (k) { return 'key:' + k.id; });
    var scopes = ['user:' + user.id, 'global'].concat(keyIds, user.projectId === null ? [] : ['project:' + user.projectId]);
    var stored = data.budgets.budgets.filter(function (b) { return scopes.indexOf(b.scope) >= 0; });
    // A default applies unless a stored budget of the same scope and period replaces it (a key's
    // defaults are per key: listed as they are).
    var concrete = { user: 'user:' + user.id, global: 'global', project: user.projectId === null ? null : 'project:' + user.projectId, key: '' };
    var defaults = data.budgets.defaults.filter(function (d) {
      var scope = concrete[d.scope];
      if (scope === null || scope === undefined) return false;
      return !stored.some(function (b) { return b.scope === scope && periodOf(b) === periodOf(d); });
    });
    return { stored: stored, defaults: defaults };
  }

  /** A budget's identity within its scope, as the server keys it: its window's period and its models. */
  function periodOf(b) {
    var period = b.window.kind === 'rolling' ? 'rolling:' + b.window.hours + 'h' : b.window.kind;
    return b.models && b.models.length > 0 ? period + ' models=' + b.models.slice().sort().join(',') : period;
  }

  function drawUserDetail(data) {
    var panel = $('user-panel');
    var id = current.view === 'people' ? current.arg : '';
    panel.hidden = id === '';
    if (id === '') return;
    var user = data.users.filter(function (u) { return u.id === id; })[0];
    $('user-found').hidden = !user;
    $('user-missing').hidden = !!user;
    if (!user) {
      $('user-title').textContent = 'No user ' + shown(id);
      return;
    }
    $('user-title').textContent = who(user);
    $('user-title').title = shown(user.name, kit.TITLE_CHARS);
    if (filledFor !== user.id + '\n' + user.name + '\n' + user.projectId) {
      filledFor = user.id + '\n' + user.name + '\n' + user.projectId;
      $('user-name').value = user.name;
    }
    fillSelect($('user-project'), [{ value: '', label: 'No project' }].concat(data.projects.map(function (p) { return { value: p.id, label: shown(p.name) + ' (' + shown(p.id) + ')' }; })));
    $('user-project').value = user.projectId === null ? '' : user.projectId;

    var ids = $('user-external-ids');
    clear(ids);
    if (user.externalIds.length === 0) ids.appendChild(el('li', 'muted', 'None linked.'));
    user.externalIds.forEach(function (x) {
      var li = el('li', 'external-id');
      li.dataset.id = x;
      li.appendChild(el('code', null, shown(x)));
      var unlink = button('Unlink', 'danger small-button', 'Unlink ' + shown(x) + ' from ' + who(user));
      unlink.addEventListener('click', function () {
        kit.confirmAction({ title: 'Unlink this external id?', text: 'Requests a service key sends for ' + shown(x) + ' will no longer be charged to ' + who(user) + '.', confirm: 'Unlink' }).then(function (yes) {
          if (!yes) return;
          kit.submit($('user-links'), unlink, function () { return call('DELETE', '/admin/users/' + enc(user.id) + '/external-ids/' + enc(x)); }, function () {
            kit.showDone($('user-links'), 'Unlinked ' + shown(x) + '.');
            return reload();
          });
        });
      });
      li.appendChild(unlink);
      ids.appendChild(li);
    });

    drawKeyRows($('user-keys-table'), data.keys.filter(function (k) { return k.userId === user.id; }), data, false);
    $('user-new-key').href = '#keys/' + enc(user.id);
    $('user-new-budget').href = '#budgets/' + enc('user:' + user.id);

    var list = $('user-budgets');
    clear(list);
    var applying = budgetsOfUser(data, user);
    if (applying.stored.length + applying.defaults.length === 0) list.appendChild(el('li', 'muted', 'No budget applies: usage is not limited.'));
    applying.stored.forEach(function (b) {
      var li = el('li', 'user-budget', shown(b.scope) + ' · ' + windowLabel(b.window) + ' · ' + limitLabel(b));
      li.dataset.id = b.id;
      list.appendChild(li);
    });
    applying.defaults.forEach(function (d) {
      list.appendChild(el('li', 'user-budget muted', 'every ' + d.scope + ' (config default) · ' + windowLabel(d.window) + ' · ' + limitLabel(d)));
    });
  }

  // ---- keys ------------------------------------------------------------------------------------------

  var REFUSALS = [
    { value: '', label: 'Default (the config’s)' },
    { value: 'error', label: 'HTTP error (429)' },
    { value: 'answer', label: 'An assistant answer' },
  ];

  function drawKeyRows(table, keys, data, withUser) {
    clear(table.tBodies[0]);
    var users = byId(data.users);
    if (keys.length === 0) emptyRow(table, 'No keys.');
    keys.forEach(function (k) {
      var owner = users[k.userId] || { id: k.userId, name: k.userId };
      var name = el('td', 'key-name');
      name.appendChild(kit.nameNode('span', null, k.name));
      name.appendChild(el('span', 'muted', ' · ' + shown(k.prefix) + '…'));
      var refusals = el('td', 'key-refusals');
      var style = el('select');
      style.setAttribute('aria-label', 'Refusals of key ' + shown(k.name));
      fillSelect(style, REFUSALS);
      style.value = k.refusalStyle === null ? '' : k.refusalStyle;
      refusals.appendChild(style);
      var cells = [name];
      if (withUser) cells.push(who(owner));
      cells.push(k.service ? 'service' : 'personal', refusals, when(k.createdAt), k.revokedAt === null ? 'active' : 'revoked ' + when(k.revokedAt));
      var actions = el('td', 'actions');
      cells.push(actions);
      var tr = row(table, cells);
      tr.dataset.key = k.id;
      if (k.revokedAt !== null) {
        tr.className = 'revoked';
        style.disabled = true;
        return;
      }
      var panel = table.closest('.panel');
      var save = button('Save', 'small-button', 'Save the refusal style of key ' + shown(k.name));
      save.addEventListener('click', function () {
        kit.submit(panel, save, function () { return call('PATCH', '/admin/keys/' + enc(k.id), { refusalStyle: style.value === '' ? null : style.value }); }, function () {
          kit.showDone(panel, 'Saved: refusals of key ' + shown(k.name) + ' are now ' + REFUSALS.filter(function (r) { return r.value === style.value; })[0].label.toLowerCase() + '.');
          return reload();
        });
      });
      refusals.appendChild(save);
      var revoke = button('Revoke', 'danger small-button', 'Revoke key ' + shown(k.name) + ' of ' + who(owner));
      revoke.addEventListener('click', function () {
        kit.confirmAction({
          title: 'Revoke this key?',
          text: 'The key ' + shown(k.name) + ' (' + shown(k.prefix) + '…) of ' + who(owner) + ' stops working at once, for every request. This cannot be undone.',
          confirm: 'Revoke key',
        }).then(function (yes) {
          if (!yes) return;
          kit.submit(panel, revoke, function () { return call('DELETE', '/admin/keys/' + enc(k.id)); }, function () {
            kit.showDone(panel, 'Revoked key ' + shown(k.name) + ' of ' + who(owner) + '.');
            return reload();
          });
        });
      });
      actions.appendChild(revoke);
    });
  }

  function drawKeys(data) {
    var users = data.users.map(function (u) { return { value: u.id, label: who(u) }; });
    fillSelect($('key-user'), users);
    var showRevoked = $('show-revoked').checked;
    drawKeyRows($('keys-table'), data.keys.filter(function (k) { return showRevoked || k.revokedAt === null; }), data, true);
  }

  /** The secret of a new key is shown here once: it lives in this field only, until the page moves on. */
  function forgetSecret() {
    $('new-secret-value').value = '';
    $('new-secret').hidden = true;
    $('copy-status').textContent = '';
  }

  // ---- budgets ---------------------------------------------------------------------------------------

  var TIME_ZONES = (function () {
    var zones = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
    return ['UTC'].concat(zones.filter(function (z) { return z !== 'UTC'; }));
  })();

  function subjectOptions(kind, data) {
    if (kind === 'project') return data.projects.map(function (p) { return { value: p.id, label: shown(p.name) + ' (' + shown(p.id) + ')' }; });
    if (kind === 'user') return data.users.map(function (u) { return { value: u.id, label: who(u) }; });
    if (kind === 'key') {
      var users = byId(data.users);
      return data.keys.filter(function (k) { return k.revokedAt === null; }).map(function (k) {
        return { value: k.id, label: who(users[k.userId] || { id: k.userId, name: k.userId }) + ' · ' + shown(k.name) + ' · ' + shown(k.prefix) + '…' };
      });
    }
    return [];
  }

  /** Shows the fields that apply to the chosen scope kind, window and limit action, and nothing else (hidden fields are not tabbed to). */
  function budgetFieldsShown() {
    var kind = $('b-kind').value;
    $('b-subject-field').hidden = kind === 'global' || kind === 'upstream';
    $('b-upstream-field').hidden = kind !== 'upstream';
    if (current.data) fillSelect($('b-subject'), subjectOptions(kind, current.data));
    $('b-subject-label').textContent = { project: 'Project', user: 'User', key: 'Key' }[kind] || 'Subject';
    var win = $('b-window').value;
    $('b-tz-field').hidden = win === 'rolling' || win === 'total';
    $('b-hours-field').hidden = win !== 'rolling';
    $('b-downgrade-field').hidden = $('b-onlimit').value !== 'downgrade';
  }

  function ruleRow(rule) {
    var rules = $('b-rules');
    var i = rules.children.length;
    var line = el('div', 'rule');
    var at = el('input');
    at.type = 'number';
    at.min = '1';
    at.max = '1000';
    at.inputMode = 'numeric';
    at.id = 'b-rule-at-' + i;
    at.setAttribute('data-field', 'fallback.' + i + '.at');
    at.value = rule ? String(rule.at) : '';
    var to = el('input');
    to.type = 'text';
    to.id = 'b-rule-to-' + i;
    to.setAttribute('data-field', 'fallback.' + i + '.to');
    to.value = rule ? rule.to : '';
    to.autocomplete = 'off';
    var atField = el('div', 'field');
    var atLabel = el('label', null, 'From % of the budget');
    atLabel.htmlFor = at.id;
    atField.appendChild(atLabel);
    atField.appendChild(at);
    var toField = el('div', 'field');
    var toLabel = el('label', null, 'Route to model');
    toLabel.htmlFor = to.id;
    toField.appendChild(toLabel);
    toField.appendChild(to);
    var remove = button('Remove', 'small-button', 'Remove fallback rule ' + (i + 1));
    remove.addEventListener('click', function () {
      var kept = readRules().filter(function (_, k) { return k !== i; });
      clear(rules);
      kept.forEach(function (r) { ruleRow({ at: r.at, to: r.to }); });
      $('b-add-rule').focus();
    });
    line.appendChild(atField);
    line.appendChild(toField);
    line.appendChild(remove);
    rules.appendChild(line);
    return at;
  }

  /** A number typed as one, else the text itself: the API then says what is wrong with it, next to the field. */
  function numeric(text) {
    var t = String(text).trim();
    if (t === '') return null;
    return isFinite(Number(t)) ? Number(t) : t;
  }
  function list(text) { return String(text).split(',').map(function (s) { return s.trim(); }).filter(Boolean); }

  function readRules() {
    return Array.prototype.map.call($('b-rules').children, function (line) {
      var inputs = line.querySelectorAll('input');
      return { at: numeric(inputs[0].value), to: inputs[1].value.trim() };
    });
  }

  function budgetBody() {
    var kind = $('b-kind').value;
    var scope = kind === 'global' ? 'global' : kind === 'upstream' ? 'upstream:' + $('b-upstream').value.trim() : kind + ':' + $('b-subject').value;
    var win = $('b-window').value;
    var body = {
      scope: scope,
      window: win === 'rolling' ? { kind: 'rolling', hours: numeric($('b-hours').value) } : win === 'total' ? { kind: 'total' } : { kind: win, timeZone: $('b-tz').value },
      limitTokens: numeric($('b-tokens').value),
      limitUsd: numeric($('b-usd').value),
      onLimit: $('b-onlimit').value,
    };
    if ($('b-thresholds').value.trim() !== '') body.thresholds = list($('b-thresholds').value).map(numeric);
    if ($('b-models').value.trim() !== '') body.models = list($('b-models').value);
    if (body.onLimit === 'downgrade') body.downgradeTo = $('b-downgrade').value.trim();
    var rules = readRules();
    if (rules.length > 0) body.fallback = rules;
    return body;
  }

  function resetBudgetForm() {
    var form = $('budget-form');
    form.reset();
    kit.clearProblems(form);
    clear($('b-rules'));
    $('b-tz').value = 'UTC';
    delete form.dataset.editing;
    $('budget-form-title').textContent = 'Set a budget';
    $('b-submit').textContent = 'Save budget';
    $('b-cancel').hidden = true;
    $('b-edit-note').hidden = true;
    budgetFieldsShown();
  }

  function editBudget(b) {
    resetBudgetForm();
    var form = $('budget-form');
    form.dataset.editing = b.id;
    var colon = b.scope.indexOf(':');
    var kind = colon < 0 ? b.scope : b.scope.slice(0, colon);
    $('b-kind').value = kind;
    budgetFieldsShown();
    if (kind === 'upstream') $('b-upstream').value = b.scope.slice(colon + 1);
    else if (kind !== 'global') $('b-subject').value = b.scope.slice(colon + 1);
    $('b-window').value = b.window.kind;
    if (b.window.timeZone) $('b-tz').value = b.window.timeZone;
    if (b.window.hours) $('b-hours').value = String(b.window.hours);
    $('b-tokens').value = b.limitTokens === null ? '' : String(b.limitTokens);
    $('b-usd').value = b.limitUsd === null ? '' : String(b.limitUsd);
    $('b-thresholds').value = (b.thresholds || []).join(', ');
    $('b-models').value = (b.models || []).join(', ');
    $('b-onlimit').value = b.onLimit;
    $('b-downgrade').value = b.downgradeTo || '';
    (b.fallback || []).forEach(ruleRow);
    budgetFieldsShown();
    $('budget-form-title').textContent = 'Edit the budget ' + shown(b.scope) + ' · ' + windowLabel(b.window);
    $('b-submit').textContent = 'Save changes';
    $('b-cancel').hidden = false;
    $('b-edit-note').hidden = false;
    $('budget-form-title').focus();
  }

  /** Who a scope is, in words: a user's or project's name, a key's owner and name. */
  function scopeNote(scope, data) {
    var colon = scope.indexOf(':');
    var kind = scope.slice(0, colon);
    var id = scope.slice(colon + 1);
    var users = byId(data.users);
    if (kind === 'user' && users[id]) return shown(users[id].name);
    if (kind === 'project') {
      var project = data.projects.filter(function (p) { return p.id === id; })[0];
      return project ? shown(project.name) : '';
    }
    if (kind === 'key') {
      var key = data.keys.filter(function (k) { return k.id === id; })[0];
      return key ? who(users[key.userId] || { id: key.userId, name: key.userId }) + ' · ' + shown(key.name) : '';
    }
    return '';
  }

  function drawBudgets(data) {
    var table = $('budget-table');
    clear(table.tBodies[0]);
    var stored = data.budgets.budgets;
    if (stored.length === 0) emptyRow(table, 'No budgets set here yet (the config’s defaults are below).');
    var panel = $('budget-list-panel');
    stored.forEach(function (b) {
      var actions = el('td', 'actions');
      var edit = button('Edit', 'small-button', 'Edit the budget ' + shown(b.scope) + ' ' + windowLabel(b.window));
      edit.addEventListener('click', function () { editBudget(b); });
      var remove = button('Delete', 'danger small-button', 'Delete the budget ' + shown(b.scope) + ' ' + windowLabel(b.window));
      remove.addEventListener('click', function () {
        kit.confirmAction({
          title: 'Delete this budget?',
          text: shown(b.scope) + ' · ' + windowLabel(b.window) + ' · ' + limitLabel(b) + '. A config default for that scope and period applies again, if there is one.',
          confirm: 'Delete budget',
        }).then(function (yes) {
          if (!yes) return;
          kit.submit(panel, remove, function () { return call('DELETE', '/admin/budgets/' + enc(b.id)); }, function () {
            if ($('budget-form').dataset.editing === b.id) resetBudgetForm();
            kit.showDone(panel, 'Deleted the budget ' + shown(b.scope) + ' · ' + windowLabel(b.window) + '.');
            return reload();
          });
        });
      });
      actions.appendChild(edit);
      actions.appendChild(remove);
      var scope = kit.nameNode('td', 'who', b.scope);
      var about = scopeNote(b.scope, data);
      if (about) scope.appendChild(el('span', 'scope-note muted', about));
      var tr = row(table, [scope, windowLabel(b.window), limitLabel(b), (b.thresholds || []).join(', ') + ' %', atLimitLabel(b), b.models ? b.models.map(function (m) { return shown(m); }).join(', ') : 'all', actions]);
      tr.dataset.id = b.id;
      tr.dataset.scope = b.scope;
    });
    var defaults = $('default-table');
    clear(defaults.tBodies[0]);
    if (data.budgets.defaults.length === 0) emptyRow(defaults, 'The config sets no default budgets.');
    data.budgets.defaults.forEach(function (d) {
      row(defaults, ['every ' + d.scope, windowLabel(d.window), limitLabel(d), (d.thresholds || []).join(', ') + ' %', atLimitLabel(d)]);
    });
    if ($('budget-form').dataset.editing === undefined) budgetFieldsShown();
    else fillSelect($('b-subject'), subjectOptions($('b-kind').value, data));
  }

  function selectIfThere(select, value) {
    if (Array.prototype.some.call(select.options, function (o) { return o.value === value; })) select.value = value;
  }

  /** `#budgets/user:alice`: a new budget for that subject. */
  function presetBudgetScope(scope) {
    if (!scope || $('budget-form').dataset.editing !== undefined) return;
    var colon = scope.indexOf(':');
    var kind = colon < 0 ? scope : scope.slice(0, colon);
    if (['global', 'project', 'user', 'key', 'upstream'].indexOf(kind) < 0) return;
    $('b-kind').value = kind;
    budgetFieldsShown();
    if (kind === 'upstream') $('b-upstream').value = scope.slice(colon + 1);
    else if (kind !== 'global') selectIfThere($('b-subject'), scope.slice(colon + 1));
  }

  /** Once per route, with data: `#keys/alice` picks alice for a new key, `#budgets/user:alice` her scope; `#alerts` loads them. */
  function applyRoute() {
    if (!current.data || routeApplied) return;
    routeApplied = true;
    if (current.view === 'keys' && current.arg) selectIfThere($('key-user'), current.arg);
    if (current.view === 'budgets') presetBudgetScope(current.arg);
    if (current.view === 'alerts') loadAlerts();
  }

  // ---- holds -----------------------------------------------------------------------------------------

  function drawHolds(data) {
    var table = $('holds-table');
    clear(table.tBodies[0]);
    var users = byId(data.users);
    if (data.holds.length === 0) emptyRow(table, 'No requests in flight hold anything.');
    var panel = $('holds-panel');
    data.holds.forEach(function (h) {
      var owner = users[h.userId] || { id: h.userId, name: h.userId };
      var release = button('Release', 'danger small-button', 'Release hold ' + shown(h.id) + ' of ' + who(owner));
      release.addEventListener('click', function () {
        kit.confirmAction({
          title: 'Release this hold?',
          text: 'What hold ' + shown(h.id) + ' of ' + who(owner) + ' sets aside (' + kit.tokens(h.tokens) + ' tokens, ' + kit.usd(h.usd) + ') is free again at once, and nothing is charged. Should its request still be running, a stream ends at its next lease.',
          confirm: 'Release hold',
        }).then(function (yes) {
          if (!yes) return;
          kit.submit(panel, release, function () { return call('DELETE', '/admin/holds/' + enc(h.id)); }, function () {
            kit.showDone(panel, 'Released hold ' + shown(h.id) + '.');
            return reload();
          });
        });
      });
      var actions = el('td', 'actions');
      actions.appendChild(release);
      var tr = row(table, [kit.nameNode('td', 'who', h.id), who(owner), h.projectId === null ? '' : shown(h.projectId), shown(h.keyId), kit.tokens(h.tokens) + ' tokens · ' + kit.usd(h.usd), when(h.createdAt), when(h.expiresAt), actions]);
      tr.dataset.hold = h.id;
    });
  }

  // ---- alerts ----------------------------------------------------------------------------------------

  function alertQuery() {
    var q = new URLSearchParams();
    [['scope', 'af-scope'], ['level', 'af-level'], ['state', 'af-state'], ['limit', 'af-limit']].forEach(function (f) {
      var v = $(f[1]).value.trim();
      if (v !== '') q.set(f[0], v);
    });
    return q.toString();
  }

  function loadAlerts() {
    var form = $('alert-filter');
    return kit.submit(form, form.querySelector('button[type=submit]'), function () { return call('GET', '/admin/alerts?' + alertQuery()); }, function (answer) {
      drawAlertList(answer.alerts);
      $('alert-count').textContent = answer.alerts.length === 1 ? '1 alert, newest first.' : kit.tokens(answer.alerts.length) + ' alerts, newest first.';
    });
  }

  function drawAlertList(alerts) {
    var listNode = $('alert-list');
    clear(listNode);
    if (alerts.length === 0) listNode.appendChild(el('li', 'muted', 'No alerts match.'));
    alerts.forEach(function (a) {
      var li = el('li', 'm-alert');
      li.dataset.id = a.id;
      var head = el('div', 'm-alert-head');
      head.appendChild(el('span', 'm-alert-level', a.kind === 'threshold' ? a.threshold + ' %' : a.kind.replace('_', ' ')));
      var subject = a.subjectName && a.subjectName !== a.scope ? shown(a.subjectName) + ' (' + shown(a.scope) + ')' : shown(a.scope);
      head.appendChild(el('span', 'm-alert-scope', subject));
      head.appendChild(el('span', 'muted', kit.amount(a.usage, a.unit) + ' of ' + kit.amount(a.limit, a.unit) + ' · ' + kit.pct(a.percentage) + '%'));
      var at = el('time', 'muted', when(a.firedAt));
      at.dateTime = a.firedAt;
      head.appendChild(at);
      li.appendChild(head);
      if (a.deliveries.length === 0) li.appendChild(el('p', 'muted small', 'No channel takes this alert.'));
      else {
        var table = el('table', 'table stack deliveries');
        var thead = el('thead');
        var hr = el('tr');
        ['Channel', 'State', 'Attempts', 'Last error', 'Next attempt'].forEach(function (h) { var th = el('th', null, h); th.scope = 'col'; hr.appendChild(th); });
        thead.appendChild(hr);
        table.appendChild(thead);
        table.appendChild(el('tbody'));
        a.deliveries.forEach(function (d) {
          var tr = row(table, [shown(d.channel), d.state === 'delivered' ? 'delivered ' + when(d.deliveredAt) : 'pending', kit.tokens(d.attempts), d.lastError === null ? '' : shown(d.lastError, 300), d.nextAttemptAt ? when(d.nextAttemptAt) : '']);
          tr.className = 'delivery-' + d.state;
        });
        li.appendChild(table);
      }
      if (a.deliveries.some(function (d) { return d.state === 'pending'; })) {
        var retry = button('Retry now', 'small-button', 'Retry the deliveries of the alert on ' + subject + ' now');
        retry.addEventListener('click', function () {
          kit.submit(li, retry, function () { return call('POST', '/admin/alerts/' + enc(a.id) + '/retry'); }, function (answer) {
            return loadAlerts().then(function () {
              var again = document.querySelector('#alert-list li[data-id="' + CSS.escape(a.id) + '"]');
              if (again) kit.showDone(again, 'Retrying ' + (answer.retried === 1 ? '1 delivery' : answer.retried + ' deliveries') + ' now.');
            });
          });
        });
        li.appendChild(retry);
      }
      listNode.appendChild(li);
    });
  }

  // ---- wiring ----------------------------------------------------------------------------------------

  function onSubmit(id, handler) {
    $(id).addEventListener('submit', function (event) {
      event.preventDefault();
      handler(event.target, event.submitter || event.target.querySelector('button[type=submit]'));
    });
  }

  function wirePeople() {
    onSubmit('new-project-form', function (form, trigger) {
      var body = { id: $('new-project-id').value.trim() };
      if ($('new-project-name').value.trim() !== '') body.name = $('new-project-name').value.trim();
      kit.submit(form, trigger, function () { return call('POST', '/admin/projects', body); }, function (p) {
        form.reset();
        kit.showDone(form, 'Created the project ' + shown(p.name) + ' (' + shown(p.id) + ').');
        return reload();
      });
    });
    onSubmit('rename-project-form', function (form, trigger) {
      var id = $('rename-project-id').value;
      kit.submit(form, trigger, function () { return call('PATCH', '/admin/projects/' + enc(id), { name: $('rename-project-name').value }); }, function (p) {
        $('rename-project-name').value = '';
        kit.showDone(form, 'Renamed the project ' + shown(p.id) + ' to ' + shown(p.name) + '.');
        return reload();
      });
    });
    onSubmit('new-user-form', function (form, trigger) {
      var body = { id: $('new-user-id').value.trim() };
      if ($('new-user-name').value.trim() !== '') body.name = $('new-user-name').value.trim();
      if ($('new-user-project').value !== '') body.projectId = $('new-user-project').value;
      var externalIds = list($('new-user-external-ids').value);
      if (externalIds.length > 0) body.externalIds = externalIds;
      kit.submit(form, trigger, function () { return call('POST', '/admin/users', body); }, function (u) {
        form.reset();
        kit.showDone(form, 'Created the user ' + who(u) + '.');
        return reload();
      });
    });
    onSubmit('user-rename-form', function (form, trigger) {
      var id = current.arg;
      kit.submit(form, trigger, function () { return call('PATCH', '/admin/users/' + enc(id), { name: $('user-name').value }); }, function (u) {
        filledFor = '';
        kit.showDone(form, 'Renamed to ' + shown(u.name) + '.');
        return reload();
      });
    });
    onSubmit('user-move-form', function (form, trigger) {
      var id = current.arg;
      var projectId = $('user-project').value === '' ? null : $('user-project').value;
      kit.submit(form, trigger, function () { return call('PATCH', '/admin/users/' + enc(id), { projectId: projectId }); }, function (u) {
        kit.showDone(form, u.projectId === null ? 'Moved out of any project.' : 'Moved to the project ' + shown(u.projectId) + '. Requests from now on are charged to it.');
        return reload();
      });
    });
    onSubmit('user-link-form', function (form, trigger) {
      var id = current.arg;
      kit.submit(form, trigger, function () { return call('POST', '/admin/users/' + enc(id) + '/external-ids', { externalId: $('user-external-id').value.trim() }); }, function (answer) {
        $('user-external-id').value = '';
        kit.showDone(form, answer.note ? shown(answer.note, 600) : 'Linked ' + shown(answer.externalId) + '.');
        return reload();
      });
    });
  }

  function wireKeys() {
    fillSelect($('key-refusal'), REFUSALS, '');
    onSubmit('new-key-form', function (form, trigger) {
      forgetSecret();
      var body = { userId: $('key-user').value, service: $('key-service').checked, refusalStyle: $('key-refusal').value === '' ? null : $('key-refusal').value };
      if ($('key-name').value.trim() !== '') body.name = $('key-name').value.trim();
      kit.submit(form, trigger, function () { return call('POST', '/admin/keys', body); }, function (k) {
        $('key-name').value = '';
        $('key-service').checked = false;
        $('new-secret-value').value = k.key;
        var owner = current.data ? byId(current.data.users)[k.userId] : null;
        $('new-secret-for').textContent = 'It is the ' + (k.service ? 'service ' : '') + 'key ' + shown(k.name) + ' of ' + who(owner || { id: k.userId, name: k.userId }) + '.';
        $('new-secret').hidden = false;
        $('copy-secret').focus();
        return reload();
      });
    });
    $('copy-secret').addEventListener('click', function () {
      kit.copyText($('new-secret-value').value, $('new-secret-value')).then(function () {
        $('copy-status').textContent = 'Copied to the clipboard.';
      }, function (e) {
        $('copy-status').textContent = 'Could not copy: ' + (e && e.message ? e.message : String(e));
      });
    });
    $('secret-done').addEventListener('click', function () {
      forgetSecret();
      $('key-user').focus();
    });
    $('show-revoked').addEventListener('change', function () { if (current.data) drawKeys(current.data); });
  }

  function wireBudgets() {
    fillSelect($('b-tz'), TIME_ZONES.map(function (z) { return { value: z, label: z }; }), 'UTC');
    ['b-kind', 'b-window', 'b-onlimit'].forEach(function (id) { $(id).addEventListener('change', budgetFieldsShown); });
    budgetFieldsShown();
    $('b-add-rule').addEventListener('click', function () { ruleRow(null).focus(); });
    $('b-cancel').addEventListener('click', function () {
      resetBudgetForm();
      $('b-kind').focus();
    });
    onSubmit('budget-form', function (form, trigger) {
      var body = budgetBody();
      kit.submit(form, trigger, function () { return call('PUT', '/admin/budgets', body); }, function (b) {
        var what = shown(b.scope) + ' · ' + windowLabel(b.window) + ' · ' + limitLabel(b);
        resetBudgetForm();
        kit.showDone(form, (b.replaced ? 'Replaced the budget ' : 'Created the budget ') + what + '.');
        return reload();
      });
    });
  }

  function init() {
    wirePeople();
    wireKeys();
    wireBudgets();
    onSubmit('alert-filter', function () { loadAlerts(); });
  }

  window.lqManage = {
    init: init,

    /** Draws every management view from one load of the API. */
    render: function (data, token) {
      current.data = data;
      current.token = token;
      drawProjects(data);
      drawUsers(data);
      drawUserDetail(data);
      drawKeys(data);
      drawBudgets(data);
      drawHolds(data);
      if (routeApplied && current.view === 'alerts') loadAlerts();
      applyRoute();
    },

    /** Signed out: nothing of the last load stays on the page. */
    reset: function () {
      current.data = null;
      current.token = null;
      filledFor = '';
      routeApplied = false;
      forgetSecret();
      resetBudgetForm();
      ['projects-table', 'users', 'keys-table', 'user-keys-table', 'budget-table', 'default-table', 'holds-table'].forEach(function (id) { clear($(id).tBodies[0]); });
      ['user-external-ids', 'user-budgets', 'alert-list', 'alert-count'].forEach(function (id) { clear($(id)); });
      each(document.querySelectorAll('#content form'), function (form) { form.reset(); kit.clearProblems(form); kit.showDone(form, ''); });
      $('user-panel').hidden = true;
    },

    /** The page moved to another view (or argument): a new key's secret is never shown again. */
    show: function (view, arg) {
      var moved = view !== current.view || arg !== current.arg;
      current.view = view;
      current.arg = arg;
      if (moved) {
        forgetSecret();
        routeApplied = false;
      }
      if (current.data) drawUserDetail(current.data);
      applyRoute();
    },
  };
})();
