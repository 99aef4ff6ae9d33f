//! Runs a loaded SecLang program over one request: phases 1 and 2 in rule order, with
//! the transaction collection (`TX`), macros, chains, `skipAfter`, runtime `ctl`s and
//! anomaly scoring, as ModSecurity does for CRS in anomaly-scoring mode.

use std::borrow::Cow;
use std::collections::HashMap;

use palisade_core::severity::Severity;

use super::operator::{NumCmp, Op, compile_rx, invalid_url_encoding, ip_in};
use super::request::ReqView;
use super::rule::{Coll, Ctl, Disruptive, SecRule, Sel, SetVar, VarSpec, in_ranges};
use super::transform::apply_all;
use super::{Item, Program};
use crate::engine::{Finding, MAX_DECODED, MAX_MATCHED};
use crate::request::HttpRequest;
use crate::rules::Category;
use crate::text::first_chars;

/// The result of running the CRS program on one request.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// One finding per CRS rule that matched and scored (or denied).
    pub findings: Vec<Finding>,
    /// The inbound anomaly score at the paranoia level in force (CRS's own sum of
    /// `tx.anomaly_score_plN` / `tx.inbound_anomaly_score_plN`).
    pub score: u32,
    /// A non-evaluation rule with `deny`/`drop` matched (a user's own blocking rule).
    pub denied: bool,
}

/// One value a variable yields.
struct Val<'a> {
    coll: Coll,
    key: Cow<'a, str>,
    value: Cow<'a, str>,
}

impl Val<'_> {
    fn full_name(&self) -> String {
        if self.key.is_empty() {
            self.coll.name().to_string()
        } else {
            format!("{}:{}", self.coll.name(), self.key)
        }
    }
}

/// Evidence of the first value that matched a rule.
struct Hit {
    name: String,
    value: String,
    matched: String,
}

struct State<'p> {
    tx: HashMap<String, String>,
    removed_ids: Vec<(u32, u32)>,
    removed_tags: Vec<&'p regex::bytes::Regex>,
    removed_targets: Vec<(&'p [(u32, u32)], &'p VarSpec)>,
    removed_target_tags: Vec<(&'p regex::bytes::Regex, &'p VarSpec)>,
    matched_var: String,
    matched_var_name: String,
    matched_vars: Vec<(String, String)>,
    stop: bool,
    /// Transformed values by (transformation list, value address, length): CRS runs
    /// the same list over the same argument in many rules.
    tcache: HashMap<(usize, usize, usize), String>,
    program: &'p Program,
    /// `ctl:forceRequestBodyVariable=On`.
    force_body: bool,
    out: Outcome,
}

/// Runs `program` over `req`. `paranoia` and `threshold` preset `tx.paranoia_level`
/// (and the executing level) and `tx.inbound_anomaly_score_threshold`, as crs-setup's
/// rules 900000/900110 would; a crs-setup that sets them itself wins.
pub fn run(program: &Program, req: &HttpRequest, paranoia: u8, threshold: u32) -> Outcome {
    let view = ReqView::new(req);
    let mut st = State {
        tx: HashMap::new(),
        removed_ids: Vec::new(),
        removed_tags: Vec::new(),
        removed_targets: Vec::new(),
        removed_target_tags: Vec::new(),
        matched_var: String::new(),
        matched_var_name: String::new(),
        matched_vars: Vec::new(),
        stop: false,
        tcache: HashMap::new(),
        program,
        force_body: false,
        out: Outcome::default(),
    };
    st.tx.insert("paranoia_level".into(), paranoia.to_string());
    st.tx.insert(
        "inbound_anomaly_score_threshold".into(),
        threshold.to_string(),
    );
    for items in [&program.phase1, &program.phase2] {
        let mut i = 0;
        while let Some(item) = items.get(i) {
            if st.stop {
                break;
            }
            i += 1;
            let Item::Rule(rule) = item else { continue };
            if st.is_removed(rule) {
                continue;
            }
            if let Some(hit) = st.eval_chain(rule, &view) {
                st.after_match(rule, hit, &view);
                if let Some(marker) = &rule.skip_after {
                    i = items
                        .iter()
                        .skip(i)
                        .position(|x| matches!(x, Item::Marker(m) if m == marker))
                        .map(|p| i + p + 1)
                        .unwrap_or(items.len());
                } else if rule.skip > 0 {
                    let mut left = rule.skip;
                    while left > 0 && i < items.len() {
                        if matches!(items.get(i), Some(Item::Rule(_))) {
                            left -= 1;
                        }
                        i += 1;
                    }
                }
            }
        }
    }
    let level = st.int("paranoia_level").clamp(1, 4);
    let mut score = 0i64;
    for l in 1..=level {
        score += st.int(&format!("anomaly_score_pl{l}"));
        score += st.int(&format!("inbound_anomaly_score_pl{l}"));
    }
    st.out.score = u32::try_from(score.max(0)).unwrap_or(u32::MAX);
    st.out
}

fn to_int(s: &str) -> i64 {
    let s = s.trim();
    let (neg, digits) = match s.strip_prefix('-') {
        Some(r) => (true, r),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let n: i64 = digits
        .bytes()
        .take_while(u8::is_ascii_digit)
        .take(18)
        .fold(0i64, |a, d| a * 10 + i64::from(d - b'0'));
    if neg { -n } else { n }
}

fn category_of(tags: &[String]) -> Category {
    for t in tags {
        let t = t.to_ascii_lowercase();
        let c = match t.as_str() {
            "attack-sqli" => Category::Sqli,
            "attack-xss" => Category::Xss,
            "attack-lfi" => Category::Lfi,
            "attack-rfi" => Category::Rfi,
            "attack-rce"
            | "attack-injection-php"
            | "attack-injection-nodejs"
            | "attack-injection-java"
            | "language-java" => Category::Rce,
            "attack-ssrf" => Category::Ssrf,
            "attack-reputation-scanner"
            | "attack-reputation-scripting"
            | "attack-reputation-crawler" => Category::Scanner,
            "attack-protocol" | "attack-fixation" | "attack-multipart-header" => Category::Protocol,
            _ if t.contains("log4j") || t.contains("jndi") => Category::Jndi,
            _ => continue,
        };
        return c;
    }
    Category::Protocol
}

fn paranoia_of(tags: &[String]) -> u8 {
    tags.iter()
        .find_map(|t| t.strip_prefix("paranoia-level/")?.trim().parse::<u8>().ok())
        .unwrap_or(1)
        .clamp(1, 4)
}

/// Whether a rule is CRS's own blocking evaluation (949110, 959100 and friends): it
/// sets the total inbound/outbound score rather than adding to it.
fn is_evaluation(rule: &SecRule) -> bool {
    rule.tags.iter().any(|t| t == "anomaly-evaluation")
        || rule.setvars.iter().any(|s| {
            matches!(s, SetVar::Set(n, _) if n == "inbound_anomaly_score" || n == "outbound_anomaly_score")
        })
}

/// Whether a rule is a detection: it adds points to an anomaly score (CRS's sums of the
/// per-level scores, like 949060's `tx.anomaly_score=+%{tx.anomaly_score_pl1}`, are not).
fn scores(rule: &SecRule) -> bool {
    let mut link = Some(rule);
    while let Some(r) = link {
        if r.setvars.iter().any(|s| {
            matches!(s, SetVar::Add(n, v) if n.contains("anomaly_score") && !v.contains("anomaly_score_pl"))
        }) {
            return true;
        }
        link = r.chain.as_deref();
    }
    false
}

impl<'p> State<'p> {
    /// `value` after `rule`'s transformations, from the per-request cache when the
    /// value lives in the request view (`cacheable`: its address identifies it).
    fn transformed<'v>(&mut self, rule: &SecRule, value: &'v str, cacheable: bool) -> Cow<'v, str> {
        if rule.transforms.is_empty() {
            return Cow::Borrowed(value);
        }
        if !cacheable {
            return apply_all(&rule.transforms, value);
        }
        let key = (rule.tchain, value.as_ptr() as usize, value.len());
        if let Some(hit) = self.tcache.get(&key) {
            return Cow::Owned(hit.clone());
        }
        let t = apply_all(&rule.transforms, value);
        if let Cow::Owned(o) = &t {
            self.tcache.insert(key, o.clone());
        }
        t
    }

    fn int(&self, key: &str) -> i64 {
        self.tx.get(key).map(|v| to_int(v)).unwrap_or(0)
    }

    fn is_removed(&self, rule: &SecRule) -> bool {
        (rule.id != 0 && in_ranges(&self.removed_ids, rule.id))
            || rule
                .tags
                .iter()
                .any(|t| self.removed_tags.iter().any(|r| r.is_match(t.as_bytes())))
    }

    /// Expands `%{…}` macros.
    fn expand(&self, s: &str, rule: Option<&SecRule>, view: &ReqView) -> String {
        if !s.contains("%{") {
            return s.to_string();
        }
        let mut out = String::with_capacity(s.len());
        let mut rest = s;
        while let Some(p) = rest.find("%{") {
            out.push_str(rest.get(..p).unwrap_or(""));
            let after = rest.get(p + 2..).unwrap_or("");
            let Some(end) = after.find('}') else {
                out.push_str(rest.get(p..).unwrap_or(""));
                rest = "";
                break;
            };
            let name = after.get(..end).unwrap_or("");
            out.push_str(&self.macro_value(name, rule, view));
            rest = after.get(end + 1..).unwrap_or("");
        }
        out.push_str(rest);
        out
    }

    fn macro_value(&self, name: &str, rule: Option<&SecRule>, view: &ReqView) -> String {
        let (coll, key) = name.split_once(['.', ':']).unwrap_or((name, ""));
        let key_l = key.to_ascii_lowercase();
        match coll.to_ascii_uppercase().as_str() {
            "TX" => self.tx.get(&key_l).cloned().unwrap_or_default(),
            "MATCHED_VAR" => self.matched_var.clone(),
            "MATCHED_VAR_NAME" => self.matched_var_name.clone(),
            "RULE" => match key_l.as_str() {
                "id" => rule.map(|r| r.id.to_string()).unwrap_or_default(),
                "msg" => rule.and_then(|r| r.msg.clone()).unwrap_or_default(),
                _ => String::new(),
            },
            "REQUEST_HEADERS" => view
                .headers
                .iter()
                .find(|(n, _)| n.eq_ignore_ascii_case(key))
                .map(|(_, v)| v.clone())
                .unwrap_or_default(),
            "REMOTE_ADDR" => view.remote_addr.clone(),
            "REQUEST_LINE" => view.line.clone(),
            "REQUEST_METHOD" => view.method.clone(),
            "REQUEST_URI" => view.uri.clone(),
            "REQUEST_FILENAME" => view.filename.clone(),
            "UNIQUE_ID" => "palisade".into(),
            _ => String::new(),
        }
    }

    /// The values `spec` selects, before exclusions.
    fn values<'v>(&self, spec: &VarSpec, view: &'v ReqView) -> Vec<Val<'v>> {
        let pairs = |coll: Coll, list: &'v [(String, String)], names: bool| {
            list.iter()
                .filter(|(k, _)| spec.sel.as_ref().is_none_or(|s| s.selects(k)))
                .map(move |(k, v)| Val {
                    coll,
                    key: Cow::Borrowed(k.as_str()),
                    value: Cow::Borrowed(if names { k.as_str() } else { v.as_str() }),
                })
                .collect::<Vec<_>>()
        };
        let scalar = |coll: Coll, v: Cow<'v, str>| {
            vec![Val {
                coll,
                key: Cow::Borrowed(""),
                value: v,
            }]
        };
        let b = |s: &'v str| Cow::Borrowed(s);
        let o = |s: String| -> Cow<'v, str> { Cow::Owned(s) };
        use Coll as C;
        match spec.coll {
            C::Args => {
                let mut v = pairs(C::Args, &view.args_get, false);
                v.extend(pairs(C::Args, &view.args_post, false));
                v
            }
            C::ArgsGet => pairs(C::ArgsGet, &view.args_get, false),
            C::ArgsPost => pairs(C::ArgsPost, &view.args_post, false),
            C::ArgsNames => {
                let mut v = pairs(C::ArgsNames, &view.args_get, true);
                v.extend(pairs(C::ArgsNames, &view.args_post, true));
                v
            }
            C::ArgsGetNames => pairs(C::ArgsGetNames, &view.args_get, true),
            C::ArgsPostNames => pairs(C::ArgsPostNames, &view.args_post, true),
            C::ArgsCombinedSize => {
                let n: usize = view
                    .args_get
                    .iter()
                    .chain(&view.args_post)
                    .map(|(k, v)| k.len() + v.len())
                    .sum();
                scalar(spec.coll, o(n.to_string()))
            }
            C::RequestHeaders => pairs(C::RequestHeaders, &view.headers, false),
            C::RequestHeadersNames => pairs(C::RequestHeadersNames, &view.headers, true),
            C::RequestCookies => pairs(C::RequestCookies, &view.cookies, false),
            C::RequestCookiesNames => pairs(C::RequestCookiesNames, &view.cookies, true),
            C::RequestUri => scalar(spec.coll, b(&view.uri)),
            C::RequestUriRaw => scalar(spec.coll, b(&view.uri_raw)),
            C::RequestFilename => scalar(spec.coll, b(&view.filename)),
            C::RequestBasename => scalar(spec.coll, b(&view.basename)),
            C::RequestLine => scalar(spec.coll, b(&view.line)),
            C::RequestMethod => scalar(spec.coll, b(&view.method)),
            C::RequestProtocol => scalar(spec.coll, b(&view.protocol)),
            C::QueryString => scalar(spec.coll, b(&view.query)),
            C::RequestBody => {
                // As ModSecurity documents: only with the URL-encoded body processor,
                // or when forced (CRS 901340 forces it when no processor ran).
                if view.body_len == 0 || !(view.processor == "URLENCODED" || self.force_body) {
                    Vec::new()
                } else {
                    scalar(spec.coll, b(&view.body))
                }
            }
            C::RequestBodyLength => scalar(spec.coll, o(view.body_len.to_string())),
            C::Xml => {
                let attrs = matches!(&spec.sel, Some(Sel::Key(k)) if k == "@");
                view.xml
                    .iter()
                    .filter(|(n, _)| n.contains('@') == attrs)
                    .map(|(_, v)| Val {
                        coll: C::Xml,
                        key: Cow::Borrowed(if attrs { "//@*" } else { "/*" }),
                        value: b(v),
                    })
                    .collect()
            }
            C::Files => pairs(C::Files, &view.files, false),
            C::FilesNames => pairs(C::FilesNames, &view.files, true),
            C::FilesSizes => view
                .file_sizes
                .iter()
                .filter(|(k, _)| spec.sel.as_ref().is_none_or(|s| s.selects(k)))
                .map(|(k, n)| Val {
                    coll: C::FilesSizes,
                    key: b(k),
                    value: o(n.to_string()),
                })
                .collect(),
            C::FilesCombinedSize => {
                let n: usize = view.file_sizes.iter().map(|(_, n)| n).sum();
                scalar(spec.coll, o(n.to_string()))
            }
            C::MultipartPartHeaders => pairs(C::MultipartPartHeaders, &view.part_headers, false),
            C::MultipartStrictError | C::MultipartUnmatchedBoundary => scalar(spec.coll, b("0")),
            C::ReqbodyError => scalar(spec.coll, b(if view.body_error { "1" } else { "0" })),
            C::ReqbodyProcessor => scalar(spec.coll, b(view.processor)),
            C::Tx => {
                let mut v: Vec<Val<'v>> = self
                    .tx
                    .iter()
                    .filter(|(k, _)| spec.sel.as_ref().is_none_or(|s| s.selects(k)))
                    .map(|(k, v)| Val {
                        coll: C::Tx,
                        key: o(k.clone()),
                        value: o(v.clone()),
                    })
                    .collect();
                v.sort_by(|a, b| a.key.cmp(&b.key));
                v
            }
            C::RemoteAddr => scalar(spec.coll, b(&view.remote_addr)),
            C::UniqueId => scalar(spec.coll, b("palisade")),
            C::Duration => scalar(spec.coll, b("0")),
            C::MatchedVar => scalar(spec.coll, o(self.matched_var.clone())),
            C::MatchedVarName => scalar(spec.coll, o(self.matched_var_name.clone())),
            C::MatchedVars => self
                .matched_vars
                .iter()
                .filter(|(k, _)| spec.sel.as_ref().is_none_or(|s| s.selects(k)))
                .map(|(k, v)| Val {
                    coll: C::MatchedVars,
                    key: o(k.clone()),
                    value: o(v.clone()),
                })
                .collect(),
            C::MatchedVarsNames => self
                .matched_vars
                .iter()
                .map(|(k, _)| Val {
                    coll: C::MatchedVarsNames,
                    key: o(k.clone()),
                    value: o(k.clone()),
                })
                .collect(),
            C::Persistent => Vec::new(),
        }
    }

    fn excluded(&self, rule_id: u32, head_tags: &[String], rule: &SecRule, v: &Val<'_>) -> bool {
        rule.excludes.iter().any(|e| e.excludes(v.coll, &v.key))
            || self
                .removed_targets
                .iter()
                .any(|(ids, spec)| in_ranges(ids, rule_id) && spec.excludes(v.coll, &v.key))
            || self.removed_target_tags.iter().any(|(re, spec)| {
                head_tags.iter().any(|t| re.is_match(t.as_bytes())) && spec.excludes(v.coll, &v.key)
            })
    }

    /// Runs the operator on one transformed value; on a match returns the matched text
    /// and the capture groups.
    fn op(&self, rule: &SecRule, value: &str, view: &ReqView) -> Option<(String, Vec<String>)> {
        let caps_of = |re: &regex::bytes::Regex| -> Option<(String, Vec<String>)> {
            if rule.capture {
                let c = re.captures(value.as_bytes())?;
                let groups: Vec<String> = c
                    .iter()
                    .take(10)
                    .map(|m| {
                        m.map(|m| String::from_utf8_lossy(m.as_bytes()).into_owned())
                            .unwrap_or_default()
                    })
                    .collect();
                Some((groups.first().cloned().unwrap_or_default(), groups))
            } else {
                let m = re.find(value.as_bytes())?;
                Some((
                    String::from_utf8_lossy(m.as_bytes()).into_owned(),
                    Vec::new(),
                ))
            }
        };
        let plain = |hit: bool, text: &str| hit.then(|| (text.to_string(), Vec::new()));
        match &rule.op {
            Op::Rx(re) | Op::Pm(re) => caps_of(re),
            Op::RxMacro(p) => {
                let pattern = self.expand(p, Some(rule), view);
                let cached = self
                    .program
                    .rx_cache
                    .lock()
                    .ok()
                    .and_then(|c| c.get(&pattern).cloned());
                let re = match cached {
                    Some(re) => re,
                    None => {
                        let re = std::sync::Arc::new(compile_rx(&pattern).ok()?);
                        if let Ok(mut c) = self.program.rx_cache.lock() {
                            if c.len() >= 64 {
                                c.clear();
                            }
                            c.insert(pattern, re.clone());
                        }
                        re
                    }
                };
                caps_of(&re)
            }
            Op::Tautology(t) => {
                let (a, b) = t.find(value.as_bytes())?;
                let m = value.as_bytes().get(a..b).unwrap_or_default();
                Some((String::from_utf8_lossy(m).into_owned(), Vec::new()))
            }
            Op::EntitySemicolon(t) => {
                let (a, b) = t.find(value.as_bytes())?;
                let m = value.as_bytes().get(a..b).unwrap_or_default();
                Some((String::from_utf8_lossy(m).into_owned(), Vec::new()))
            }
            Op::StrEq(p) => plain(value == self.expand(p, Some(rule), view), value),
            Op::Contains(p) => {
                let p = self.expand(p, Some(rule), view);
                plain(value.contains(&p), &p)
            }
            Op::ContainsWord(p) => {
                let p = self.expand(p, Some(rule), view);
                let hit = !p.is_empty()
                    && value.match_indices(&p).any(|(i, m)| {
                        let before = value.get(..i).and_then(|s| s.chars().last());
                        let after = value.get(i + m.len()..).and_then(|s| s.chars().next());
                        !before.is_some_and(char::is_alphanumeric)
                            && !after.is_some_and(char::is_alphanumeric)
                    });
                plain(hit, &p)
            }
            Op::BeginsWith(p) => {
                let p = self.expand(p, Some(rule), view);
                plain(value.starts_with(&p), &p)
            }
            Op::EndsWith(p) => {
                let p = self.expand(p, Some(rule), view);
                plain(value.ends_with(&p), &p)
            }
            Op::Within(p) => plain(self.expand(p, Some(rule), view).contains(value), value),
            Op::Num(cmp, p) => {
                let (a, b) = (to_int(value), to_int(&self.expand(p, Some(rule), view)));
                let hit = match cmp {
                    NumCmp::Eq => a == b,
                    NumCmp::Ge => a >= b,
                    NumCmp::Gt => a > b,
                    NumCmp::Lt => a < b,
                    NumCmp::Le => a <= b,
                };
                plain(hit, value)
            }
            Op::IpMatch(nets) => {
                let ip = value.trim().parse().ok()?;
                plain(nets.iter().any(|(n, b)| ip_in(ip, *n, *b)), value)
            }
            Op::ValidateByteRange(ranges) => {
                let bad = value
                    .bytes()
                    .find(|c| !ranges.iter().any(|(a, b)| (*a..=*b).contains(c)))?;
                Some((format!("\\x{bad:02x}"), Vec::new()))
            }
            Op::ValidateUrlEncoding => plain(invalid_url_encoding(value.as_bytes()), value),
            Op::ValidateUtf8Encoding => {
                // Decoded values are text; bytes that were not UTF-8 survive as
                // U+0080–U+00FF characters (Latin-1), which a UTF-8 client never sends
                // as a lone C1 control: flag those.
                plain(
                    value.chars().any(|c| ('\u{80}'..='\u{9f}').contains(&c)),
                    value,
                )
            }
            Op::DetectSqli => {
                let m = palisade_injection::sqli(value)?;
                Some((m.matched, vec![m.fingerprint]))
            }
            Op::DetectXss => {
                let m = palisade_injection::xss(value)?;
                Some((m.matched, vec![m.fingerprint]))
            }
            Op::Unconditional => Some((String::new(), Vec::new())),
            Op::NoMatch => None,
        }
    }

    /// Evaluates one link; returns the first hit and records MATCHED_VAR(S).
    /// Evaluates one link over every value it selects. As in ModSecurity, the link's
    /// non-disruptive actions (`capture` into TX.0–9, `setvar`, `ctl`) run once per
    /// matching value, so a rule matching two arguments adds its score twice and
    /// 920450 records every header name. Returns the first match as evidence.
    fn eval_link(&mut self, rule: &'p SecRule, head: &SecRule, view: &ReqView) -> Option<Hit> {
        let (id, head_tags) = (head.id, head.tags.as_slice());
        let mut vals: Vec<Val<'_>> = Vec::new();
        if rule.vars.is_empty() {
            vals.push(Val {
                coll: Coll::UniqueId,
                key: Cow::Borrowed(""),
                value: Cow::Borrowed(""),
            });
        }
        for spec in &rule.vars {
            let got = self.values(spec, view);
            let got: Vec<Val<'_>> = got
                .into_iter()
                .filter(|v| !self.excluded(id, head_tags, rule, v))
                .collect();
            if spec.count {
                vals.push(Val {
                    coll: spec.coll,
                    key: Cow::Borrowed(""),
                    value: Cow::Owned(got.len().to_string()),
                });
            } else {
                vals.extend(got);
            }
        }
        let mut first: Option<Hit> = None;
        let mut matched_vars = Vec::new();
        for v in &vals {
            let mut result = None;
            if rule.multi_match {
                let mut cur: Cow<'_, str> = Cow::Borrowed(&v.value);
                let r = self.op(rule, &cur, view);
                if r.is_some() != rule.negated {
                    result = Some((cur.to_string(), r));
                } else {
                    for t in &rule.transforms {
                        cur = Cow::Owned(t.apply(&cur).into_owned());
                        let r = self.op(rule, &cur, view);
                        if r.is_some() != rule.negated {
                            result = Some((cur.to_string(), r));
                            break;
                        }
                    }
                }
            } else {
                let cacheable = matches!(v.value, Cow::Borrowed(_));
                let t = self.transformed(rule, &v.value, cacheable);
                let r = self.op(rule, &t, view);
                if r.is_some() != rule.negated {
                    result = Some((t.into_owned(), r));
                }
            }
            let Some((value, r)) = result else { continue };
            let name = v.full_name();
            let (matched, groups) = r.unwrap_or_else(|| (value.clone(), Vec::new()));
            if rule.capture {
                for (i, g) in groups.iter().enumerate() {
                    self.tx.insert(i.to_string(), g.clone());
                }
            }
            self.matched_var = value.clone();
            self.matched_var_name = name.clone();
            self.link_actions(rule, head, view);
            if first.is_none() {
                first = Some(Hit {
                    name: name.clone(),
                    value: value.clone(),
                    matched,
                });
            }
            matched_vars.push((name, value));
        }
        if first.is_some() {
            self.matched_vars = matched_vars;
        }
        first
    }

    /// Evaluates a chain link by link; as in ModSecurity, a link's non-disruptive
    /// actions (`setvar`, `ctl`) run as soon as that link matches, so later links can
    /// read what earlier ones set (CRS puts its score increments in the last link).
    fn eval_chain(&mut self, head: &'p SecRule, view: &ReqView) -> Option<Hit> {
        let hit = self.eval_link(head, head, view)?;
        let mut link = head.chain.as_deref();
        while let Some(r) = link {
            self.eval_link(r, head, view)?;
            link = r.chain.as_deref();
        }
        Some(hit)
    }

    fn link_actions(&mut self, r: &'p SecRule, head: &SecRule, view: &ReqView) {
        for s in &r.setvars {
            self.setvar(s, head, view);
        }
        for c in &r.ctls {
            match c {
                Ctl::RemoveById(ids) => self.removed_ids.extend_from_slice(ids),
                Ctl::RemoveByTag(re) => self.removed_tags.push(re),
                Ctl::RemoveTargetById(ids, spec) => self.removed_targets.push((ids, spec)),
                Ctl::RemoveTargetByTag(re, spec) => self.removed_target_tags.push((re, spec)),
                Ctl::EngineOff => self.stop = true,
                Ctl::ForceBodyVariable => self.force_body = true,
            }
        }
    }

    fn after_match(&mut self, head: &'p SecRule, hit: Hit, view: &ReqView) {
        match head.disruptive {
            Disruptive::Allow => self.stop = true,
            Disruptive::Deny if !is_evaluation(head) => self.out.denied = true,
            _ => {}
        }
        let denies = head.disruptive == Disruptive::Deny && !is_evaluation(head);
        if (scores(head) || denies) && !is_evaluation(head) {
            let msg = head
                .msg
                .as_deref()
                .map(|m| self.expand(m, Some(head), view))
                .unwrap_or_else(|| format!("SecRule {}", head.id));
            let (location, part) = match hit.name.split_once(':') {
                Some((c, k)) => (c.to_string(), k.to_string()),
                None => (hit.name.clone(), String::new()),
            };
            self.out.findings.push(Finding {
                rule_id: head.id,
                name: msg,
                category: category_of(&head.tags),
                severity: head.severity.unwrap_or(if denies {
                    Severity::Critical
                } else {
                    Severity::Notice
                }),
                paranoia: paranoia_of(&head.tags),
                location,
                name_of_part: part,
                decoded_value: first_chars(&hit.value, MAX_DECODED),
                matched: first_chars(&hit.matched, MAX_MATCHED),
                tags: head.tags.clone(),
            });
        }
    }

    fn setvar(&mut self, s: &SetVar, rule: &SecRule, view: &ReqView) {
        match s {
            SetVar::Set(n, v) => {
                let n = self.expand(n, Some(rule), view).to_ascii_lowercase();
                let v = self.expand(v, Some(rule), view);
                self.tx.insert(n, v);
            }
            SetVar::Add(n, v) | SetVar::Sub(n, v) => {
                let n = self.expand(n, Some(rule), view).to_ascii_lowercase();
                let d = to_int(&self.expand(v, Some(rule), view));
                let cur = self.int(&n);
                let new = if matches!(s, SetVar::Add(..)) {
                    cur.saturating_add(d)
                } else {
                    cur.saturating_sub(d)
                };
                self.tx.insert(n, new.to_string());
            }
            SetVar::Delete(n) => {
                self.tx.remove(n);
            }
        }
    }
}
