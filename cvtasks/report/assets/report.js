// cvtasks report: filters, sorting and the detail view of a static results page.
// The data comes from data.js (window.CVTASKS_REPORT); nothing is fetched.
"use strict";

(function () {
  const R = window.CVTASKS_REPORT;
  const $ = (selector) => document.querySelector(selector);
  const CHUNK = 240; // cards added per step: 10,000 items stay fluid
  let shown = [];
  let rendered = 0;

  function link(path) {
    return path.split("/").map(encodeURIComponent).join("/");
  }

  function text(tag, value, cls) {
    const node = document.createElement(tag);
    node.textContent = value;
    if (cls) node.className = cls;
    return node;
  }

  // ------------------------------------------------------------------ state in the URL
  function readState() {
    const p = new URLSearchParams(location.hash.slice(1));
    return {
      label: p.get("label") || "",
      min: p.get("min") || "",
      max: p.get("max") || "",
      failed: p.get("failed") === "1",
      q: p.get("q") || "",
      sort: p.get("sort") || "input",
    };
  }

  function writeState() {
    const p = new URLSearchParams();
    const s = {
      label: $("#f-label").value,
      min: $("#f-min").value,
      max: $("#f-max").value,
      failed: $("#f-failed").checked ? "1" : "",
      q: $("#f-q").value,
      sort: $("#f-sort").value,
    };
    for (const [k, v] of Object.entries(s)) if (v && !(k === "sort" && v === "input")) p.set(k, v);
    const hash = p.toString();
    if (location.hash.slice(1) !== hash) history.replaceState(null, "", hash ? "#" + hash : location.pathname);
    apply();
  }

  function loadControls() {
    const s = readState();
    $("#f-label").value = s.label;
    $("#f-min").value = s.min;
    $("#f-max").value = s.max;
    $("#f-failed").checked = s.failed;
    $("#f-q").value = s.q;
    $("#f-sort").value = s.sort;
  }

  // ------------------------------------------------------------------ filtering
  function apply() {
    const s = readState();
    const min = s.min === "" ? -Infinity : Number(s.min);
    const max = s.max === "" ? Infinity : Number(s.max);
    const q = s.q.toLowerCase();
    shown = R.items.filter((item) => {
      if (s.failed !== Boolean(item.error)) return false;
      if (s.label && !item.labels.includes(s.label)) return false;
      if ((s.min !== "" || s.max !== "") && (item.score === null || item.score < min || item.score > max)) return false;
      if (q && !item.source.toLowerCase().includes(q)) return false;
      return true;
    });
    const by = {
      "score-desc": (a, b) => (b.score ?? -Infinity) - (a.score ?? -Infinity),
      "score-asc": (a, b) => (a.score ?? Infinity) - (b.score ?? Infinity),
      name: (a, b) => a.source.localeCompare(b.source) || (a.frame ?? -1) - (b.frame ?? -1),
      input: (a, b) => a.i - b.i,
    }[s.sort] || ((a, b) => a.i - b.i);
    shown.sort(by);
    $("#grid").replaceChildren();
    rendered = 0;
    $("#count").textContent = `${shown.length} of ${R.items.length} shown`;
    more();
  }

  function card(item) {
    const fig = document.createElement("figure");
    fig.className = "item" + (item.error ? " failed" : "");
    fig.dataset.i = item.i;
    if (item.thumb) {
      const img = document.createElement("img");
      img.loading = "lazy";
      img.decoding = "async";
      img.src = link(item.thumb);
      img.alt = item.caption;
      fig.append(img);
    } else {
      fig.append(text("div", item.error ? "failed" : "no picture", "placeholder"));
    }
    const name = item.source.split("/").pop() + (item.frame !== null ? ` #${item.frame}` : "");
    const cap = document.createElement("figcaption");
    cap.append(text("span", item.error || item.caption, "caption"), text("span", name, "name"));
    fig.append(cap);
    fig.addEventListener("click", () => open(item));
    return fig;
  }

  function more() {
    const grid = $("#grid");
    const end = Math.min(rendered + CHUNK, shown.length);
    const part = document.createDocumentFragment();
    for (let k = rendered; k < end; k++) part.append(card(shown[k]));
    grid.append(part);
    rendered = end;
  }

  // ------------------------------------------------------------------ detail view
  function cell(value) {
    if (value === null || value === undefined) return "";
    if (Array.isArray(value)) return value.map((v) => (typeof v === "number" ? +v.toFixed(2) : v)).join(", ");
    if (typeof value === "object") return Object.keys(value).length + " values";
    return String(value);
  }

  function open(item) {
    const box = $("#detail-body");
    box.replaceChildren();
    box.append(text("h2", item.source + (item.frame !== null ? ` — frame ${item.frame}` : "")));
    if (item.error) box.append(text("p", "failed: " + item.error, "error"));
    const media = document.createElement("div");
    media.className = "media";
    const panels = Object.entries(item.files || {}).filter(([k]) => k.startsWith("panel_"));
    if (panels.length) {
      for (const [, path] of panels) {
        const img = document.createElement("img");
        img.src = link(path);
        media.append(img);
      }
    } else if (item.video && item.full) {
      const video = document.createElement("video");
      video.controls = true;
      video.src = link(item.full) + (item.time ? `#t=${item.time.toFixed(3)}` : "");
      media.append(video);
    } else if (item.full || item.thumb) {
      const img = document.createElement("img");
      img.src = link(item.full || item.thumb);
      media.append(img);
    }
    box.append(media);
    const preds = item.predictions || [];
    if (preds.length) {
      const keys = [...new Set(preds.flatMap((p) => Object.keys(p)))].filter((k) => k !== "mask" && k !== "keypoints" && k !== "polygons");
      const table = document.createElement("table");
      const head = table.createTHead().insertRow();
      for (const k of keys) head.append(text("th", k));
      const body = table.createTBody();
      for (const p of preds) {
        const row = body.insertRow();
        for (const k of keys) row.append(text("td", cell(typeof p[k] === "number" ? +p[k].toFixed(6) : p[k])));
      }
      box.append(table);
    }
    if (item.extra) box.append(text("pre", JSON.stringify(item.extra, null, 1)));
    const files = Object.entries(item.files || {});
    if (files.length) {
      const list = document.createElement("ul");
      for (const [k, path] of files) {
        const li = document.createElement("li");
        const a = text("a", `${k}: ${path}`);
        a.href = link(item.links[k] || path);
        li.append(a);
        list.append(li);
      }
      box.append(list);
    }
    $("#detail").showModal();
  }

  // ------------------------------------------------------------------ page
  function header() {
    const h = R.header;
    document.title = `cvtasks ${h.task} · ${h.model}`;
    $("#title").textContent = `${h.task} · ${h.model}`;
    $("#facts").textContent = `weights ${h.weights} · ${h.done} done, ${h.failed} failed · written ${h.written} · ${h.out}`;
    $("#config").textContent = h.config_text || "(no config.yaml)";
    const labels = [...new Set(R.items.flatMap((i) => i.labels))].sort();
    for (const label of labels) {
      const option = text("option", label);
      option.value = label;
      $("#f-label").append(option);
    }
    const sums = $("#summaries");
    for (const s of R.summaries) {
      const fig = document.createElement("figure");
      fig.className = "summary";
      if (s.svg) fig.innerHTML = s.svg; // made by cvtasks from escaped values
      if (s.text) fig.append(text("p", s.text));
      sums.append(fig);
    }
    const fails = $("#failures");
    const failed = R.failures.length;
    $("#failures-title").textContent = failed ? `failures (${failed})` : "failures (none)";
    $("#failures-box").open = failed > 0 && failed <= 50; // a long list stays one click away
    if (!failed) fails.append(text("p", "No input failed."));
    for (const f of R.failures) fails.append(text("li", `${f.source}${f.frame !== null ? " #" + f.frame : ""}: ${f.error}`));
  }

  function init() {
    header();
    loadControls();
    for (const id of ["#f-label", "#f-min", "#f-max", "#f-failed", "#f-q", "#f-sort"]) {
      $(id).addEventListener("input", writeState);
      $(id).addEventListener("change", writeState);
    }
    window.addEventListener("hashchange", () => { loadControls(); apply(); });
    $("#detail-close").addEventListener("click", () => $("#detail").close());
    new IntersectionObserver((entries) => {
      if (entries.some((e) => e.isIntersecting) && rendered < shown.length) more();
    }, { rootMargin: "800px" }).observe($("#sentinel"));
    apply();
    document.body.dataset.ready = "1";
  }

  init();
})();
