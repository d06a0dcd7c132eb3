// Per-widget run state in the page: node states arrive as patches (state_patch: the full set,
// then only what changed), merged here once per widget (keyed by the _front_key the kernel
// gives it: each drawing gets a model proxy of its own, and a view drawn again when its output
// is re-sent must see every earlier patch). Each drawing feeds the store through its own proxy
// while it lives (`attach`). Subscribers are per node: a patch wakes only the nodes (and edges)
// it names, so a Step changes only those in the DOM.

const STORES = new Map(); // _front_key -> store
// an item's state is its most telling node's: a failure first, then what is still going on
const RANK = ["failed", "running", "retrying", "paused", "queued", "cancelled", "pending", "skipped", "cached", "succeeded"];

export function storeOf(model) {
  const key = model.get("_front_key");
  let store = STORES.get(key);
  if (!store) {
    store = makeStore(model);
    STORES.set(key, store);
    // a page that opens mid-run (or again) missed earlier patches: ask for all states
    model.send({ event: "snapshot" });
  }
  return store;
}

function makeStore(first) {
  let model = first;
  const states = new Map(); // id -> {state, attempts, duration}
  const byId = new Map(); // id -> Set(fn)
  const any = new Set(); // fn(changedIds | null)
  let seq = 0;
  let bps = new Set(model.get("breakpoints") || []);
  let pausedAt = null;
  let selected = model.get("selected") || "";
  const picked = new Map(); // body node id -> item index shown in its fold

  const notify = (ids) => {
    for (const id of ids) for (const fn of byId.get(id) || []) fn();
    for (const fn of any) fn(ids);
  };

  function applyPatch() {
    const p = model.get("state_patch") || {};
    if (!p.nodes || (p.seq !== undefined && p.seq <= seq && !p.full)) return;
    seq = p.seq || 0;
    const changed = new Set(Object.keys(p.nodes));
    if (p.full) {
      for (const id of states.keys()) changed.add(id);
      states.clear();
    }
    for (const [id, [state, attempts, duration]] of Object.entries(p.nodes)) {
      states.set(id, { state, attempts, duration });
    }
    notify(changed);
  }

  function applyRunInfo() {
    const info = model.get("run_info") || {};
    const next = info.status === "paused" ? info.paused_at || null : null;
    if (next === pausedAt) return;
    const ids = [pausedAt, next].filter(Boolean);
    pausedAt = next;
    notify(ids);
  }

  function applyBreakpoints() {
    const next = new Set(model.get("breakpoints") || []);
    const ids = [...next].filter((b) => !bps.has(b)).concat([...bps].filter((b) => !next.has(b)));
    bps = next;
    notify(ids);
  }

  function applySelected() {
    const next = model.get("selected") || "";
    const ids = [selected, next].filter(Boolean);
    selected = next;
    notify(ids);
  }

  const handlers = {
    "change:state_patch": applyPatch,
    "change:run_info": applyRunInfo,
    "change:breakpoints": applyBreakpoints,
    "change:selected": applySelected,
  };

  return {
    // feed the store from this drawing's model proxy; returns the function that stops it
    attach(proxy) {
      model = proxy;
      for (const [evt, fn] of Object.entries(handlers)) proxy.on(evt, fn);
      applyPatch(); applyRunInfo(); applyBreakpoints(); applySelected();
      return () => { for (const [evt, fn] of Object.entries(handlers)) proxy.off(evt, fn); };
    },
    // what one node shows: its state (paused when the run waits before it), and marks
    node(id) {
      const s = states.get(id);
      let state = s ? s.state : "pending";
      if (pausedAt === id && state === "pending") state = "paused";
      return { state, attempts: s ? s.attempts : 0, duration: s ? s.duration : null, raw: !!s,
        breakpoint: bps.has(id), selected: selected === id, pausedHere: pausedAt === id };
    },
    stateOf(id) { const s = states.get(id); return s ? s.state : "pending"; },
    // the items a loop/parallel body ran so far (from its nodes' ids, "each[3].fetch"), each
    // with the state that matters most among its nodes
    items(owner) {
      const prefix = `${owner}[`;
      const byItem = new Map();
      for (const [id, s] of states) {
        if (!id.startsWith(prefix)) continue;
        const index = parseInt(id.slice(prefix.length), 10);
        const was = byItem.get(index);
        if (!was || RANK.indexOf(s.state) < RANK.indexOf(was)) byItem.set(index, s.state);
      }
      return [...byItem].sort((a, b) => a[0] - b[0]).map(([index, state]) => ({ index, state }));
    },
    // which item of a body the canvas shows (null: the latest); wakes the body's subscribers
    pickItem(owner, index) { picked.set(owner, index); notify([`${owner}::item`]); },
    picked(owner) { return picked.has(owner) ? picked.get(owner) : null; },
    pausedAt() { return pausedAt; },
    running() { return [...states].filter(([, s]) => s.state === "running").map(([id]) => id); },
    counts() {
      const c = {};
      for (const s of states.values()) c[s.state] = (c[s.state] || 0) + 1;
      return c;
    },
    failed() { return [...states].filter(([, s]) => s.state === "failed").map(([id]) => id); },
    subscribe(id, fn) {
      if (!byId.has(id)) byId.set(id, new Set());
      byId.get(id).add(fn);
      return () => byId.get(id).delete(fn);
    },
    subscribeAll(fn) { any.add(fn); return () => any.delete(fn); },
  };
}
