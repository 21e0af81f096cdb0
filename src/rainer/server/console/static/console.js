// Rainer console: filter as you type, keyboard navigation, relative times and the live notice.
// Every page works without this file; it only makes them quicker to use. It never inserts
// text as HTML: what it shows comes from the server's escaped pages or goes in as textContent.
(function () {
  "use strict";

  // The server's clock, so that "3 minutes ago" agrees with what the server wrote.
  var skew = 0;

  var UNITS = [
    ["year", 365 * 86400],
    ["month", 30 * 86400],
    ["day", 86400],
    ["hour", 3600],
    ["minute", 60],
    ["second", 1],
  ];

  // The same words as render.relative_time on the server.
  function relative(when, now) {
    var seconds = (now - when) / 1000;
    if (Math.abs(seconds) < 10) {
      return "just now";
    }
    for (var i = 0; i < UNITS.length; i++) {
      var length = UNITS[i][1];
      if (Math.abs(seconds) >= length) {
        var count = Math.floor(Math.abs(seconds) / length);
        var words = count + " " + UNITS[i][0] + (count === 1 ? "" : "s");
        return seconds > 0 ? words + " ago" : "in " + words;
      }
    }
    return "just now";
  }

  function refreshTimes(root) {
    var now = Date.now() + skew;
    root.querySelectorAll("time[data-rel]").forEach(function (element) {
      var when = Date.parse(element.getAttribute("datetime"));
      if (!isNaN(when)) {
        element.textContent = relative(when, now);
      }
    });
  }

  // -- filter as you type: the server filters; its page replaces the results -------------------

  function setupFilter() {
    var form = document.getElementById("filter");
    if (!form || !window.fetch || !window.DOMParser || !window.URLSearchParams) {
      return;
    }
    var input = form.querySelector("[data-filter]");
    var timer = null;
    var controller = null;

    function run() {
      var params = new URLSearchParams(new FormData(form));
      if (!params.get("q")) {
        params.delete("q");
      }
      var query = params.toString();
      var url = form.getAttribute("action") + (query ? "?" + query : "");
      if (controller) {
        controller.abort();
      }
      controller = window.AbortController ? new AbortController() : null;
      fetch(url, {
        credentials: "same-origin",
        headers: { Accept: "text/html" },
        signal: controller ? controller.signal : undefined,
      })
        .then(function (response) {
          if (!response.ok) {
            throw new Error("status " + response.status);
          }
          return response.text();
        })
        .then(function (html) {
          var page = new DOMParser().parseFromString(html, "text/html");
          var fresh = page.getElementById("results");
          var count = page.getElementById("count");
          var results = document.getElementById("results");
          if (!fresh || !results) {
            return;
          }
          results.replaceWith(document.adoptNode(fresh));
          if (count) {
            // Text only, into the status region that stays: screen readers announce it.
            document.getElementById("count").textContent = count.textContent.trim();
          }
          refreshTimes(fresh);
          window.history.replaceState(null, "", url);
        })
        .catch(function () {
          // A newer keystroke aborted it, or the server is away: the form still works.
        });
    }

    input.addEventListener("input", function () {
      window.clearTimeout(timer);
      timer = window.setTimeout(run, 150);
    });
    form.querySelectorAll("[data-refilter]").forEach(function (box) {
      box.addEventListener("change", run);
    });
  }

  // -- keyboard: / to filter, j and k through rows, Esc out of the filter ---------------------

  function navLinks() {
    return Array.prototype.slice.call(document.querySelectorAll("[data-nav]"));
  }

  function typingIn(target) {
    return (
      target.closest &&
      target.closest(
        "textarea, select, [contenteditable], " +
          "input:not([type=radio]):not([type=checkbox]):not([type=submit]):not([type=button])"
      )
    );
  }

  function onKey(event) {
    if (event.defaultPrevented || event.altKey || event.ctrlKey || event.metaKey) {
      return;
    }
    var target = event.target;
    if (typingIn(target)) {
      if (target.matches("[data-filter]")) {
        if (event.key === "Escape") {
          target.blur();
        } else if (event.key === "ArrowDown" && navLinks().length) {
          event.preventDefault();
          navLinks()[0].focus();
        }
      }
      return;
    }
    if (event.key === "/") {
      var filter = document.querySelector("[data-filter]");
      if (filter) {
        event.preventDefault();
        filter.focus();
        filter.select();
      }
      return;
    }
    if (event.key !== "j" && event.key !== "k") {
      return;
    }
    var links = navLinks();
    if (!links.length) {
      return;
    }
    var row = document.activeElement && document.activeElement.closest("[data-nav-row]");
    var current = row ? links.indexOf(row.querySelector("[data-nav]")) : -1;
    var next;
    if (current < 0) {
      next = event.key === "j" ? 0 : links.length - 1;
    } else {
      next = Math.min(Math.max(current + (event.key === "j" ? 1 : -1), 0), links.length - 1);
    }
    event.preventDefault();
    links[next].focus();
    links[next].scrollIntoView({ block: "nearest" });
  }

  // -- live: wait on the server for a newer version of this key ----------------------------------

  // The server answers head.json?index=N as soon as the key is past version N (woken by its
  // watch), or after `wait` seconds with the head as it is; then the page asks again. The
  // session cookie goes along, so this works with --auth (an EventSource on the API's feed
  // could not carry it). A tab in the background lets go of its request.
  function setupLive() {
    var box = document.getElementById("live");
    if (!box || !window.fetch) {
      return;
    }
    var seen = Number(box.getAttribute("data-version"));
    var retry = (Number(box.getAttribute("data-retry")) || 5) * 1000;
    var wait = Number(box.getAttribute("data-wait")) || 25;
    var status = document.querySelector("[data-live-status]");
    if (status) {
      status.textContent =
        "Live: while it is open, this page waits on the server for a newer version of this " +
        "key, and offers to reload when one is committed.";
    }
    var timer = null;
    var failures = 0;
    var controller = null;

    function show(meta) {
      var what = meta.empty
        ? "The key was deleted: version " + meta.version + " is a tombstone"
        : "Version " + meta.version + " was committed by " + meta.author;
      var when = Date.parse(meta.mtime);
      box.textContent = what + (isNaN(when) ? "" : ", " + relative(when, Date.now() + skew)) + ". ";
      var link = document.createElement("a");
      link.href = box.getAttribute("data-href");
      link.textContent = "Reload to see it";
      box.appendChild(link);
    }

    function next(delay) {
      window.clearTimeout(timer);
      if (!document.hidden) {
        timer = window.setTimeout(ask, delay);
      }
    }

    function ask() {
      controller = window.AbortController ? new AbortController() : null;
      var url = box.getAttribute("data-head") + "?index=" + seen + "&wait=" + wait;
      var began = Date.now();
      fetch(url, {
        cache: "no-store",
        credentials: "same-origin",
        signal: controller ? controller.signal : undefined,
      })
        .then(function (response) {
          if (!response.ok) {
            throw new Error("status " + response.status);
          }
          return response.json();
        })
        .then(function (meta) {
          failures = 0;
          if (meta.version > seen) {
            seen = meta.version;
            show(meta);
          }
          // Straight back to waiting; a server that answered at once is not asked in a loop.
          next(Date.now() - began < 1000 ? retry : 0);
        })
        .catch(function (error) {
          if (error && error.name === "AbortError") {
            return;
          }
          failures += 1;
          next(retry * Math.min(failures, 6));
        });
    }

    document.addEventListener("visibilitychange", function () {
      window.clearTimeout(timer);
      if (document.hidden) {
        if (controller) {
          controller.abort();
        }
      } else {
        ask();
      }
    });
    next(0);
  }

  function start() {
    var serverNow = Date.parse(document.body.getAttribute("data-now") || "");
    if (!isNaN(serverNow)) {
      skew = serverNow - Date.now();
    }
    setupFilter();
    setupLive();
    document.addEventListener("keydown", onKey);
    window.setInterval(function () {
      refreshTimes(document);
    }, 30000);
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
