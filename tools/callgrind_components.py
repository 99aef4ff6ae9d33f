#!/usr/bin/env python3
"""Instructions of a `palisade ingest` by component, from a callgrind run per thread.

    valgrind --tool=callgrind --separate-threads=yes --callgrind-out-file=cg.%p \
        palisade ingest --quiet --format combined --data-dir FRESH LOG
    python3 tools/callgrind_components.py LINES cg.PID-*            # the table
    ALLOC_INHERIT=1 python3 tools/callgrind_components.py LINES cg.PID-* --allocs
                                   # allocator calls a line, by the component calling

A function's own (self) cost goes to its component when its name matches one of RULES
(first match wins; the allocator and SQLite first, so that their cost is theirs
wherever they are called from); any other function's self cost goes to the components
of its callers, in proportion to the inclusive cost of each call edge (callgrind keeps
edges, not whole stacks, so this is an estimate where one function serves several
components). ALLOC_INHERIT=1 drops the allocator rule: each component then carries the
allocator calls it makes. docs/BENCHMARKS.md `ingest11` has the table this gave.
"""

import sys, re, collections

def parse(path):
    names = {}; files = {}
    selfc = collections.Counter(); edges = collections.Counter(); calls=collections.Counter()
    fn = None; cfn = None; pending_call = False
    def name_of(tok, table):
        m = re.match(r'\((\d+)\)(?:\s+(.*))?', tok)
        if not m: return tok
        i, n = m.group(1), m.group(2)
        if n is not None: table[i] = n
        return table.get(i, tok)
    cur_file = ''
    for line in open(path, errors='replace'):
        line = line.rstrip('\n')
        if not line: continue
        c = line[0]
        if c.isdigit() or c in '+-*':
            parts = line.split()
            if len(parts) < 2: continue
            try: cost = int(parts[1])
            except ValueError: continue
            if pending_call:
                edges[(fn, cfn)] += cost; pending_call = False
            else:
                selfc[fn] += cost
            continue
        if line.startswith('fn='):
            fn = name_of(line[3:], names)
        elif line.startswith('cfn='):
            cfn = name_of(line[4:], names)
        elif line.startswith('calls='):
            pending_call = True
            calls[(fn,cfn)] += int(line[6:].split()[0])
        elif line.startswith(('fl=','fi=','fe=','cfi=','cfl=')):
            k, v = line.split('=',1)
            if v.startswith('('): name_of(v, files)
    return selfc, edges, calls

RULES = [
  ('allocator', r'^(mi_|_mi_|mi_malloc|mi_free|mi_heap|mi_page|mi_segment|mi_arena|mi_os|mi_bin|mi_thread|_mi)|^(malloc|free|calloc|realloc|__libc_malloc|__libc_free|_int_malloc|_int_free|cfree|__rust_alloc|__rust_dealloc|__rust_realloc|__rdl_|__rg_alloc|__rg_dealloc|__rg_realloc)$|^alloc::alloc::(alloc|dealloc|realloc|exchange_malloc)|mimalloc|libmimalloc|<mimalloc::MiMalloc'),
  ('sqlite library', r'^(sqlite3|vdbe|btree|pager|wal|balance|pcache|memjrnl|unixRead|unixWrite|unix[A-Z]|robust_|pthreadMutex|getAndInitPage|insertCell|fillInCell|moveToChild|moveToRoot|moveToLeftmost|dropCell|allocateSpace|defragmentPage|decodeFlags|btreeInitPage|freePage|allocateBtreePage|rebuildPage|editPage|computeCellSize|cellSize|pageFindSlot|relocatePage|subjournalPage|pagerWal|walIndex|walHash|walFind|walWrite|walCheckpoint|syncJournal|pagerStress|getPageNormal|releasePage|accessPayload|copyPayload|saveCursorPosition|saveAllCursors|whereLoop|yy_|resolve|exprAnalyze|codeInsert|sqlite3Parser|multiSelect|lookaside|measureAllocationSize|mallocWithAlarm|serialGet|vdbeRecord|vdbeSorter|vdbePma|vdbeIncr|vdbeMerge|vdbeMem|vdbeChange|vdbeFreeOp|applyAffinity|applyNumericAffinity|numericType|computeNumericType|columnMem|valueFromExpr|putVarint|getVarint|checkActiveVdbeCnt|zeroPage|btreeParseCell|btreeCellSize|btreeComputeFreeSpace|btreeNext|btreePrevious|btreeOverwrite|indexCellCompare|sqlite3Btree)'),
  ('sqlite library', r'sqlite3\.c:'),
  ('start-up', r'palisade_detect::parallel::|palisade_detect::prefilter::Prefilter::new|palisade_detect::scan::LocationScan::new|palisade_detect::prefilter::literal_automaton|palisade_detect::engine::Engine::(new|with_crs)|palisade_pipeline::detection::Detection::(new|with_crs|builtin)|palisade_store::sqlite::migrate|palisade_models::slot::Slot<.*>::new|palisade_pipeline::running::Pipeline::build|palisade::commands::settings|palisade_detect::rules::RuleSet::|ScenarioSet::load|palisade::config::'),
  ('end phase (index builds, Rust)', r'palisade_store::sqlite::bulk::end'),
  ('engine', r'palisade_detect::engine::Engine::inspect|palisade_pipeline::guard::Policy::inspect$|palisade_detect::engine::inspect|palisade_detect::engine::evaluate'),
  ('request rebuilt from event', r'HttpRequest>?::refill_from_log_event|log_request'),
  ('model (findings only)', r'palisade_models::linear|palisade_pipeline::fusion|palisade_models::(model|featurize|joint|features|ngram|Model|featurizer)'),
  ('baselines (incl. endpoint keys)', r'palisade_models::baseline|palisade_models::Baselines|Baselines>?::observe'),
  ('threat building (Policy::settle)', r'palisade_pipeline::guard::Policy::settle|palisade_pipeline::guard::threat|palisade_pipeline::guard::'),
  ('threat recording (recorder, codec, binds)', r'palisade_pipeline::recorder|palisade_store::sqlite::threats|palisade_store::codec::threats|ThreatStore|palisade_core::threat|Evidence'),
  ('scenarios', r'palisade_scenarios|palisade_pipeline::stages::behaviour'),
  ('event rows and binds (Rust side of ingest.rs)', r'palisade_store::sqlite::ingest|palisade_store::sqlite::binder|palisade_store::codec::ingest|palisade_store::codec::clean|rusqlite::'),
  ('parse (formats)', r'palisade_formats::|palisade_core::time::Timestamp::parse|palisade_core::net'),
  ('reading + batching (sources)', r'palisade_sources::batcher|palisade_sources::import|CountingReader|BufRead|read_until|palisade_core::dead_letter'),
  ('writer task and hand-offs', r'palisade_sources::writer|StoredBatches'),
  ('inspector stage (slices, hand-offs)', r'palisade_pipeline::stages::(inspector|slices|in_order)'),
  ('channels/sync/runtime', r'^tokio::|tokio::sync|tokio::runtime|std::sync::mpsc|std::sys::sync|parking_lot|futex|Condvar|crossbeam|__lll_lock|pthread_mutex|pthread_cond|syscall|sched_yield|__GI___sched_yield|std::thread::yield_now|epoll|clock_gettime|__futex'),
]
import os
if os.environ.get('ALLOC_INHERIT'): RULES = RULES[1:]
CRE = [(c, re.compile(r)) for c, r in RULES]
def category(name):
    n = re.sub(r'^\S*:', '', name, count=0) if False else name
    # strip "file:" prefix for name rules but keep for sqlite3.c rule
    sym = name.split(':', 1)[1] if re.match(r'^[^:]*\.(rs|c|h|S|cpp):', name) else name
    sym = sym.split(' [')[0]
    for c, r in CRE:
        if r.search(sym) or (c == 'sqlite library' and r.search(name)):
            return c
    return None

def attribute(selfc, edges):
    ctx = contexts(selfc, edges)  # distribution of context category flowing out of f
    out = collections.Counter()
    for f, s in selfc.items():
        for k, v in ctx[f].items(): out[k] += s * v
    return out

def main():
    args = [a for a in sys.argv[1:] if not a.startswith('--')]
    lines = float(args[0]); files = args[1:]
    if '--allocs' in sys.argv:
        for target in ('__rust_alloc', 'malloc'):
            print(f'{target} calls a line, by the component that calls it')
            for k, v in alloc_by_ctx(files, target).most_common():
                print(f'  {v / lines:8.2f}  {k}')
        return
    grand = collections.Counter(); total = 0
    for p in files:
        s, e, _ = parse(p)
        total += sum(s.values())
        grand.update(attribute(s, e))
    print(f"{'component':48} {'M instr':>10} {'per line':>9} {'share':>6}")
    for k, v in grand.most_common():
        print(f"{k:48} {v/1e6:10.1f} {v/lines:9.0f} {100*v/total:5.1f}%")
    print(f"{'total':48} {total/1e6:10.1f} {total/lines:9.0f}")

def top_self(files, want, n=25):
    tot = collections.Counter()
    for p in files:
        s, e, _ = parse(p)
        fns = set(s) | {a for a, b in e} | {b for a, b in e}
        for f, c in s.items():
            if category(f or '') == want or (want == 'other (unattributed)' and category(f or '') is None):
                tot[f] += c
    for f, c in tot.most_common(n):
        print(f"{c/1e6:9.1f} {f[:170]}")

def top_in_ctx(files, want, n=25):
    tot = collections.Counter()
    for p in files:
        selfc, edges, _ = parse(p)
        ctx = contexts(selfc, edges)
        for f, s in selfc.items():
            v = ctx[f].get(want, 0)
            if v: tot[f] += s * v
    for f, c in tot.most_common(n):
        print(f"{c/1e6:9.1f} {f[:170]}")

def alloc_calls(files, targets=('mi_malloc_aligned','mi_free','malloc','free','mi_realloc_aligned','mi_zalloc_aligned','__rust_realloc','mi_theap_malloc_aligned','mi_malloc','mi_zalloc','calloc','realloc')):
    cnt = collections.Counter(); callers = collections.Counter()
    for p in files:
        s, e, calls = parse(p)
        for (a, b), n in calls.items():
            bn = (b or '').split(' [')[0].split(':')[-1]
            if bn in targets:
                an = (a or '').split(' [')[0]
                if (an.split(':')[-1]) in targets: continue
                cnt[bn] += n; callers[(bn, category(a or '') or an[-90:])] += n
    return cnt, callers

def contexts(selfc, edges):
    fns = set(selfc) | {a for a, b in edges} | {b for a, b in edges}
    cat = {f: category(f or '') for f in fns}
    incoming = collections.defaultdict(list)
    for (a, b), c in edges.items():
        if a != b: incoming[b].append((a, c))
    ctx = {f: {cat[f] or 'other (unattributed)': 1.0} for f in fns}
    for _ in range(30):
        new = {}
        for f in fns:
            if cat[f]: new[f] = {cat[f]: 1.0}; continue
            inc = incoming.get(f)
            if not inc: new[f] = {'other (unattributed)': 1.0}; continue
            t = sum(c for _, c in inc) or 1
            d = collections.Counter()
            for a, c in inc:
                for k, v in ctx[a].items(): d[k] += v * c / t
            new[f] = dict(d)
        ctx = new
    return ctx

def alloc_by_ctx(files, target='__rust_alloc'):
    out = collections.Counter()
    for p in files:
        s, e, calls = parse(p)
        ctx = contexts(s, e)
        for (a, b), n in calls.items():
            if (b or '').split(' [')[0].split(':')[-1] == target:
                for k, v in ctx[a].items(): out[k] += n * v
    return out


if __name__ == '__main__':
    main()
