// 运行监控页：令牌保存在 sessionStorage，每隔几秒从 ../admin/overview 刷新；只用 textContent 写入数据。
// 路径都是相对的，网关挂在反向代理的子路径下也能用。
"use strict";

(function () {
  const TOKEN_KEY = "sgw-token";
  const params = new URLSearchParams(window.location.search);
  const REFRESH_MS = Math.max(500, Number(params.get("refresh_ms")) || 3000);
  const CIRCUIT_ZH = { closed: "正常", half_open: "半开（试探中）", open: "熔断" };
  const STATE_ZH = { up: "在线", down: "离线", unknown: "未知" };
  const READY_ZH = { ok: "就绪", degraded: "就绪（部分目标异常）", unavailable: "未就绪" };
  let timer = null;

  const $ = (id) => document.getElementById(id);
  const token = () => sessionStorage.getItem(TOKEN_KEY);

  function cell(row, text, cls) {
    const td = document.createElement("td");
    td.textContent = text === null || text === undefined ? "—" : String(text);
    if (cls) td.className = cls;
    row.appendChild(td);
    return td;
  }

  function percent(rate) {
    return rate === null || rate === undefined ? "—" : (rate * 100).toFixed(1) + "%";
  }

  function localTime(iso) {
    return iso ? new Date(iso).toLocaleString("zh-CN", { hour12: false }) : "—";
  }

  async function api(path, options) {
    const headers = Object.assign({ Authorization: "Bearer " + token() }, (options && options.headers) || {});
    const response = await fetch(path, Object.assign({}, options, { headers }));
    if (response.status === 401) {
      logout("令牌无效或已过期，请重新输入");
      throw new Error("unauthorized");
    }
    const body = await response.json().catch(() => ({}));
    if (!response.ok) {
      const detail = body.detail || {};
      throw new Error(detail.message_zh || ("请求失败（" + response.status + "）"));
    }
    return body;
  }

  const shown = {};

  function fill(tableId, items, render) {
    // Unchanged figures keep their rows: a button under the pointer is not replaced mid-click.
    const key = JSON.stringify(items);
    if (shown[tableId] === key) return;
    shown[tableId] = key;
    const body = $(tableId).querySelector("tbody");
    const rows = items.map((item) => {
      const row = document.createElement("tr");
      render(row, item);
      return row;
    });
    body.replaceChildren(...rows);
  }

  function render(data) {
    const readiness = data.readiness;
    const ready = $("readiness");
    ready.textContent = READY_ZH[readiness.status] || readiness.status;
    ready.className = "readiness " + (readiness.status === "ok" ? "good" : readiness.status === "degraded" ? "warn" : "bad");

    fill("connectors", data.connectors, (row, c) => {
      row.dataset.connector = c.id;
      cell(row, c.id);
      cell(row, c.type);
      cell(row, c.department);
      cell(row, STATE_ZH[c.state] || c.state, c.state === "down" ? "bad" : "");
      cell(row, c.per_minute, "num per-minute");
      cell(row, c.accepted, "num accepted");
      cell(row, c.rejected, "num rejected" + (c.rejected ? " warn" : ""));
      cell(row, c.duplicate, "num duplicate");
      cell(row, localTime(c.last_record_at));
    });

    fill("targets", data.targets, (row, t) => {
      row.dataset.target = t.id;
      cell(row, t.id);
      cell(row, CIRCUIT_ZH[t.circuit] || t.circuit, "circuit" + (t.circuit === "closed" ? " good" : " bad"));
      cell(row, t.outbox_depth, "num depth");
      cell(row, t.oldest_age_s === null ? null : Math.round(t.oldest_age_s), "num");
      cell(row, t.dead_letters, "num dead" + (t.dead_letters ? " bad" : ""));
      cell(row, t.delivered, "num delivered");
      cell(row, t.rejected, "num");
      cell(row, t.retry, "num");
      cell(row, t.failed, "num");
    });

    fill("departments", data.departments, (row, d) => {
      const q = d.quality || {};
      row.dataset.department = d.department;
      cell(row, d.department || "（未指定）");
      cell(row, d.open_rejections, "num open");
      cell(row, d.overdue_rejections, "num overdue" + (d.overdue_rejections ? " bad" : ""));
      cell(row, percent(q.validity_rate), "num");
      cell(row, percent(q.timeliness ? q.timeliness.rate : null), "num");
      cell(row, q.duplicates, "num");
      const reasons = (q.rejection_reasons || []).slice(0, 3).map((r) => r.label_zh + " " + r.count);
      cell(row, reasons.length ? reasons.join("；") : "—");
    });

    fill("dead-letters", data.dead_letters, (row, d) => {
      row.dataset.deadLetter = d.id;
      cell(row, d.id);
      cell(row, d.adapter);
      cell(row, d.kind);
      cell(row, d.department);
      cell(row, d.attempts, "num");
      cell(row, d.error);
      cell(row, localTime(d.enqueued_at));
      const action = document.createElement("td");
      const button = document.createElement("button");
      button.type = "button";
      button.className = "redrive";
      button.dataset.id = d.id;
      button.textContent = "重新投递";
      button.addEventListener("click", () => redrive(d.id, button));
      action.appendChild(button);
      row.appendChild(action);
    });
    $("no-dead-letters").hidden = data.dead_letters.length > 0;
    $("status").textContent = "已更新 " + localTime(data.generated_at);
  }

  async function refresh() {
    try {
      render(await api("../admin/overview"));
    } catch (error) {
      if (token()) $("status").textContent = "刷新失败：" + error.message;
    }
  }

  async function redrive(id, button) {
    button.disabled = true;
    try {
      const result = await api("../admin/dead-letters/redrive", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ ids: [id] }),
      });
      $("notice").textContent = "已重新投递 " + result.redriven + " 条死信（编号 " + id + "）";
      await refresh();
    } catch (error) {
      $("notice").textContent = "重新投递失败：" + error.message;
      button.disabled = false;
    }
  }

  function start() {
    $("login").hidden = true;
    $("board").hidden = false;
    $("logout").hidden = false;
    refresh();
    if (timer === null) timer = window.setInterval(refresh, REFRESH_MS);
  }

  function logout(message) {
    sessionStorage.removeItem(TOKEN_KEY);
    for (const table of Object.keys(shown)) delete shown[table];
    if (timer !== null) window.clearInterval(timer);
    timer = null;
    $("board").hidden = true;
    $("logout").hidden = true;
    $("login").hidden = false;
    $("status").textContent = "未登录";
    $("login-error").textContent = message || "";
  }

  document.addEventListener("DOMContentLoaded", () => {
    $("login").addEventListener("submit", (event) => {
      event.preventDefault();
      const value = $("token").value.trim();
      if (!value) {
        $("login-error").textContent = "请输入访问令牌";
        return;
      }
      sessionStorage.setItem(TOKEN_KEY, value);
      $("token").value = "";
      $("login-error").textContent = "";
      start();
    });
    $("logout").addEventListener("click", () => logout());
    if (token()) start();
  });
})();
